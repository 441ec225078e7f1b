"""The node's receiving path: verify each delivery, check it against the signed policy, open
it, store it with its obligations and acknowledge it (or refuse it, with a code)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any, Final

import msgpack
import nats.errors
import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError

from policies import SUITE_BELOW_POLICY, decide_retraction, envelope_age, suite_refusal
from protocol.envelope import DEFAULT_MAX_CLOCK_SKEW_MS, Verified, open_verified, verify_envelope
from protocol.transport import deliver_subject
from schemas import EnvelopeHeader, Handling, Kind
from schemas.errors import (
    ContentUnreadable,
    EnvelopeError,
    EnvelopeTooOld,
    InputError,
    KindNotAccepted,
    NotARecipient,
    PalermoError,
    Replayed,
    SubjectMismatch,
    UnknownReference,
)

from ._asking import message_body
from ._lanes import DeliveryOptions
from ._requests import _Requests
from .reports import open_report

_log = structlog.get_logger("palermo.node")
# How far this node's clock may run behind the server that released an embargoed envelope at
# its not_before (broker/embargo.py): within it the delivery is judged as of not_before and
# stored. Further ahead by this node's clock (its clock further behind, or a broker releasing
# early) it is kept unread and put back until not_before (early_wait), never refused for that.
RELEASE_SKEW: Final[timedelta] = timedelta(minutes=2)
# How far ahead of the broker's clock an envelope's created may be (protocol/envelope): the
# broker refuses one further ahead, so a copy in PLM_DLV further ahead than this by this node's
# clock means this node's clock is behind (or the broker's ahead), never the originator's fault.
# It is kept unread and put back until created minus this (created_wait), never refused for it,
# unless it is further ahead than max_envelope_age (no copy stays in PLM_DLV that long).
CLOCK_SKEW: Final[timedelta] = timedelta(milliseconds=DEFAULT_MAX_CLOCK_SKEW_MS)


def judged_at(handling: Handling, now: datetime) -> datetime:
    """The time a delivery is decided at: ``not_before`` when our clock is just behind it."""
    not_before = handling.not_before
    if not_before is not None and now < not_before <= now + RELEASE_SKEW:
        return not_before
    return now


def early_wait(handling: Handling, now: datetime, most: timedelta) -> timedelta | None:
    """How long to put back a delivery that came more than RELEASE_SKEW before its not_before
    by this node's clock: until not_before, but at most ``most`` at a time, so that a clock set
    wildly wrong is looked at (and warned about) again every few minutes instead of leaving the
    delivery parked for days in silence. None: it is due (or not embargoed)."""
    not_before = handling.not_before
    if not_before is None or not_before <= now + RELEASE_SKEW:
        return None
    return min(not_before - now, most)


def created_wait(created: datetime, now: datetime, most: timedelta) -> timedelta | None:
    """How long to put back a delivery created more than CLOCK_SKEW ahead of this node's clock:
    until it is within CLOCK_SKEW, at most ``most`` at a time (as early_wait). None: not ahead."""
    due = created - CLOCK_SKEW
    if due <= now:
        return None
    return min(due - now, most)


def _stored_at(msg: Msg) -> datetime | None:
    """When the server stored the delivery in PLM_DLV (by the server's clock), if it says."""
    try:
        return msg.metadata.timestamp
    except (nats.errors.Error, AttributeError, ValueError, IndexError, TypeError):
        return None  # not a JetStream delivery (or an unparsable ack subject)


class _Receiving(_Requests):
    """Deliveries, retractions and release requests received."""

    delivery: DeliveryOptions

    # --- receiving --------------------------------------------------------------------------------

    def _check_delivery(self, msg: Msg, header: EnvelopeHeader, now: datetime) -> None:
        """Replay, subject, recipient, age and kind, on a header whose signature verified."""
        if self.inbox.seen(header.id):
            raise Replayed(header.id)
        # The subject is not signed: a broker (or relay) that re-routes an envelope to
        # another topic, or under another originator's name, is caught here.
        expected = deliver_subject(self.identity.agency, header)
        if msg.subject != expected:
            raise SubjectMismatch(msg.subject, expected)
        if self.identity.agency not in header.recipients:
            raise NotARecipient(
                f"envelope {header.id} holds no key for {self.identity.agency}: it does not "
                "list this agency as a recipient"
            )
        self._check_age(header, now)
        if header.kind is Kind.RECEIPT:
            raise KindNotAccepted(
                f"envelope {header.id} is of kind receipt: receipts travel as signed "
                "documents on plm.rcpt subjects, never in an envelope"
            )

    def _check_age(self, header: EnvelopeHeader, now: datetime) -> None:
        """Refuse what no genuine delivery can be: older than the broker's age limit plus the
        time PLM_DLV keeps a delivery (``max_envelope_age``, DEFAULT_MAX_ENVELOPE_AGE); for an
        embargoed one, from its not_before (it was held until then)."""
        age = envelope_age(header.created, header.handling, now)
        if age > self.max_envelope_age:
            raise EnvelopeTooOld(
                int(age.total_seconds()), int(self.max_envelope_age.total_seconds())
            )

    async def handle(self, msg: Msg) -> str:
        """Verify, decide, open, re-check, store, receipt; returns the outcome (for tests and
        logs).

        The decision comes from the signed header before anything is decrypted, so a section
        the decision withholds is never opened (and refused if it was wrapped for us).
        """
        now = self.clock()
        try:
            # Created up to max_envelope_age ahead passes here, but only to be put back after
            # the signature and the checks below (created_wait); further ahead is ClockSkew, a
            # broken or hostile envelope, refused before its signature is checked, as before.
            verified: Verified = verify_envelope(msg.data, self.trust, now=now,
                                                 max_clock_skew_ms=self._ahead_ms())  # fmt: skip
        except EnvelopeError as exc:
            # Forged, altered or unreadable: its originator is not known to be genuine, so
            # nobody is sent a receipt; never retried, logged for the operator.
            return await self._refuse(msg, exc)
        header = verified.header
        try:
            self._check_delivery(msg, header, now)
        except Replayed:
            # Already stored: a redelivery after a crash between storing and acking, maybe
            # before the receipt went out. The receipt again (same message id, so stored once)
            # for a report we still hold, then the ack: the originator always hears.
            if header.kind not in (Kind.REQUEST, Kind.RESPONSE) and self._still_held(header.id):
                await self._receipt(header.originator, header.id, "delivered")
            await msg.ack()
            return "duplicate"
        except EnvelopeError as exc:
            # Signed by the originator but misrouted (another subject, not a recipient), too
            # old, or a kind no node takes: the originator hears why.
            return await self._refuse(msg, exc, header)
        most = timedelta(seconds=self.delivery.early_recheck_s)
        # Any kind (a retraction too): the broker took it by its clock, this node is behind.
        if (ahead := created_wait(header.created, now, most)) is not None:
            return await self._created_ahead(msg, header, now, ahead)
        wait = (
            None  # a retraction is not embargoed (Node.retract clears not_before), as before
            if header.kind is Kind.RETRACTION
            else early_wait(header.handling, now, most)
        )
        if wait is not None:
            return await self._early(msg, header, now, wait)
        if header.kind is Kind.RETRACTION:
            # Membership only (our own, and the originator's key checked above): the policy
            # change that motivated a withdrawal must not stop it (docs/broker.md).
            decision = decide_retraction(header, self.identity.agency, None)
        else:
            decision = self.policy.decide(
                header, self.identity.agency, judged_at(header.handling, now)
            )
        if not decision.allowed:
            # The broker let it through, but our verified view of the policy says no: we keep
            # nothing and tell the originator why.
            reason = "; ".join(r.message for r in decision.reasons)
            _log.warning("delivery refused by local policy", envelope=header.id, reason=reason)
            await self._receipt(header.originator, header.id, "refused", reason, "local_policy")
            await msg.term()
            self.refused += 1
            self.metrics.refused.labels(reason="local-policy").inc()
            return "local_policy"  # the receipt's code
        # The suite rule (suite 2 for RED, say) is enforced here too, not only by the broker,
        # which the trust model does not fully trust: a suite-1 envelope a broker let through
        # is refused before any key is used (docs/envelope-v1.md, MUST-032). A retraction is
        # exempt, as at the broker: a rule signed after the report must not stop its withdrawal.
        weak = (
            None
            if header.kind is Kind.RETRACTION
            else suite_refusal(self.policy.rules, header.handling, verified.envelope.suite)
        )
        if weak is not None:
            _log.warning("delivery below the required suite", envelope=header.id,
                         reason=weak.message)  # fmt: skip
            await self._receipt(header.originator, header.id, "refused", weak.message, weak.code)
            await msg.term()
            self.refused += 1
            self.metrics.refused.labels(reason=SUITE_BELOW_POLICY).inc()
            return SUITE_BELOW_POLICY
        try:
            opened = open_verified(
                verified, self.identity.encryption, withhold=decision.withheld_sections
            )
        except EnvelopeError as exc:
            # Signed by the originator: a section wrapped against our policy, or a stanza that
            # does not open. The originator hears why.
            return await self._refuse(msg, exc, header)
        if header.kind is Kind.RETRACTION:
            return await self._retraction(msg, opened.body, header, now)
        if header.kind is Kind.RELEASE_REQUEST:
            return await self._release_request(msg, opened.body, header, now)
        if header.kind in (Kind.REQUEST, Kind.RESPONSE):
            try:
                content = thread_content(header, opened.body)
            except ContentUnreadable as exc:
                return await self._refuse(msg, exc, header)
            self._store_message(header, content)  # idempotent: INSERT OR IGNORE
            # The receipt before the ack: if it cannot be sent, the delivery comes again
            # (stored once) instead of the originator never hearing of it.
            await self._receipt(header.originator, header.id, "delivered")
            await msg.ack()
            return header.kind.value
        try:
            report = open_report(opened)
        except PalermoError as exc:
            # Validly signed but not a readable report, or one that says something else than
            # its signed header: a redelivery cannot fix it, so it is refused like any other
            # bad delivery instead of being retried for ever, and the originator hears why.
            return await self._refuse(msg, exc, header)
        obligations = [o.to_dict() for o in decision.obligations]
        self.inbox.store(header, report, obligations, opened.withheld, now)
        # The receipt before the ack, as for requests: if it cannot be sent, the delivery comes
        # again and is answered as a duplicate (above) instead of never being confirmed.
        await self._receipt(header.originator, header.id, "delivered")
        await msg.ack()
        if self.on_stored:
            entry, _ = self.inbox.show(header.id)
            for listener in self.on_stored:
                listener(entry, report)
        self.received += 1
        self.metrics.stored.inc()
        return "stored"

    async def _early(self, msg: Msg, header: EnvelopeHeader, now: datetime, wait: timedelta) -> str:
        """An embargoed delivery that came before its not_before by this node's clock: nothing
        decided, decrypted, stored or receipted (the embargo has not passed here), and no refusal
        either (it is not wrong, only early): put back to come again after ``wait``. The
        consumers never give up on a delivery (max_deliver -1, node/_lanes.py).

        Why it is early is told apart by the time the server stored it in PLM_DLV: at or after
        not_before, the server released it on time and this node's clock is behind; before (or
        if the server does not say), a broker released it early. Either is logged as a warning
        and counted (palermo_node_early_total{cause}) at every look."""
        not_before = header.handling.not_before
        assert not_before is not None  # early_wait returned a wait
        stored = _stored_at(msg)
        details = {"envelope": header.id, "originator": header.originator,
                   "not_before": not_before.isoformat(), "node_clock": now.isoformat(),
                   "server_stored": stored.isoformat() if stored else None,
                   "retry_in_s": round(wait.total_seconds(), 1)}  # fmt: skip
        if stored is not None and stored >= not_before:
            cause = "clock_behind"
            _log.warning("embargoed delivery before its not_before by this node's clock, but "
                         "the NATS server stored it after not_before: this node's clock is "
                         "behind (by at least behind_s); check NTP on this node. Held unread "
                         "until not_before by this node's clock", cause=cause,
                         behind_s=int((stored - now).total_seconds()), **details)  # fmt: skip
        else:
            cause = "released_early"
            _log.warning("embargoed delivery released before its not_before (the NATS server "
                         "stored it before then): a broker released it early, or it was "
                         "written to PLM_DLV directly. Held unread until not_before by this "
                         "node's clock", cause=cause, **details)  # fmt: skip
        await msg.nak(delay=wait.total_seconds())
        self.metrics.early.labels(cause=cause).inc()
        return "early"

    def _ahead_ms(self) -> int:
        """The furthest ahead of this node's clock a delivery's created may be and still be put
        back rather than refused (``clock_skew``): max_envelope_age, beyond which no genuine copy
        can still be in PLM_DLV when this node's clock reaches it (and never less than the
        envelope's own tolerance)."""
        return max(int(self.max_envelope_age.total_seconds() * 1000), DEFAULT_MAX_CLOCK_SKEW_MS)

    async def _created_ahead(
        self, msg: Msg, header: EnvelopeHeader, now: datetime, wait: timedelta
    ) -> str:
        """A delivery created more than CLOCK_SKEW ahead of this node's clock: its signature
        verified and the broker took it, which it does only within CLOCK_SKEW of its own clock.
        Nothing decided, decrypted, stored or receipted, no refusal (the originator did nothing
        wrong): put back to come again after ``wait``, until this node's clock is within
        CLOCK_SKEW of created; the consumers never give up on a delivery (node/_lanes.py).

        Whose clock is wrong is told apart by the time the NATS server stored it in PLM_DLV: at
        or after created minus CLOCK_SKEW, this node's clock is behind the server's (by at least
        behind_s); before (or if the server does not say), the originator's and the broker's
        clocks are ahead of the server's, or it was written to PLM_DLV directly. Either is
        logged as a warning and counted (palermo_node_early_total{cause="created_ahead"}) at
        every look."""
        due = header.created - CLOCK_SKEW
        stored = _stored_at(msg)
        details = {
            "envelope": header.id,
            "originator": header.originator,
            "cause": "created_ahead",
            "created": header.created.isoformat(),
            "node_clock": now.isoformat(),
            "ahead_s": int((header.created - now).total_seconds()),
            "server_stored": stored.isoformat() if stored else None,
            "retry_in_s": round(wait.total_seconds(), 1),
        }
        if stored is not None and stored >= due:
            _log.warning("delivery created more than 5 minutes ahead of this node's clock, but "
                         "the NATS server stored it after created minus 5 minutes by its clock "
                         "(the broker takes nothing created further ahead of its own): this "
                         "node's clock is behind (by at least behind_s); check NTP on this node "
                         "(timedatectl, chronyc tracking). Held unread, not refused, until "
                         "created minus 5 minutes by this node's clock",
                         behind_s=int((stored - now).total_seconds()), **details)  # fmt: skip
        else:
            _log.warning("delivery created more than 5 minutes ahead of this node's clock, and "
                         "the NATS server stored it before created minus 5 minutes by its own "
                         "clock: the originator's and the broker's clocks are ahead (check NTP "
                         "on the broker; tell the originator), or it was written to PLM_DLV "
                         "directly. Held unread, not refused, until created minus 5 minutes by "
                         "this node's clock", **details)  # fmt: skip
        await msg.nak(delay=wait.total_seconds())
        self.metrics.early.labels(cause="created_ahead").inc()
        return "early"

    def _still_held(self, envelope_id: str) -> bool:
        """Whether a report is stored and not purged (a purged one is not 'delivered' again)."""
        try:
            entry, _ = self.inbox.show(envelope_id)
        except PalermoError:
            return False
        return entry.purged_ms is None

    async def _retraction(
        self, msg: Msg, body: bytes, header: EnvelopeHeader, now: datetime
    ) -> str:
        """Purge what the originator withdrew, and confirm it with a signed receipt."""
        try:
            target, reason = retraction_content(header, body)
        except ContentUnreadable as exc:
            return await self._refuse(msg, exc, header)
        entry = None
        with contextlib.suppress(InputError):
            entry, _ = self.inbox.show(target)
        # Only the originator of a report may withdraw it.
        if entry is None or entry.originator != header.originator:
            # Never stored here (refused, or never sent to us), or another agency's report:
            # nothing to purge, and the originator hears so on the retraction's own id (its
            # report's status keeps what this node said of it).
            return await self._refuse(msg, UnknownReference(
                f"{self.identity.agency} holds no report {target} from {header.originator} "
                "(never stored here, or refused on arrival): nothing to purge"
            ), header)  # fmt: skip
        self.inbox.purge(target, f"retracted: {reason}", now)
        await self._receipt(header.originator, target, "purged", reason)
        await msg.ack()
        return "purged"


def thread_content(header: EnvelopeHeader, body: bytes) -> dict[str, Any]:
    """What a request or response carries (``message_body``: a ``Question`` or ``Answer``).

    Whatever else a signed body holds ends in ``ContentUnreadable``, which the node refuses
    with a receipt; never an exception that would leave the delivery unanswered.
    """
    try:
        return message_body(header.kind, body)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        problem = f"{where or 'body'}: {first['msg']}" if first else "invalid"
        raise ContentUnreadable(
            header.kind.value, header.id, f"not the JSON a {header.kind.value} holds ({problem})"
        ) from exc
    except (ValueError, RecursionError) as exc:  # RecursionError: a deep JSON nest
        raise ContentUnreadable(
            header.kind.value, header.id, f"not JSON ({type(exc).__name__})"
        ) from exc


def retraction_content(header: EnvelopeHeader, body: bytes) -> tuple[str, str]:
    """The report a retraction withdraws and why (``Node.retract``), or ``ContentUnreadable``.

    The broker and ``decide_retraction`` judged the signed refs: the body must withdraw that
    very report, not another one.
    """
    try:
        content = msgpack.unpackb(body, raw=False)
        target, reason = str(content["retracts"]), str(content.get("reason", ""))
    except (ValueError, KeyError, TypeError, IndexError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as exc:  # fmt: skip
        raise ContentUnreadable(
            header.kind.value,
            header.id,
            f"not a msgpack map naming the report it retracts ({type(exc).__name__})",
        ) from exc
    if [target] != header.refs:
        raise ContentUnreadable(
            header.kind.value, header.id, f"retracts {target!r} but the header refs {header.refs}"
        )
    return target, reason
