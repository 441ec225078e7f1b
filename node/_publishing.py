"""The node's publishing path: who may receive a report, sealing and publishing it (with
retries under the same ``Nats-Msg-Id``), and retracting it. The lowest layer of
:class:`node.service.Node`, which also holds the state every layer shares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgpack
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext

from policies import embargo_ahead, suppress_linked
from protocol.directory import Directory
from protocol.envelope import seal
from protocol.keys import EncryptionKey, PublicSigningKey, SigningKey
from protocol.transport import map_nats_errors, publish_subject
from protocol.trust import TrustStore
from protocol.view import PolicyStore
from schemas import ALL_MEMBERS, EnvelopeHeader, Handling, Kind, Priority, Report, new_uuid7
from schemas.errors import (
    EmbargoTooFar,
    InputError,
    KindNotPublishable,
    PalermoError,
    TransportError,
)

from .inbox import Inbox, InboxEntry
from .metrics import NodeMetrics
from .reports import SealedReport, effective_report, seal_report, sealing_key

_log = structlog.get_logger("palermo.node")
# Causes after which a message may not have been stored, and sending it again is safe.
_UNACKNOWLEDGED: Final = (TimeoutError, nats.js.errors.NoStreamResponseError)
# A publish whose acknowledgement does not come (a server restarting, a stream leader being
# elected) is sent again: the same bytes under the same Nats-Msg-Id, which JetStream's duplicate
# window (StreamLimits.duplicate_window_s, 1 hour) stores at most once. These are the pauses
# between attempts.
PUBLISH_RETRY_DELAYS_S: Final[tuple[float, ...]] = (0.5, 2.0)
# The kinds whose body is not a report, each with the command that builds it. ``publish`` seals
# a report's own body; a receiving node reads these kinds' bodies as their own command writes
# them, so a report sent as one of them could only be refused on arrival (issue 15 item 1).
OWN_COMMAND: Final[dict[Kind, str]] = {
    Kind.REQUEST: "'palermo request --question TEXT ...' (Node.request)",
    Kind.RESPONSE: "'palermo respond REQUEST_ID --answer ...' (Node.respond)",
    Kind.RECEIPT: (
        "none: receipts are signed and sent by the recipient's node itself ('palermo inbox "
        "show' sends the opened one)"
    ),
    Kind.RELEASE_REQUEST: "'palermo release request' (Node.request_release)",
    Kind.RELEASE: "'palermo release grant' (Node.decide_release)",
    Kind.RETRACTION: "'palermo retract REPORT_ID --reason ...' (Node.retract)",
}


def check_publishable(kind: Kind) -> None:
    """``KindNotPublishable``, naming the command to use, for a kind ``publish`` cannot send."""
    if (command := OWN_COMMAND.get(kind)) is not None:
        raise KindNotPublishable(kind.value, command)


@dataclass(frozen=True)
class NodeIdentity:
    """Who this node is: its signing key and its current (and previous) decryption keys."""

    signing: SigningKey
    encryption: Sequence[EncryptionKey]

    @property
    def agency(self) -> str:
        return self.signing.agency


class _Publishing:
    """Publishing and sealing reports, and retracting them."""

    # The state Node.__init__ sets, shared by every layer of the node.
    nc: Client
    js: JetStreamContext
    identity: NodeIdentity
    root: PublicSigningKey
    inbox: Inbox
    directory: Directory
    trust: TrustStore
    policy: PolicyStore
    received: int
    refused: int
    metrics: NodeMetrics
    on_stored: list[Callable[[InboxEntry, Report], object]]
    broker_keys: dict[str, PublicSigningKey]
    max_envelope_age: timedelta
    max_embargo: timedelta
    statistics_k: int
    clock: Callable[[], datetime]
    _stopping: asyncio.Event

    # --- publishing ----------------------------------------------------------------------------

    def interested(self, report: Report) -> list[str]:
        """Partners whose signed subscriptions match the report's topic."""
        return sorted(
            agency
            for agency, subs in self.trust.subscriptions.items()
            if agency != self.identity.agency
            and subs.matches(report.route, report.category, report.kind)
        )

    def members_in_good_standing(self, now: datetime) -> list[str]:
        """Every other member that is active in the federation policy and holds a current,
        valid, unrevoked certificate: who "all members" means at ``now``."""
        index = self.policy.index
        if index is None:
            raise InputError(
                "no verified federation policy is held yet, so 'all members' names nobody; "
                "wait for the directory, or publish the federation policy"
            )
        out = []
        for agency in index.member_ids:
            if agency == self.identity.agency or not index.members[agency].active:
                continue
            try:
                self.trust.certificate(agency, now)
            except PalermoError:
                continue  # revoked or expired: not in good standing
            out.append(agency)
        return out

    def candidates(self, report: Report, to: Sequence[str] | None, now: datetime) -> list[str]:
        """Whom to consider: ``to``; every member in good standing for ``to = ["all-members"]``
        or a report whose rel_to is all-members (not only route subscribers); otherwise the
        partners subscribed to the report's topic. Policy then decides on each."""
        if to is not None and ALL_MEMBERS in to:
            if len(to) > 1:
                raise InputError(
                    "--to all-members already names every member; give it alone, or list "
                    "agencies without it"
                )
            return self.members_in_good_standing(now)
        if to is not None:
            return list(to)
        if report.handling.rel_to == [ALL_MEMBERS]:
            return self.members_in_good_standing(now)
        return self.interested(report)

    async def publish(
        self,
        report: Report,
        handling: Handling | None = None,
        *,
        to: Sequence[str] | None = None,
    ) -> SealedReport:
        """Seal for the interested partners the policy allows and publish; returns what was sent
        (``.header.id``, ``.recipients`` and every candidate's decision).

        ``handling`` replaces the report's own handling block. ``to`` names the candidates
        instead of the route's subscribers; ``["all-members"]`` (or a report whose rel_to is
        all-members) takes every member in good standing. Nothing is published if no partner
        may receive it (a typed error says why), nor a report whose kind has its own command
        (``KindNotPublishable`` names it: :data:`OWN_COMMAND`).
        """
        report, candidates, now = self.prepared(report, handling, to)
        sealed = seal_report(
            report, self.identity.signing, candidates, self.trust, self.policy, now
        )
        await self._send_sealed(report, sealed)
        return sealed

    def prepared(
        self, report: Report, handling: Handling | None, to: Sequence[str] | None
    ) -> tuple[Report, list[str], datetime]:
        """The report as it will be signed, its candidates and the time: every way of
        publishing (``publish``, ``publish --tear-line``, import, ingest) goes through here, so
        none can skip a rule (kind, originator, federation default action, disclosure control,
        embargo cap, all-members)."""
        check_publishable(report.kind)
        if handling is not None:
            report = report.model_copy(update={"handling": handling})
        # What is stored as sent is what is signed (the federation's default action included,
        # and a statistical return's small cells suppressed).
        report = effective_report(report, self.policy.federation)
        report = self.disclosure_controlled(report)
        if report.originator != self.identity.agency:
            raise InputError(
                f"this node is {self.identity.agency}; the report names {report.originator}"
            )
        now = self.clock()
        # Held by the broker until not_before, but only so long (docs/broker.md, "Embargo").
        ahead = embargo_ahead(report.handling, now)
        if ahead > self.max_embargo:
            raise EmbargoTooFar(int(ahead.total_seconds()), int(self.max_embargo.total_seconds()))
        return report, self.candidates(report, to, now), now

    def disclosure_controlled(self, report: Report) -> Report:
        """A statistics report with its small cells suppressed at k: this node's
        ``statistics_k`` or the federation's ``statistics_min_k``, whichever is higher
        (decision 0024), linked to the returns this node has already sent for the same agency
        and overlapping periods (decision 0025: ``LinkedReturnsDisclose`` refuses a month after
        its quarter). Any other report unchanged."""
        if report.statistics is None:
            return report
        federation = self.policy.federation
        floor = federation.rules.statistics_min_k if federation is not None else None
        k = max(self.statistics_k, floor or 0)
        try:
            controlled = suppress_linked(report.statistics, self.inbox.sent_statistics(), k)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        return report.model_copy(update={"statistics": controlled})

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

    async def _send_sealed(
        self, report: Report, sealed: SealedReport, *, tear_line_of: str | None = None
    ) -> None:
        header = sealed.header
        await self._publish(
            publish_subject(header), sealed.data, header.id, f"publish report {header.id}"
        )
        self.inbox.record_sent(sealed.header, report, datetime.now(UTC), tear_line_of)
        self.metrics.published.inc()

    async def retract(self, report_id: str, reason: str) -> EnvelopeHeader:
        """Withdraw one of our reports and its tear-line versions: every recipient's node
        purges it and confirms. Returns the retraction of ``report_id`` itself
        (:meth:`retract_all` returns every retraction sent)."""
        return (await self.retract_all(report_id, reason))[0]

    async def retract_all(self, report_id: str, reason: str) -> list[EnvelopeHeader]:
        """Withdraw one of our reports, then each tear-line version and each release sent of it
        (one retraction per envelope, as a retraction names exactly one report): a release
        target holds a copy of the report and must purge it too. The original's retraction
        comes first in the list; a copy none of whose recipients can receive any more is
        skipped (there is nobody left to purge it)."""
        sent = [await self._retract_one(report_id, reason)]
        for derivative in [*self.inbox.tear_lines(report_id), *self.inbox.releases(report_id)]:
            try:
                sent.append(await self._retract_one(derivative, reason))
            except InputError as exc:
                _log.warning("copy not retracted", report=derivative, reason=exc.reason)
        return sent

    async def _retract_one(self, report_id: str, reason: str) -> EnvelopeHeader:
        """The retraction goes to the original recipients under the original handling, without
        embargo or expiry (a withdrawal must reach them even after the report expired)."""
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
            schema_=original.schema_,
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
