"""The agency node: publish reports, receive deliveries into the inbox, send receipts.

This is the third enforcement point (DESIGN.md "Data flow"): every delivery is verified against
the pinned root, checked again against the signed policy on its signed header (a broker cannot
talk a node into keeping what the originator's handling forbids), opened with the agency's own
keys except for the sections that decision withholds, compared with its header, stored with its
obligations in the encrypted inbox, and acknowledged to the originator with a signed receipt
(a signed refusal, with a code, for what it refuses once the signature verified).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgpack
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from policies import decide_retraction, may_forward
from protocol import crypto
from protocol.directory import Directory
from protocol.envelope import Verified, open_verified, seal, verify_envelope
from protocol.keys import EncryptionKey, PublicSigningKey, SigningKey
from protocol.settings import load_public_key_file, load_root_public
from protocol.transport import connect, deliver_subject, map_nats_errors, publish_subject
from protocol.trust import (
    MAX_BUNDLE_KEYS,
    KeyBundle,
    Subscriptions,
    TopicFilter,
    TrustStore,
    bundle_for,
    canonical_json,
    sign_document,
    verify_document,
)
from protocol.view import PolicyStore
from schemas import EnvelopeHeader, Handling, Kind, Priority, Report, new_uuid7
from schemas.errors import (
    AuthenticationFailed,
    EnvelopeError,
    EnvelopeTooOld,
    InputError,
    NotARecipient,
    PalermoError,
    Replayed,
    ReportInvalid,
    SubjectMismatch,
    TransportError,
    TrustError,
)

from .config import DEFAULT_MAX_ENVELOPE_AGE, NodeSettings
from .inbox import Inbox, InboxEntry, StorageKey
from .metrics import NodeMetrics
from .receipts import MAX_RECEIPT_REASON, Receipt
from .releases import ReleaseDecision, ReleaseRequest
from .reports import SealedReport, open_report, seal_report, sealing_key

__all__ = ["Node", "NodeIdentity"]

_log = structlog.get_logger("palermo.node")
# Causes after which a message may not have been stored, and sending it again is safe.
_UNACKNOWLEDGED: Final = (TimeoutError, nats.js.errors.NoStreamResponseError)
FETCH_BATCH: Final[int] = 64
# A publish whose acknowledgement does not come (a server restarting, a stream leader being
# elected) is sent again: the same bytes under the same Nats-Msg-Id, which JetStream's duplicate
# window (StreamLimits.duplicate_window_s, 1 hour) stores at most once. These are the pauses
# between attempts.
PUBLISH_RETRY_DELAYS_S: Final[tuple[float, ...]] = (0.5, 2.0)
# The broker signs its notices under this domain (broker/service.py, Broker._notice).
BROKER_NOTICE_DOMAIN: Final[bytes] = b"palermo/v1/broker-notice\x00"
# Domain of the signatures that make this node's PLM_RCPT message ids (Node._msg_id).
MSG_ID_DOMAIN: Final[bytes] = b"palermo/v1/rcpt-msg-id\x00"


@dataclass(frozen=True)
class NodeIdentity:
    """Who this node is: its signing key and its current (and previous) decryption keys."""

    signing: SigningKey
    encryption: Sequence[EncryptionKey]

    @property
    def agency(self) -> str:
        return self.signing.agency


class Node:
    """One agency's node on a NATS connection. Use :meth:`connect`."""

    def __init__(
        self,
        nc: Client,
        identity: NodeIdentity,
        root: PublicSigningKey,
        inbox: Inbox,
        directory: Directory,
        *,
        broker_keys: Sequence[PublicSigningKey] = (),
        max_envelope_age: timedelta = DEFAULT_MAX_ENVELOPE_AGE,
    ) -> None:
        self.nc = nc
        # The directory's context: it carries the JetStream domain of a node behind a leafnode.
        self.js = directory.js
        self.identity = identity
        self.root = root
        self.inbox = inbox
        self.directory = directory
        self.trust: TrustStore = directory.store
        self.policy: PolicyStore = directory.policy
        self.received = 0
        self.refused = 0
        self.metrics = NodeMetrics()
        self.metrics.watch_revocations(self.trust)  # the overdue-list alarm (decision 0014)
        self.on_stored: list[Callable[[InboxEntry, Report], object]] = []
        # The broker keys that may sign notices to us ('palermo status'), by key id.
        self.broker_keys = {k.kid: k for k in broker_keys}
        self.max_envelope_age = max_envelope_age
        self._stopping = asyncio.Event()

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        nats_url: str | list[str],
        identity: NodeIdentity,
        root: PublicSigningKey,
        state_dir: Path,
        nats_options: Mapping[str, Any] | None = None,
        js_domain: str | None = None,
        *,
        broker_keys: Sequence[PublicSigningKey] = (),
        max_envelope_age: timedelta = DEFAULT_MAX_ENVELOPE_AGE,
    ) -> AsyncIterator[Node]:
        """Connect, load and follow the directory, open the inbox; close everything on exit.

        ``nats_options`` go to ``nats.connect`` (TLS, credentials, inbox prefix);
        ``js_domain`` is the hub's JetStream domain when this node is behind a leafnode;
        ``broker_keys`` verify the broker's notices (unverified ones are ignored);
        ``max_envelope_age`` is the oldest delivery taken.
        """
        # Local files only, once at start-up: not worth a thread.
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # noqa: ASYNC240
        inbox = Inbox(state_dir / "inbox.db", StorageKey.load_or_create(state_dir / "storage.key"))
        try:
            async with connect(
                nats_url, f"palermo-node-{identity.agency}", **(nats_options or {})
            ) as nc:
                trust = TrustStore(root)
                js = nc.jetstream(domain=js_domain)
                # The high-water marks persist in the state dir: a rollback written to the
                # directory while this node was down is not adopted when it comes back.
                directory = Directory(js, trust, PolicyStore(root, trust), state_dir=state_dir)
                await directory.load()
                await directory.watch()
                try:
                    node = cls(nc, identity, root, inbox, directory, broker_keys=broker_keys,
                               max_envelope_age=max_envelope_age)  # fmt: skip
                    directory.register_metrics(node.metrics.registry)
                    yield node
                finally:
                    await directory.close()
        finally:
            inbox.close()

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: NodeSettings) -> AsyncIterator[Node]:
        """The node described by a node.toml (:class:`~node.config.NodeSettings`).

        ``async with Node.open(NodeSettings.load(path)) as node: await node.publish(report)``
        """
        settings.check_secure()
        signing, decryption = settings.keys()
        async with cls.connect(
            settings.nats_url,
            NodeIdentity(signing, decryption),
            load_root_public(settings.root_key),
            settings.state_dir,
            settings.connect_options(),
            settings.nats_js_domain,
            broker_keys=[load_public_key_file(p, "broker") for p in settings.broker_keys],
            max_envelope_age=settings.max_envelope_age,
        ) as node:
            yield node

    # --- membership ----------------------------------------------------------------------------

    async def subscribe(
        self, routes: Sequence[str], categories: Sequence[str] = (), kinds: Sequence[str] = ()
    ) -> Subscriptions:
        """Register interest (replacing the previous registration): a signed document in the
        directory that publishers read to decide whom to encrypt for."""
        # The next seq above the highest ever accepted, not above the one held: the held one may
        # have been dropped (signed by a replaced key) and the directory refuses a lower seq.
        mark = self.trust.marks.get(f"subs.{self.identity.agency}")
        filters = [
            TopicFilter.model_validate(
                {"route": r, "categories": list(categories), "kinds": list(kinds)}
            )
            for r in routes
        ]
        subs = Subscriptions(
            agency=self.identity.agency,
            seq=(mark.version + 1) if mark else 1,
            issued=datetime.now(UTC),
            filters=filters,
        )
        await self.directory.publish(sign_document(subs, self.identity.signing, subs.agency))
        return subs

    async def rotate_keys(
        self, new: EncryptionKey, *, overlap_days: int = 7, days: int = 90
    ) -> KeyBundle:
        """Publish a bundle whose newest key is ``new``; older keys stay listed for the overlap.

        Senders wrap for the newest key at once; this node keeps the old private keys, so
        nothing sealed before, during or after the rotation becomes unreadable.
        """
        now = datetime.now(UTC)
        current = self.trust.bundles.get(self.identity.agency)
        keep = []
        for entry in current.keys if current else []:
            until = min(entry.not_after, now + timedelta(days=overlap_days))
            if until > now:
                keep.append(entry.model_copy(update={"not_after": until}))
        fresh = bundle_for(self.identity.agency, [new.public], now=now, days=days)
        mark = self.trust.marks.get(f"bundle.{self.identity.agency}")
        bundle = KeyBundle(
            agency=self.identity.agency,
            seq=(mark.version + 1) if mark else 1,  # above every seq accepted, held or dropped
            issued=now,
            keys=[*fresh.keys, *keep][:MAX_BUNDLE_KEYS],
        )
        await self.directory.publish(sign_document(bundle, self.identity.signing, bundle.agency))
        self.identity = NodeIdentity(self.identity.signing, [new, *self.identity.encryption])
        return bundle

    # --- publishing ----------------------------------------------------------------------------

    def interested(self, report: Report) -> list[str]:
        """Partners whose signed subscriptions match the report's topic."""
        return sorted(
            agency
            for agency, subs in self.trust.subscriptions.items()
            if agency != self.identity.agency
            and subs.matches(report.route, report.category, report.kind)
        )

    async def publish(
        self,
        report: Report,
        handling: Handling | None = None,
        *,
        to: Sequence[str] | None = None,
    ) -> SealedReport:
        """Seal for the interested partners the policy allows and publish; returns what was sent
        (``.header.id``, ``.recipients`` and every candidate's decision).

        ``handling`` replaces the report's own handling block. Nothing is published if no
        partner may receive it (a typed error says why).
        """
        if handling is not None:
            report = report.model_copy(update={"handling": handling})
        if report.originator != self.identity.agency:
            raise InputError(
                f"this node is {self.identity.agency}; the report names {report.originator}"
            )
        candidates = list(to) if to is not None else self.interested(report)
        sealed = seal_report(
            report, self.identity.signing, candidates, self.trust, self.policy, datetime.now(UTC)
        )
        await self._send_sealed(report, sealed)
        return sealed

    async def _publish(self, subject: str, data: bytes, msg_id: str, action: str) -> None:
        """Publish to JetStream and wait for it to be stored, retrying only what may be lost."""
        delays = iter(PUBLISH_RETRY_DELAYS_S)
        while True:
            try:
                with map_nats_errors(action):
                    await self.js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
                return
            except TransportError as exc:
                delay = next(delays, None)
                if delay is None or not isinstance(exc.__cause__, _UNACKNOWLEDGED):
                    raise
                _log.warning("publish not acknowledged; sending it again", action=action,
                             msg_id=msg_id, retry_in_s=delay, error=exc.reason)  # fmt: skip
                self.metrics.publish_retries.inc()
                await asyncio.sleep(delay)

    async def _send_sealed(self, report: Report, sealed: SealedReport) -> None:
        header = sealed.header
        await self._publish(
            publish_subject(header), sealed.data, header.id, f"publish report {header.id}"
        )
        self.inbox.record_sent(sealed.header, report, datetime.now(UTC))
        self.metrics.published.inc()

    async def retract(self, report_id: str, reason: str) -> EnvelopeHeader:
        """Withdraw one of our reports: every recipient's node purges it and confirms.

        The retraction goes to the original recipients under the original handling, without
        embargo or expiry (a withdrawal must reach them even after the report expired).
        """
        original = self.inbox.sent_header(report_id)
        now = datetime.now(UTC)
        # A recipient revoked since, or whose key became unusable, must not stop the others
        # from getting the withdrawal (it cannot be sealed to, so it is left out).
        keys = [sealing_key(self.trust, a, now)[0] for a in original.recipients]
        readers = [k for k in keys if k is not None]
        if not readers:
            raise InputError(f"none of the recipients of {report_id} can receive any more")
        handling = original.handling.model_copy(update={"not_before": None, "expires": None})
        header = EnvelopeHeader(
            id=new_uuid7(),
            originator=self.identity.agency,
            kid=self.identity.signing.kid,
            created=now,
            kind=Kind.RETRACTION,
            priority=Priority.URGENT,
            route=original.route,
            category=original.category,
            handling=handling,
            recipients=sorted(r.agency for r in readers),
            refs=[report_id],
        )
        body = msgpack.packb({"retracts": report_id, "reason": reason})
        data = seal(header, body, self.identity.signing, readers)
        await self._publish(
            publish_subject(header), data, header.id, f"publish the retraction of {report_id}"
        )
        self.inbox.mark_retracted(report_id, now)
        return header

    # --- receiving -----------------------------------------------------------------------------

    async def confirm_opened(self, report_id: str) -> bool:
        """Tell the originator (signed) the first time a person opens a report."""
        entry, _ = self.inbox.show(report_id)
        if not self.inbox.mark_opened(report_id, datetime.now(UTC)):
            return False
        await self._receipt(entry.originator, report_id, "opened")
        return True

    def _msg_id(self, kind: str, *fields: str) -> str:
        """A ``Nats-Msg-Id`` for what this node publishes to PLM_RCPT.

        JetStream deduplicates on the id across the whole stream, whoever publishes: an id
        another member can predict (``rcpt.<envelope>.<agency>.<status>``) lets a co-recipient
        publish first under it and have our genuine receipt dropped as a duplicate. This id is
        a hash of our Ed25519 signature over the fields: only we can compute it, and, Ed25519
        being deterministic, the same fields always give the same id, so a retry is still
        stored once.
        """
        sig = crypto.sign(self.identity.signing.private, MSG_ID_DOMAIN, canonical_json(fields))
        tag = crypto.digest(MSG_ID_DOMAIN, sig)[:16].hex()
        return f"{kind}.{self.identity.agency}.{tag}"

    async def _receipt(
        self, originator: str, envelope_id: str, status: str, reason: str = "",
        code: str | None = None,
    ) -> None:  # fmt: skip
        receipt = Receipt(
            envelope=envelope_id,
            originator=originator,
            recipient=self.identity.agency,
            status=status,
            code=code,
            reason=reason[:MAX_RECEIPT_REASON] or None,
            time=datetime.now(UTC),
        )
        signed = sign_document(receipt, self.identity.signing, self.identity.agency)
        await self._publish(
            f"plm.rcpt.{originator}.receipt.{self.identity.agency}",
            canonical_json(signed),
            self._msg_id("rcpt", envelope_id, status),
            "send a receipt",
        )

    async def _refuse(
        self, msg: Msg, exc: PalermoError, header: EnvelopeHeader | None = None
    ) -> str:
        """Terminate a delivery no redelivery can fix, and log and count why.

        With ``header`` (only once its signature verified, so the originator is genuine), the
        originator also gets a signed refusal receipt naming the code and the reason. The
        receipt goes first: if it cannot be sent the delivery is retried, not lost.
        """
        stage = exc.stage if isinstance(exc, AuthenticationFailed) else None
        _log.warning("delivery refused", subject=msg.subject, code=exc.code, reason=exc.reason,
                     stage=stage)  # fmt: skip
        if header is not None:
            await self._receipt(header.originator, header.id, "refused", exc.reason, exc.code)
        await msg.term()
        self.refused += 1
        self.metrics.refused.labels(reason=exc.code).inc()
        return exc.code

    def _verify(self, msg: Msg, now: datetime) -> Verified:
        """Signature, replay, subject and recipient: everything before any decision."""
        verified = verify_envelope(msg.data, self.trust, now=now)
        header = verified.header
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
        return verified

    def _check_age(self, header: EnvelopeHeader, now: datetime) -> None:
        """Refuse what no genuine delivery can be: older than the broker's age limit plus the
        time PLM_DLV keeps a delivery (``max_envelope_age``, DEFAULT_MAX_ENVELOPE_AGE)."""
        age = now - header.created
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
        now = datetime.now(UTC)
        try:
            verified = self._verify(msg, now)
        except EnvelopeError as exc:
            if exc.code == "replayed":
                await msg.ack()  # already stored: a redelivery after a crash
                return "duplicate"
            # Not for us, forged or altered: never retried, logged for the operator.
            return await self._refuse(msg, exc)
        header = verified.header
        try:
            self._check_age(header, now)
        except EnvelopeError as exc:
            return await self._refuse(msg, exc, header)
        if header.kind is Kind.RETRACTION:
            # Membership only (our own, and the originator's key checked above): the policy
            # change that motivated a withdrawal must not stop it (docs/broker.md).
            decision = decide_retraction(header, self.identity.agency, None)
        else:
            decision = self.policy.decide(header, self.identity.agency, now)
        if not decision.allowed:
            # The broker let it through, but our verified view of the policy says no: we keep
            # nothing and tell the originator why.
            reason = "; ".join(r.message for r in decision.reasons)
            _log.warning("delivery refused by local policy", envelope=header.id, reason=reason)
            await self._receipt(header.originator, header.id, "refused", reason, "local_policy")
            await msg.term()
            self.refused += 1
            self.metrics.refused.labels(reason="local-policy").inc()
            return "refused"
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
                content = json.loads(opened.body)
                if not isinstance(content, dict) or not isinstance(content.get("text"), str):
                    raise ValueError("a request or response carries a text")
            except (ValueError, RecursionError) as exc:  # RecursionError: a deep JSON nest
                _log.warning("unreadable message", envelope=header.id, error=repr(exc))
                await msg.term()
                return "refused"
            self.inbox.add_message(header, content, now)
            await msg.ack()
            await self._receipt(header.originator, header.id, "delivered")
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
        await msg.ack()
        if self.on_stored:
            entry, _ = self.inbox.show(header.id)
            for listener in self.on_stored:
                listener(entry, report)
        await self._receipt(header.originator, header.id, "delivered")
        self.received += 1
        self.metrics.stored.inc()
        return "stored"

    # --- requests and responses ---------------------------------------------------------------

    async def _send_message(
        self, to: str, kind: Kind, refs: Sequence[str], content: dict[str, Any],
        route: str, category: str, urgent: bool,
    ) -> EnvelopeHeader:  # fmt: skip
        now = datetime.now(UTC)
        keys = self.trust.encryption_keys(to, now)
        if not keys:
            raise InputError(f"{to} has no current encryption key in the directory")
        header = EnvelopeHeader(
            id=new_uuid7(),
            originator=self.identity.agency,
            kid=self.identity.signing.kid,
            created=now,
            kind=kind,
            priority=Priority.URGENT if urgent else Priority.ROUTINE,
            route=route,
            category=category,
            handling=Handling(tlp="RED", rel_to=[to]),
            recipients=[to],
            refs=list(refs),
        )
        data = seal(header, json.dumps(content).encode(), self.identity.signing, [keys[0]])
        await self._publish(publish_subject(header), data, header.id, f"publish a {kind.value}")
        return header

    async def request(
        self, report_id: str, question: str, *, subject: str = "information", urgent: bool = False
    ) -> EnvelopeHeader:
        """Ask a report's originator for information or a document verification (003 p.49)."""
        entry, _ = self.inbox.show(report_id)
        return await self._send_message(
            entry.originator, Kind.REQUEST, [report_id],
            {"subject": subject, "text": question}, entry.route, entry.category, urgent,
        )  # fmt: skip

    async def respond(self, request_id: str, answer: str) -> EnvelopeHeader:
        """Answer a request, threaded to it and to the report it is about."""
        found = [m for m in self.inbox.messages("request") if m["id"] == request_id]
        if not found:
            raise InputError(f"no request {request_id}; see 'palermo requests'")
        req = found[0]
        report = self.inbox.sent_header(req["refs"][0])
        header = await self._send_message(
            req["from"], Kind.RESPONSE, [*req["refs"], request_id], {"text": answer},
            report.route.value, report.category.value, req["priority"] == "urgent",
        )  # fmt: skip
        self.inbox.mark_answered(request_id, header.id)
        return header

    # --- onward dissemination ---------------------------------------------------------------

    async def request_release(self, report_id: str, to: str, purpose: str) -> EnvelopeHeader:
        """Ask a report's originator to let us pass it on to ``to``."""
        entry, _ = self.inbox.show(report_id)
        request = ReleaseRequest(report=report_id, to=to, purpose=purpose)
        # The request names a partner and a purpose: RED, for the originator only.
        return await self._send_message(
            entry.originator, Kind.RELEASE_REQUEST, [report_id], request.model_dump(mode="json"),
            entry.route, entry.category, urgent=False,
        )  # fmt: skip

    async def _release_request(
        self, msg: Msg, body: bytes, header: EnvelopeHeader, now: datetime
    ) -> str:
        """As originator: refuse what policy forbids at once, hold the rest for an officer."""
        try:
            request = ReleaseRequest.model_validate_json(body)
            original = self.inbox.sent_header(request.report)
        except (ValueError, PalermoError) as exc:
            _log.warning("release request refused", envelope=header.id, error=repr(exc))
            await msg.term()
            return "refused"
        holder = header.originator
        decision_reason: str | None
        if holder not in original.recipients:
            decision_reason = f"{holder} never received report {request.report}"
        elif (not_member := self._not_a_member(request.to, now)) is not None:
            # Not worth an officer's time: no grant could be sealed for it (decide_release).
            decision_reason = f"{request.to} cannot receive reports: {not_member}"
        else:
            assert self.policy.index is not None
            decision = may_forward(
                original, holder, request.to, self.policy.index, True, now,
                agency_policy=self.policy.agency_policies.get(self.identity.agency),
            )  # fmt: skip
            decision_reason = (
                None if decision.allowed else "; ".join(r.message for r in decision.reasons)
            )
        state = "pending" if decision_reason is None else "denied"
        self.inbox.add_release_request(
            header.id, request.report, holder, request.to, request.purpose, now, state,
            decision_reason,
        )  # fmt: skip
        if state == "denied":
            await self._release_answer(header.id, "denied", decision_reason)
        await msg.ack()
        return f"release-{state}"

    def _not_a_member(self, agency: str, now: datetime) -> str | None:
        """Why ``agency`` is not a member in good standing at ``now``, or None if it is."""
        try:
            self.trust.certificate(agency, now)
        except PalermoError as exc:
            return exc.reason
        return None

    async def decide_release(self, request_id: str, grant: bool, reason: str = "") -> str | None:
        """An officer's decision on a pending request; a grant seals the report for the target.

        Returns the release envelope id on a grant. A grant that can no longer be sealed (the
        target was revoked, or lost its keys or its agreement, since the request came) raises
        InputError and leaves the request pending, to be denied.
        """
        release: tuple[Report, SealedReport] | None = None
        for pending in self.inbox.release_requests("pending") if grant else []:
            if pending["id"] == request_id:
                # Sealed before the grant is recorded: a grant must never be on record for a
                # release that could not be sent.
                report = self._release_report(pending)
                release = report, seal_report(report, self.identity.signing,
                                              [pending["target"]], self.trust, self.policy,
                                              datetime.now(UTC))  # fmt: skip
        # Refuses an unknown or already decided request (so a grant always has its release).
        self.inbox.decide_release(request_id, "granted" if grant else "denied", reason)
        if not grant:
            await self._release_answer(request_id, "denied", reason or "refused by the originator")
            return None
        assert release is not None
        report, sealed = release
        await self._send_sealed(report, sealed)
        await self._release_answer(request_id, "granted", reason or None, sealed.header.id)
        return sealed.header.id

    def _release_report(self, row: Mapping[str, Any]) -> Report:
        """The report as released to a request's target: kind release, target added to rel_to."""
        report = self.inbox.sent_report(row["report"])
        original = self.inbox.sent_header(row["report"])
        handling = original.handling.model_copy(
            update={"rel_to": sorted({*original.handling.rel_to, row["target"]})}
        )
        return report.model_copy(update={"kind": Kind.RELEASE, "handling": handling})

    async def _release_answer(
        self, request_id: str, decision: str, reason: str | None, release: str | None = None
    ) -> None:
        [row] = [r for r in self.inbox.release_requests() if r["id"] == request_id]
        answer = ReleaseDecision(
            request=request_id, report=row["report"], requester=row["requester"],
            target=row["target"], decision=decision, reason=reason, release=release,
            time=datetime.now(UTC),
        )  # fmt: skip
        signed = sign_document(answer, self.identity.signing, self.identity.agency)
        await self._publish(
            f"plm.rcpt.{row['requester']}.release.{self.identity.agency}",
            canonical_json(signed),
            self._msg_id("release", request_id, decision),
            "answer a release request",
        )

    async def _retraction(
        self, msg: Msg, body: bytes, header: EnvelopeHeader, now: datetime
    ) -> str:
        """Purge what the originator withdrew, and confirm it with a signed receipt."""
        try:
            content = msgpack.unpackb(body, raw=False)
            target, reason = str(content["retracts"]), str(content.get("reason", ""))
            # The broker and decide_retraction judged the signed refs: the body must withdraw
            # that very report, not another one.
            if [target] != header.refs:
                raise ValueError(f"retracts {target!r} but the header refs {header.refs}")
        except (ValueError, KeyError, TypeError, msgpack.ExtraData) as exc:
            _log.warning("unreadable retraction", envelope=header.id, error=repr(exc))
            await msg.term()
            return "refused"
        entry = None
        with contextlib.suppress(InputError):
            entry, _ = self.inbox.show(target)
        # Only the originator of a report may withdraw it.
        if entry is not None and entry.originator == header.originator:
            self.inbox.purge(target, f"retracted: {reason}", now)
            await self._receipt(header.originator, target, "purged", reason)
        await msg.ack()
        return "purged"

    async def run(self) -> None:
        """Consume this agency's deliveries until :meth:`stop`."""
        me = self.identity.agency
        with map_nats_errors("subscribe to deliveries"):
            sub = await self.js.pull_subscribe(
                f"plm.dlv.{me}.>",
                durable=f"node-{me}",
                stream="PLM_DLV",
                # No attempt limit: what cannot be stored yet (a full disk, a receipt that
                # cannot be sent) is retried until it can; what can never be stored is refused
                # and terminated by handle(). A limit would silently drop an alert.
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_deliver=-1, ack_wait=30),
            )
        try:
            while not self._stopping.is_set():
                try:
                    msgs = await sub.fetch(FETCH_BATCH, timeout=0.5)
                except (nats.errors.TimeoutError, TimeoutError):
                    self.metrics.purged.inc(len(self.inbox.purge_expired(datetime.now(UTC))))
                    continue
                except nats.errors.Error as exc:
                    _log.warning("fetch failed; retrying", error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    try:
                        await self.handle(msg)
                    except PalermoError as exc:
                        _log.warning("delivery not stored; will retry", code=exc.code,
                                     reason=exc.reason)  # fmt: skip
                        with contextlib.suppress(nats.errors.Error):
                            await msg.nak(delay=1)
                    except Exception as exc:  # one delivery must not stop the node
                        # A bug met on untrusted input: keep consuming the other deliveries and
                        # leave this one in the stream for a fixed node to take (redelivered).
                        _log.error("unexpected error handling a delivery; will retry",
                                   subject=msg.subject, error=repr(exc))  # fmt: skip
                        with contextlib.suppress(nats.errors.Error):
                            await msg.nak(delay=5)
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await sub.unsubscribe()

    async def delivery_status(self, report_id: str) -> dict[str, dict[str, Any]]:
        """Per recipient, what came back for one of our reports: receipts and broker refusals.

        Receipts are verified against the recipient's certificate; a receipt that does not
        verify is reported as such, never trusted.
        """
        me = self.identity.agency
        # A fixed name, so a deployment's NATS permissions can allow exactly this consumer and
        # its filter (deploy/permissions.py); removed first, so every call reads from the start.
        name = f"status-{me}"
        with contextlib.suppress(nats.errors.Error):
            await self.js.delete_consumer("PLM_RCPT", name)
        with map_nats_errors("read the receipts"):
            await self.js.add_consumer(
                "PLM_RCPT",
                ConsumerConfig(
                    name=name,
                    filter_subject=f"plm.rcpt.{me}.>",
                    ack_policy=AckPolicy.NONE,
                    inactive_threshold=60,
                ),
            )
            sub = await self.js.pull_subscribe_bind(stream="PLM_RCPT", name=name)
        out: dict[str, dict[str, Any]] = {}
        try:
            while True:
                try:
                    msgs = await sub.fetch(256, timeout=0.3)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                for msg in msgs:
                    self._status_from(msg, report_id, out)
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await sub.unsubscribe()
                await self.js.delete_consumer("PLM_RCPT", name)
        return dict(sorted(out.items()))

    def _status_from(self, msg: Msg, report_id: str, out: dict[str, dict[str, Any]]) -> None:
        try:
            signed = json.loads(msg.data)
            document = signed["document"]
            if not isinstance(document, dict):
                return
        except (ValueError, KeyError, TypeError, RecursionError):
            return
        if document.get("envelope") != report_id:
            return
        me = self.identity.agency
        if document.get("kind") == "broker-notice":
            # Only the broker's notice subject, only notices about our reports, only signed
            # by a broker key this node was configured with: a notice names other agencies as
            # refused, and anyone who could write it would decide what our status says.
            if msg.subject != f"plm.rcpt.{me}.notice" or document.get("originator") != me:
                return
            if not self._broker_signed(signed, document):
                return
            for refusal in document.get("refused", []):
                out[refusal["recipient"]] = {
                    "status": "denied by broker",
                    "reasons": refusal.get("reasons", []),
                    "by": document.get("broker"),
                }
            return
        # plm.rcpt.<me>.receipt.<recipient>: NATS permissions let only <recipient> publish
        # there, so a receipt counts only on its own recipient's subject, signed by it, and
        # about one of our reports. Anything else is ignored, not shown: a receipt moved to
        # another agency's subject is a claim by one agency dressed as another's channel.
        recipient = document.get("recipient")
        # (Ignored without a log line: 'palermo status --json' prints to stdout.)
        if msg.subject != f"plm.rcpt.{me}.receipt.{recipient}" or document.get("originator") != me:
            return
        cert = self.trust.members.get(recipient) if isinstance(recipient, str) else None
        try:
            if cert is None:
                raise TrustError(f"no certificate for {recipient!r}")
            receipt = verify_document(signed, Receipt, cert.public_signing_key, cert.agency)
        except PalermoError as exc:
            # Shown, but never over a verified receipt from the same agency.
            out.setdefault(
                str(recipient), {"status": "unverifiable receipt", "reasons": [exc.to_dict()]}
            )
            return
        current = out.get(receipt.recipient, {})
        # The most advanced state wins: purged after delivered, delivered after nothing.
        rank = {"delivered": 1, "opened": 2, "refused": 3, "purged": 4}
        if rank.get(receipt.status, 0) >= rank.get(str(current.get("status")), 0):
            reasons = [{"message": receipt.reason}] if receipt.reason else []
            if receipt.code and reasons:
                reasons[0]["code"] = receipt.code
            out[receipt.recipient] = {
                "status": receipt.status,
                "time": receipt.time.isoformat(),
                "reasons": reasons,
            }

    def _broker_signed(self, signed: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
        """Whether a broker notice carries a valid signature by one of ``broker_keys``."""
        try:
            signature = signed["signature"]
            key = self.broker_keys.get(signature["kid"])
            if key is None:
                raise KeyError(signature["kid"])
            crypto.verify(key.key, bytes.fromhex(signature["ed25519"]), BROKER_NOTICE_DOMAIN,
                          canonical_json(document))  # fmt: skip
        except (KeyError, TypeError, ValueError, crypto.AuthError):
            return False
        return True

    async def http_ingest(self, request: Any) -> Any:
        """POST /v1/reports: 202 {id, recipients, refused}; 422 with field errors; nothing is
        published unless the whole report is valid and at least one partner may receive it."""
        from aiohttp import web

        from schemas.export import parse_report

        try:
            report = parse_report(await request.read())
            sealed = await self.publish(report)
        except ReportInvalid as exc:
            return web.json_response(exc.to_dict(), status=422)
        except InputError as exc:
            return web.json_response(exc.to_dict(), status=409)
        except PalermoError as exc:
            return web.json_response(exc.to_dict(), status=503)
        refused = {
            a: [r.to_dict() for r in d.reasons]
            for a, d in sealed.decisions.items()
            if not d.allowed
        }
        return web.json_response(
            {"id": sealed.header.id, "recipients": sealed.recipients, "refused": refused},
            status=202,
        )

    def stop(self) -> None:
        self._stopping.set()

    def status(self) -> dict[str, Any]:
        return {"agency": self.identity.agency, "received": self.received, "refused": self.refused}
