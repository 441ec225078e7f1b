"""The federation broker: verify, enforce, route, dead-letter, audit. It never sees plaintext.

One loop per process takes batches from the shared durable pull consumer on PLM_PUB (any number
of replicas share it), and for each batch:

1. checks every envelope without I/O: size, format, signature and key validity against the
   verified directory, subject/originator match, age, then ``policy.decide`` per recipient;
2. marks each verified envelope id in PLM_SEEN (atomically refused if another envelope already
   carried that id: a replay), pipelined for the whole batch;
3. stores one hash-chained audit entry with every envelope's decisions, BEFORE anything is
   published for them: a copy in PLM_DLV never exists without the entry that allowed it, even
   if the process dies right after delivering;
4. publishes, pipelined, one copy per allowed recipient to PLM_DLV (``Nats-Msg-Id`` =
   ``<id>.<recipient>``, so a redelivery never duplicates), dead letters with reason headers,
   and a signed notice to the originator for every refusal;
5. acks each envelope only once every one of its publications is stored; anything that failed
   is nak'ed and comes back (bounded by ``max_deliver``), and is decided and audited again.

An embargoed envelope (``not_before`` ahead) goes through the same steps, but step 4 stores it
once in PLM_HOLD as a message schedule instead of copying it; at ``not_before`` the server
releases it to ``plm.due.>``, where a second loop takes it through steps 1, 3, 4 and 5 again
at the real time (broker/embargo.py, decision 0020).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from protocol.jspublish import WRONG_LAST_SEQUENCE, PipelinedPublisher
from protocol.keys import SigningKey
from protocol.lanes import ROUTINE, URGENT
from protocol.transport import PublishRejected, deliver_subject, map_nats_errors
from protocol.trust import BROKER_NOTICE_DOMAIN, TrustStore, canonical_json
from schemas import Kind
from schemas.errors import EnvelopeError

from ._atomic import AtomicPublisher, Publication
from ._inspection import BrokerOptions, Outcome, PolicyView, _Inspection
from ._letters import _audit_record, _dead_letter, _dedup_ident, _header_value
from .audit import AuditChain
from .deadletters import EXHAUSTED, mark_given_up, reclaim_marker
from .embargo import (
    SUBJECT_HEADER,
    cancel_hold,
    hold_publication,
    release_checks,
    void_publications,
)
from .lanes import CONSUMER, URGENT_CONSUMER, broker_lanes, consume_lanes, release_subscription
from .metrics import BrokerMetrics

__all__ = [
    "CONSUMER",
    "EXHAUSTED",
    "URGENT_CONSUMER",
    "Broker",
    "BrokerOptions",
    "Outcome",
    "PolicyView",
]

DELIVER_PREFIX: Final[str] = "plm.dlv."
_log = structlog.get_logger("palermo.broker")


# Test-only fault injection: when this variable names a point of handle_batch ("after-audit",
# "after-deliveries"), the process exits there at once, as a SIGKILL would stop it, so tests can
# check what a crash at that exact point leaves behind. Nothing sets it outside tests.
CRASH_AT_ENV: Final[str] = "PALERMO_TEST_BROKER_CRASH_AT"
CRASH_EXIT_CODE: Final[int] = 86
_CRASH_AT: Final[str | None] = os.environ.get(CRASH_AT_ENV)


def _fault_point(name: str) -> None:
    if _CRASH_AT == name:
        os._exit(CRASH_EXIT_CODE)


class Broker(_Inspection):
    def __init__(
        self,
        nc: Client,
        trust: TrustStore,
        policy: PolicyView,
        key: SigningKey,
        options: BrokerOptions | None = None,
        metrics: BrokerMetrics | None = None,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.publisher = PipelinedPublisher(nc)
        self.atomic = AtomicPublisher(nc, self.publisher)
        self.trust = trust
        self.policy = policy
        self.key = key
        self.options = options or BrokerOptions()
        self.metrics = metrics or BrokerMetrics()
        self.chain = self._new_chain()
        self._last_checkpoint = time.monotonic()
        # One thread per lane assesses each batch (parsing, trust look-ups, decisions) off the
        # event loop; more check its signatures meanwhile: Ed25519 verification releases the
        # GIL. An urgent batch has threads of its own, so it never queues behind a routine one.
        self._inspectors = {
            lane: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"plm-inspect-{lane}")
            for lane in (ROUTINE, URGENT)
        }
        self._verifiers = {
            ROUTINE: ThreadPoolExecutor(max_workers=2, thread_name_prefix="plm-verify"),
            URGENT: ThreadPoolExecutor(max_workers=1, thread_name_prefix="plm-verify-urgent"),
        }
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        # A routine batch, an urgent batch and a batch of releases may be in hand at once
        # (decision 0036); the audit chain takes one entry at a time, each stored before the
        # next is appended, so its entries are in the order they were appended.
        self._chain_lock = asyncio.Lock()
        self.processed = 0

    def _new_chain(self) -> AuditChain:
        return AuditChain(f"{self.options.broker_id}.{uuid.uuid4().hex[:12]}", self.key)

    # --- I/O ---------------------------------------------------------------------------------

    async def _mark_seen(self, outcomes: Sequence[Outcome]) -> set[int]:
        """Record each envelope id in PLM_SEEN, pipelined; an id already held is a replay.

        Returns the ``id()`` of outcomes whose marker could not be written (to be retried).
        """
        markers: list[Publication] = [
            (
                f"plm.seen.{o.envelope_id}",
                str(o.msg.metadata.sequence.stream).encode(),
                # Refused by the server if any message already has this subject: atomic across
                # broker replicas and restarts.
                {"Nats-Expected-Last-Subject-Sequence": "0"},
            )
            for o in outcomes
        ]
        results = await self.atomic.publish("PLM_SEEN", markers, [id(o) for o in outcomes])
        failed: set[int] = set()
        for o, result in zip(outcomes, results, strict=True):
            if not isinstance(result, BaseException):
                continue
            if not (isinstance(result, PublishRejected) and result.err_code == WRONG_LAST_SEQUENCE):
                _log.warning("replay marker failed", envelope=o.envelope_id, error=repr(result))
                failed.add(id(o))
                continue
            previous = await self.js.get_last_msg("PLM_SEEN", f"plm.seen.{o.envelope_id}")
            # Our own earlier attempt at this very stream message (a redelivery after a crash)
            # is not a replay. A marker of an envelope given up is taken over (a republish),
            # unless its originator retracted it since; anything else is a replay.
            if previous.data != str(o.msg.metadata.sequence.stream).encode():
                o.error = await reclaim_marker(self.js, o, previous)
                if o.error is not None:
                    o.decisions.clear()
                    o.allowed.clear()
        return failed

    def _publications(
        self, outcome: Outcome, now: datetime
    ) -> list[tuple[str, bytes, dict[str, str]]]:
        out: list[tuple[str, bytes, dict[str, str]]] = []
        data = outcome.msg.data
        header = outcome.header
        refused: list[dict[str, Any]] = []
        if outcome.voided:
            return out  # retracted while held: released to nobody (audited as such)
        if outcome.error is not None or header is None:
            error = outcome.error or EnvelopeError("unparseable")
            out.append(_dead_letter(outcome, error.code, error.reason, _dedup_ident(outcome)))
            refused.append({"recipient": "*", "reasons": [error.to_dict()]})
        else:
            if outcome.held:
                # Held until not_before, for the allowed recipients named in the signed
                # header; each is decided again when the server releases it.
                seq = outcome.msg.metadata.sequence.stream
                out.append(hold_publication(header, data, outcome.subject, seq))
            elif header.kind is Kind.RETRACTION and not outcome.release:
                out += void_publications(header)
            # deliver_subject(r, header) for each r, with the header's tokens read once: the
            # subject of a placeholder recipient, split where the recipient goes.
            before, _, after = deliver_subject("\x00", header).partition("\x00")
            for recipient, record in outcome.decisions.items():
                if record["decision"] == "allow":
                    if outcome.held:
                        continue
                    out.append(
                        (
                            f"{before}{recipient}{after}",
                            data,
                            {"Nats-Msg-Id": f"{header.id}.{recipient}"},
                        )
                    )
                    continue
                codes = ",".join(r["code"] for r in record["reasons"])
                out.append(
                    (
                        f"plm.dead.{header.originator}.policy",
                        data,
                        {
                            "Nats-Msg-Id": f"dead.{header.id}.{recipient}",
                            "Palermo-Reason-Code": codes,
                            "Palermo-Reason": _header_value(
                                "; ".join(r["message"] for r in record["reasons"])[:1000]
                            ),
                            "Palermo-Recipient": recipient,
                            "Palermo-Envelope-Id": header.id,
                        },
                    )
                )
                refused.append({"recipient": recipient, "reasons": record["reasons"]})
        if refused and outcome.originator is not None:
            out.append(self._notice(outcome, refused, now))
        return out

    def _notice(
        self, outcome: Outcome, refused: list[dict[str, Any]], now: datetime
    ) -> tuple[str, bytes, dict[str, str]]:
        """A broker-signed notice to the originator naming who was refused and why."""
        from protocol import crypto

        body = {
            "kind": "broker-notice",
            "broker": self.options.broker_id,
            "kid": self.key.kid,
            "envelope": outcome.envelope_id,
            "originator": outcome.originator,
            "refused": refused,
            "time": int(now.timestamp() * 1000),
        }
        sig = crypto.sign(self.key.private, BROKER_NOTICE_DOMAIN, canonical_json(body))
        signature = {"signer": self.options.broker_id, "kid": self.key.kid, "ed25519": sig.hex()}
        doc = {"document": body, "signature": signature}
        ident = _dedup_ident(outcome)
        return (
            f"plm.rcpt.{outcome.originator}.notice",
            canonical_json(doc),
            {"Nats-Msg-Id": f"notice.{ident}"},
        )

    async def _audit(
        self, outcomes: Sequence[Outcome], now: datetime, error: dict[str, str] | None = None
    ) -> bool:
        """One hash-chained entry with every outcome's decisions (or, for envelopes given up,
        ``error`` instead), stored; False if it was not."""
        records = [_audit_record(o) for o in outcomes]
        if error is not None:
            for record in records:
                record.pop("decisions", None)
                if "error" in record:
                    record["refusal"] = record["error"]  # what its dead letter would have said
                record["error"] = error
        async with self._chain_lock:
            entry = {"type": "decisions", "records": records}
            _, encoded = self.chain.append_encoded(entry, now)
            [result] = await self.publisher.settle(
                [await self.publisher.publish(f"plm.audit.{self.chain.chain}", encoded)]
            )
            if isinstance(result, BaseException):
                # The chain may now have a gap: start a new one rather than fork it.
                _log.warning("audit entry failed; will retry", error=repr(result))
                self.chain = self._new_chain()
                return False
            return True

    async def handle_batch(
        self, msgs: Sequence[Msg], *, release: bool = False, lane: str = ROUTINE
    ) -> None:
        """One batch of ``lane`` from PLM_PUB, or (``release``) of envelopes PLM_HOLD
        released."""
        now = self.options.clock()
        subjects = [(m.headers or {}).get(SUBJECT_HEADER, "") for m in msgs] if release else None
        outcomes = await self.assess(msgs, now, subjects, lane)
        # Phase 1: replay markers, which must be known before anything is decided for good.
        if release:
            failed = await release_checks(self.js, outcomes)
        else:
            failed = await self._mark_seen([o for o in outcomes if o.error is None])
        # Phase 2: the batch's audit entry, stored BEFORE any copy is published: a copy in
        # PLM_DLV always has the decision that allowed it in PLM_AUDIT, even if this process
        # dies right after delivering (audit-before-ack for every copy). If the broker dies
        # before the copies go out, the redelivered envelope is decided and audited again
        # (its record's "delivery" counts the attempts) and only then delivered.
        decided = [o for o in outcomes if id(o) not in failed]
        if decided and not await self._audit(decided, now):
            failed.update(id(o) for o in decided)
            decided = []
        _fault_point("after-audit")
        # Phase 3: deliveries, dead letters and notices, pipelined, then all awaited together.
        # An envelope's copies go to PLM_DLV in one atomic batch (broker/_atomic.py).
        owners: list[Outcome] = []
        copies: list[Publication] = []
        others: list[Outcome] = []
        futures = []
        for o in decided:
            for subject, payload, headers in self._publications(o, now):
                if subject.startswith(DELIVER_PREFIX):
                    copies.append((subject, payload, headers))
                    owners.append(o)
                else:
                    futures.append(await self.publisher.publish(subject, payload, headers))
                    others.append(o)
        stored = await self.atomic.publish("PLM_DLV", copies, [id(o) for o in owners])
        owners += others
        for o, result in zip(owners, stored + await self.publisher.settle(futures), strict=True):
            if isinstance(result, BaseException) and id(o) not in failed:
                _log.warning("publication failed; will retry", envelope=o.envelope_id,
                             error=repr(result))  # fmt: skip
                o.failure = str(result)
                failed.add(id(o))
        _fault_point("after-deliveries")
        for o in decided:
            if id(o) not in failed:
                await o.msg.ack()
                self._count(o)
                if o.error is None and o.header is not None and o.header.kind is Kind.RETRACTION:
                    await cancel_hold(self.js, o.header)
        for o in outcomes:
            if id(o) not in failed:
                continue
            if o.msg.metadata.num_delivered >= self.options.max_deliver:
                await self._give_up(o)
            else:
                await o.msg.nak(delay=self.options.nak_delay_s)
        if self.chain.since_checkpoint >= self.options.checkpoint_every or (
            self.chain.since_checkpoint
            and (time.monotonic() - self._last_checkpoint) * 1000 >= self.options.checkpoint_ms
        ):
            await self._checkpoint(now)

    async def _give_up(self, o: Outcome) -> None:
        """The last allowed attempt failed too: JetStream would never offer the envelope again,
        so it goes to PLM_DEAD with the reason (an operator republishes it from there) rather
        than stay unseen in PLM_PUB. Acked only once the dead letter is stored."""
        reason = (
            f"not stored after {o.msg.metadata.num_delivered} attempts "
            f"(max_deliver): {o.failure or 'a replay marker or audit entry failed'}; "
            "fix the cause (a full stream? see docs/broker.md) and republish this message"
        )
        # On record before the dead letter, like every other outcome. If even this entry cannot
        # be stored (the audit stream is what fails), the envelope is dead-lettered anyway: left
        # in PLM_PUB no consumer would offer it again, and the log says what happened.
        if not await self._audit([o], self.options.clock(), {"code": EXHAUSTED, "reason": reason}):
            _log.error("envelope given up without its audit entry", envelope=o.envelope_id)
        ident = f"{EXHAUSTED}.seq{o.msg.metadata.sequence.stream}"
        future = await self.publisher.publish(*_dead_letter(o, EXHAUSTED, reason, ident))
        [result] = await self.publisher.settle([future])
        if isinstance(result, BaseException):
            _log.error("envelope neither stored nor dead-lettered; left in PLM_PUB",
                       envelope=o.envelope_id, error=repr(result))  # fmt: skip
            await o.msg.nak(delay=self.options.nak_delay_s)
            return
        _log.error("envelope dead-lettered after its last attempt", envelope=o.envelope_id,
                   reason=reason)  # fmt: skip
        await mark_given_up(self.js, o)
        self.metrics.dead_lettered.inc()
        self.metrics.denied.labels(reason=EXHAUSTED).inc()
        await o.msg.ack()

    def _count(self, o: Outcome) -> None:
        self.processed += 1
        self.metrics.latency.observe(time.perf_counter() - o.started)
        if o.error is not None:
            self.metrics.dead_lettered.inc()
            self.metrics.denied.labels(reason=o.error.code).inc()
            return
        if o.held:
            self.metrics.held.inc()
        elif not o.voided:  # a held envelope's copies are counted when it is released
            self.metrics.delivered.inc(len(o.allowed))
        if o.release:
            self.metrics.released.inc()
        for record in o.decisions.values():
            if record["decision"] != "allow":
                self.metrics.dead_lettered.inc()
                for reason in record["reasons"]:
                    self.metrics.denied.labels(reason=reason["code"]).inc()

    async def _checkpoint(self, now: datetime) -> None:
        async with self._chain_lock:
            if not self.chain.since_checkpoint:
                return  # another batch's checkpoint came first
            entry = self.chain.checkpoint(now)
            self._last_checkpoint = time.monotonic()
            await self.js.publish(f"plm.audit.{self.chain.chain}", canonical_json(entry))

    async def _restart_chain(self) -> None:
        """After an entry or checkpoint that may not have been stored: a new chain, rather than
        a fork of one that may have a gap."""
        async with self._chain_lock:
            self.chain = self._new_chain()

    async def run(self) -> None:
        """Consume until :meth:`stop`, then finish the batch in hand and write a checkpoint. Two
        loops: PLM_PUB's two lanes (broker/lanes.py) and releases from PLM_HOLD (plm.due.>)."""
        with map_nats_errors("subscribe to PLM_PUB and to releases from PLM_HOLD"):
            lanes = await broker_lanes(self.nc, self.js, self.options, self.metrics)
            due = await release_subscription(self.js, self.options)
        _log.info("broker consuming", chain=self.chain.chain)
        lanes_loop = consume_lanes(lanes, self._take, self._idle, self._stopping, self.metrics)
        loops = [asyncio.create_task(lanes_loop),
                 asyncio.create_task(self._consume(due, True))]  # fmt: skip
        try:
            # If one loop fails, the other stops too before anything below is torn down.
            await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            self._stopping.set()
            results = await asyncio.gather(*loops, return_exceptions=True)
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                for msg in await lanes.close():  # fetched, never handled: back at once
                    await msg.nak()
                if self.chain.since_checkpoint and not self.nc.is_closed:
                    await self._checkpoint(datetime.now(UTC))
                for lane in lanes.subs.values():
                    await lane.unsubscribe()
                await due.unsubscribe()
            for executor in (*self._inspectors.values(), *self._verifiers.values()):
                executor.shutdown(wait=True)
            self._stopped.set()
        for result in results:  # what stopped a loop, once everything is closed
            if isinstance(result, BaseException):
                raise result

    async def _idle(self) -> None:
        """Nothing to take for a fetch timeout: checkpoint the chain if it has new entries
        (:meth:`_checkpoint` looks, under the chain's lock)."""
        try:
            await self._checkpoint(datetime.now(UTC))
        except (nats.errors.Error, TimeoutError) as exc:
            # A server died or a leader changes: the chain may have a gap; start a new one.
            _log.warning("checkpoint failed; starting a new chain", error=repr(exc))
            await self._restart_chain()

    async def _take(self, msgs: Sequence[Msg], release: bool, lane: str) -> None:
        try:
            await self.handle_batch(msgs, release=release, lane=lane)
        except (nats.errors.Error, TimeoutError) as exc:
            # Nothing of this batch was acked: it comes back after ack_wait.
            _log.warning("batch failed; its envelopes will be redelivered", error=repr(exc))
            await self._restart_chain()

    async def _consume(self, sub: JetStreamContext.PullSubscription, release: bool) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await sub.fetch(self.options.batch, timeout=self.options.fetch_timeout_s)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except nats.errors.Error as exc:
                # Server restarting, leader election: the consumer keeps what is unacked.
                _log.warning("fetch failed; retrying", error=repr(exc), release=release)
                await asyncio.sleep(0.5)
                continue
            await self._take(msgs, release, ROUTINE)

    def stop(self) -> None:
        self._stopping.set()


def decode_entries(raw: Sequence[bytes]) -> list[Mapping[str, Any]]:
    return [json.loads(r) for r in raw]
