"""The broker's pure half: inspect each envelope (format, header, keys, subject, age), check
its signature and decide per recipient, without I/O. :mod:`broker.service` publishes, audits
and acks what this decides."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

import structlog
from nats.aio.msg import Msg

from policies import (
    Decision,
    FederationRules,
    decide_retraction,
    embargo_ahead,
    envelope_age,
    release_time,
    suite_refusal,
)
from protocol.envelope import Unverified, Verified, check_signature, inspect_envelope
from protocol.lanes import ROUTINE, LaneShares
from protocol.transport import publish_subject, subject_originator
from protocol.trust import TrustStore
from schemas import EnvelopeHeader, Kind
from schemas.errors import (
    EmbargoTooFar,
    EnvelopeTooOld,
    MalformedEnvelope,
    PalermoError,
    SubjectMismatch,
)

from .metrics import BrokerMetrics

_log = structlog.get_logger("palermo.broker")


class PolicyView(Protocol):
    """The broker's view of the signed federation policy and standing policies."""

    def decide_all(
        self, header: EnvelopeHeader, recipients: Sequence[str], now: datetime
    ) -> Mapping[str, Decision]:
        """A decision per recipient, in order; an allowance's summary may come without words."""
        ...

    @property
    def rules(self) -> FederationRules: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class BrokerOptions:
    broker_id: str = "BROKER"
    max_envelope_bytes: int = 1024 * 1024
    # Counted from not_before for an embargoed envelope (policies.envelope_age).
    max_age: timedelta = timedelta(days=7)
    # The furthest ahead an embargo may release: PLM_HOLD keeps a held envelope
    # (StreamLimits.hold_days) a day longer than this.
    max_embargo: timedelta = timedelta(days=30)
    batch: int = 256
    max_inflight: int = 1024
    max_deliver: int = 10
    ack_wait_s: float = 30.0
    nak_delay_s: float = 1.0
    checkpoint_every: int = 1000
    checkpoint_ms: int = 1000
    fetch_timeout_s: float = 0.5
    # Urgent first, routine never starved, per-originator share of urgent (decision 0032).
    lanes: LaneShares = field(default_factory=LaneShares)
    # Where every decision's "now" comes from; tests inject a clock (never a sleep).
    clock: Callable[[], datetime] = _utc_now


@dataclass
class Outcome:
    """Everything the broker will publish for one envelope before acking it."""

    msg: Msg
    envelope_id: str | None
    originator: str | None
    header: EnvelopeHeader | None = None
    error: PalermoError | None = None
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    unverified: Unverified | None = None
    failure: str | None = None
    # The subject it was published on (for a released envelope, the one it was held under).
    subject: str = ""
    # Released from PLM_HOLD at not_before, not taken from PLM_PUB.
    release: bool = False
    # Retracted while held: released to nobody.
    voided: bool = False
    # Arrived before its not_before (inspect): to be held rather than delivered.
    embargoed: bool = False

    @property
    def held(self) -> bool:
        """Accepted now and held until not_before, rather than delivered now."""
        return self.embargoed and self.error is None and bool(self.allowed)


def _refusal(recipient: str, code: str, message: str) -> dict[str, Any]:
    return {"decision": "deny", "obligations": [], "reasons": [{"code": code, "message": message}],
            "recipient": recipient}  # fmt: skip


@lru_cache(maxsize=4096)
def _record(decision: Decision) -> dict[str, Any]:
    """What the audit log keeps of a decision: codes (and the reasons' words for denials).

    The obligation texts are in the catalogue (docs/handling-codes.md); repeating them in every
    entry would only make the log larger and the broker slower. Equal decisions (the same
    recipient, reasons and obligations: most envelopes of a busy originator) share one record,
    which nobody modifies, so the audit entry serialises it once per batch (broker/audit.py).
    """
    record: dict[str, Any] = {
        "decision": "allow" if decision.allowed else "deny",
        "obligations": [
            {"code": o.code, "value": o.value} if o.value is not None else {"code": o.code}
            for o in decision.obligations
        ],
        "reasons": [
            {"code": r.code} if decision.allowed else {"code": r.code, "message": r.message}
            for r in decision.reasons
        ],
        "recipient": decision.recipient,
    }
    if decision.withheld_sections:
        record["withheld_sections"] = list(decision.withheld_sections)
    if decision.audit_flags:
        record["audit_flags"] = [str(f) for f in decision.audit_flags]
    if decision.agreements:
        record["agreements"] = list(decision.agreements)
    return record


def _check_all(outcomes: Sequence[Outcome]) -> list[tuple[Outcome, PalermoError]]:
    """Run on a worker thread: each envelope's signature; returns the failures."""
    failures: list[tuple[Outcome, PalermoError]] = []
    for o in outcomes:
        assert o.unverified is not None
        try:
            check_signature(o.unverified)
        except PalermoError as exc:
            failures.append((o, exc))
    return failures


def check_sections(verified: Verified, recipient: str, withheld: Sequence[str]) -> str | None:
    """A reason to refuse if a section policy withholds is wrapped for this recipient anyway."""
    for section in withheld:
        if recipient in verified.stanza_agencies(section):
            return (
                f"section {section} is wrapped for {recipient}, but policy withholds it; the "
                "originator's node must not wrap it (upgrade or fix the originator's node)"
            )
    return None


class _Inspection:
    """The broker's checks and decisions (no I/O); :class:`broker.service.Broker` sets the
    state they read."""

    trust: TrustStore
    policy: PolicyView
    options: BrokerOptions
    metrics: BrokerMetrics
    # Per lane: the thread that assesses a batch, and the threads that check its signatures
    # (an urgent batch never queues behind a routine one in a thread pool).
    _inspectors: dict[str, ThreadPoolExecutor]
    _verifiers: dict[str, ThreadPoolExecutor]

    # --- pure checks -------------------------------------------------------------------------

    def inspect(self, msg: Msg, now: datetime, subject: str | None = None) -> Outcome:
        """Every check but the signature: format, header, keys, subject, age, embargo. No I/O.

        ``subject`` is the one the envelope was published on, when ``msg`` is its release
        from PLM_HOLD (broker/embargo.py).
        """
        release = subject is not None
        subject = msg.subject if subject is None else subject
        claimed = subject_originator(subject)
        outcome = Outcome(msg, None, claimed, subject=subject, release=release)
        try:
            item = inspect_envelope(
                msg.data, self.trust, now=now, max_size=self.options.max_envelope_bytes
            )
            header = item.verified.header
            outcome.envelope_id, outcome.header = header.id, header
            expected = publish_subject(header)
            if subject != expected:
                raise SubjectMismatch(subject, expected)
            age = envelope_age(header.created, header.handling, now)
            if age > self.options.max_age:
                raise EnvelopeTooOld(
                    int(age.total_seconds()), int(self.options.max_age.total_seconds())
                )
            ahead = embargo_ahead(header.handling, now)
            if ahead > self.options.max_embargo:
                raise EmbargoTooFar(
                    int(ahead.total_seconds()), int(self.options.max_embargo.total_seconds())
                )
            # A release is due by definition, even if this clock is a moment behind the server.
            outcome.embargoed = not release and ahead > timedelta(0)
        except PalermoError as exc:
            outcome.error = exc
            return outcome
        except Exception as exc:  # the trust boundary: no input may stop the broker
            _log.error("unexpected error on untrusted input", subject=msg.subject, error=repr(exc))
            outcome.error = MalformedEnvelope(f"refused: {type(exc).__name__} while parsing")
            return outcome
        outcome.unverified = item
        return outcome

    def decide(self, outcome: Outcome, now: datetime) -> None:
        """A decision for each listed recipient of an inspected envelope, in one call. No I/O."""
        if outcome.unverified is None:
            return
        verified = outcome.unverified.verified
        header = verified.header
        # Below the suite the federation requires (suite 2 for RED, say): refused to everyone.
        # Not a retraction: like any policy change, a suite rule signed after a report went out
        # must not stop its withdrawal (it holds no more than the report's recipients had).
        weak = (
            None
            if header.kind is Kind.RETRACTION
            else suite_refusal(self.policy.rules, header.handling, verified.envelope.suite)
        )
        if header.kind is Kind.RETRACTION:
            # Membership only: the policy change that motivated a withdrawal must not be able
            # to stop it (docs/broker.md, "Retractions").
            decisions: Mapping[str, Decision] = {
                r: decide_retraction(header, r, self._not_member(r, now)) for r in header.recipients
            }
        else:
            # An embargoed envelope is judged as of its release (policies/_embargo.py); when it
            # is released, that is now.
            decisions = self.policy.decide_all(
                header, header.recipients, release_time(header.handling, now)
            )
        for recipient, decision in decisions.items():
            record = _record(decision)
            if decision.allowed:
                problem = check_sections(verified, recipient, decision.withheld_sections)
                if problem is not None:
                    record = _refusal(recipient, "section_wrapped_against_policy", problem)
                elif weak is not None:
                    record = _refusal(recipient, weak.code, weak.message)
            outcome.decisions[recipient] = record
            if record["decision"] == "allow":
                outcome.allowed.append(recipient)

    def _not_member(self, agency: str, now: datetime) -> str | None:
        """Why ``agency`` holds no current, valid, unrevoked certificate, or None if it does."""
        try:
            self.trust.certificate(agency, now)
        except PalermoError as exc:
            return exc.reason
        return None

    async def assess(
        self,
        msgs: Sequence[Msg],
        now: datetime,
        subjects: Sequence[str | None] | None = None,
        lane: str = ROUTINE,
    ) -> list[Outcome]:
        """Inspect, verify signatures and decide for a batch, off the event loop.

        The whole assessment runs on the broker's inspection thread for ``lane``, so that the
        loop keeps acking, publishing, following the directory and answering health checks
        while a batch is parsed (even a batch of hostile messages, each bounded by the
        decoder's pre-scan).
        """
        loop = asyncio.get_running_loop()
        subjects = subjects if subjects is not None else [None] * len(msgs)
        verifiers = self._verifiers[lane]
        return await loop.run_in_executor(
            self._inspectors[lane], self._assess, msgs, now, subjects, verifiers
        )

    def _assess(
        self,
        msgs: Sequence[Msg],
        now: datetime,
        subjects: Sequence[str | None],
        verifiers: ThreadPoolExecutor,
    ) -> list[Outcome]:
        """Runs on the inspection thread. Signatures are checked on two more threads while this
        one computes the decisions: Ed25519 verification releases the GIL. A decision taken for
        an envelope whose signature then fails is discarded, never used."""
        outcomes = [self.inspect(m, now, s) for m, s in zip(msgs, subjects, strict=True)]
        pending = [o for o in outcomes if o.unverified is not None]
        half = (len(pending) + 1) // 2
        chunks = [pending[:half], pending[half:]]
        checks = [verifiers.submit(_check_all, c) for c in chunks if c]
        for o in pending:
            self.decide(o, now)
        for check in checks:
            for o, error in check.result():
                o.error = error
                o.decisions.clear()
                o.allowed.clear()
        for o in pending:
            o.unverified = None
            if o.error is None:
                self.metrics.verified.inc()
        return outcomes
