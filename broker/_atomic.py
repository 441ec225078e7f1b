"""Atomic batch publish (JetStream ADR-50, nats-server 2.12+): many messages, one answer.

The broker stores, per batch of envelopes, one replay marker each in PLM_SEEN and one copy per
allowed recipient in PLM_DLV. Published one by one, every message costs the broker an
acknowledgement to receive, parse and match (most of its event loop's time per envelope, see
docs/benchmarks.md). Sent as an atomic batch, a stream stores all of the messages or none, and
answers once, on the commit.

An atomic batch never weakens a guarantee, because anything but a stored commit falls back to
publishing the same messages one by one, each with its own answer, as before:

- a batch never splits an envelope's messages (the copies of one envelope are stored together
  or not at all), and holds at most the server's limit of 1000 messages;
- a ``Nats-Msg-Id`` already in the stream's duplicate window (a redelivered envelope whose
  copies were stored before a crash) refuses the whole batch; one by one, each copy is then
  acknowledged as a duplicate and never stored twice;
- a replay marker already written (``Nats-Expected-Last-Subject-Sequence: 0``) refuses the
  whole batch too; one by one, the broker then sees which envelope it was (a replay, or its
  own earlier attempt) exactly as without batches;
- a stream created before ``allow_atomic`` (decision 0033) refuses batches as disabled: it is
  remembered, and that stream is only ever published to one message at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Hashable, Mapping, Sequence
from typing import Final

import structlog
from nats.aio.client import Client

from protocol.jspublish import PipelinedPublisher, StoredAck
from protocol.transport import PublishRejected, map_nats_errors

__all__ = ["ATOMIC_LIMIT", "AtomicPublisher", "Publication"]

# nats-server's largest atomic batch (messages).
ATOMIC_LIMIT: Final[int] = 1000
# "atomic publish is disabled": the stream was created without allow_atomic.
ATOMIC_DISABLED: Final[int] = 10174
_log = structlog.get_logger("palermo.broker")

Publication = tuple[str, bytes, Mapping[str, str]]
Result = StoredAck | BaseException


def _chunks(owners: Sequence[Hashable], limit: int) -> list[list[int]]:
    """Indexes of ``owners`` in runs of whole owners, each run at most ``limit`` long (an owner
    with more than ``limit`` messages gets a run of its own, published one by one)."""
    runs: list[list[int]] = []
    current: list[int] = []
    i = 0
    while i < len(owners):
        j = i
        while j < len(owners) and owners[j] == owners[i]:
            j += 1
        if current and len(current) + (j - i) > limit:
            runs.append(current)
            current = []
        current.extend(range(i, j))
        i = j
    if current:
        runs.append(current)
    return runs


class AtomicPublisher:
    """Publishes to one stream in atomic batches where it can, one by one where it cannot."""

    def __init__(self, nc: Client, publisher: PipelinedPublisher) -> None:
        self.nc = nc
        self.publisher = publisher
        self.disabled: set[str] = set()

    async def publish(
        self,
        stream: str,
        items: Sequence[Publication],
        owners: Sequence[Hashable],
        per_batch: int = ATOMIC_LIMIT,
    ) -> list[Result]:
        """Store ``items`` (all for ``stream``; ``owners[i]`` is the envelope of ``items[i]``,
        equal owners adjacent); one result per item: its ack or why it was not stored.

        A batch holds whole owners up to ``per_batch`` messages (1: one batch per owner)."""
        results: list[Result | None] = [None] * len(items)
        runs: list[list[int]] = []
        futures: list[asyncio.Future[StoredAck]] = []
        for run in _chunks(owners, min(per_batch, ATOMIC_LIMIT)):
            if 2 <= len(run) <= ATOMIC_LIMIT and stream not in self.disabled:
                runs.append(run)
                futures.append(await self._send_batch([items[i] for i in run]))
                continue
            for i in run:
                runs.append([i])
                futures.append(await self.publisher.publish(*items[i]))
        fallback: list[int] = []
        for run, answer in zip(runs, await self.publisher.settle(futures), strict=True):
            if isinstance(answer, BaseException) and len(run) > 1:
                self._note_refusal(stream, answer, len(run))
                fallback.extend(run)
                continue
            for i in run:
                results[i] = answer
        if fallback:
            again = [await self.publisher.publish(*items[i]) for i in fallback]
            for i, answer in zip(fallback, await self.publisher.settle(again), strict=True):
                results[i] = answer
        done = [r for r in results if r is not None]
        assert len(done) == len(items)  # every item went into exactly one run
        return done

    async def _send_batch(self, batch: list[Publication]) -> asyncio.Future[StoredAck]:
        """Send one atomic batch; the future is the commit's answer (the only one sent)."""
        ident = uuid.uuid4().hex
        last = len(batch)
        for n, (subject, payload, headers) in enumerate(batch[:-1], start=1):
            marked = {**headers, "Nats-Batch-Id": ident, "Nats-Batch-Sequence": str(n)}
            with map_nats_errors(f"publish to {subject}"):
                await self.nc.publish(subject, payload, headers=marked)
        subject, payload, headers = batch[-1]
        commit = {**headers, "Nats-Batch-Id": ident, "Nats-Batch-Sequence": str(last),
                  "Nats-Batch-Commit": "1"}  # fmt: skip
        return await self.publisher.publish(subject, payload, commit)

    def _note_refusal(self, stream: str, error: BaseException, size: int) -> None:
        if isinstance(error, PublishRejected) and error.err_code == ATOMIC_DISABLED:
            if stream not in self.disabled:
                _log.warning("stream refuses atomic batches; publishing one by one (enable "
                             "allow_atomic, docs/broker.md)", stream=stream)  # fmt: skip
            self.disabled.add(stream)
            return
        # A duplicate or an existing replay marker (expected after a crash or for a replay),
        # or no answer in time: the same messages go again one by one.
        _log.debug("atomic batch refused; publishing one by one", stream=stream, size=size,
                   error=repr(error))  # fmt: skip
