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

from policies import embargo_ahead
from protocol.directory import Directory
from protocol.envelope import seal
from protocol.keys import EncryptionKey, PublicSigningKey, SigningKey
from protocol.transport import map_nats_errors, publish_subject
from protocol.trust import TrustStore
from protocol.view import PolicyStore
from schemas import EnvelopeHeader, Handling, Kind, Priority, Report, new_uuid7
from schemas.errors import EmbargoTooFar, InputError, TransportError

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
        # What is stored as sent is what is signed (the federation's default action included).
        report = effective_report(report, self.policy.federation)
        if report.originator != self.identity.agency:
            raise InputError(
                f"this node is {self.identity.agency}; the report names {report.originator}"
            )
        now = self.clock()
        # Held by the broker until not_before, but only so long (docs/broker.md, "Embargo").
        ahead = embargo_ahead(report.handling, now)
        if ahead > self.max_embargo:
            raise EmbargoTooFar(int(ahead.total_seconds()), int(self.max_embargo.total_seconds()))
        candidates = list(to) if to is not None else self.interested(report)
        sealed = seal_report(
            report, self.identity.signing, candidates, self.trust, self.policy, now
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
