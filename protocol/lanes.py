"""Priority lanes: urgent work first at every hop, routine never starved (decision 0032).

An envelope travels on its lane's subjects: routine ``plm.pub.<o>.<k>.<r>.<c>`` and
``plm.dlv.<recipient>.<o>.<k>.<r>.<c>``, urgent the same with a last token ``urgent``
(:func:`protocol.transport.publish_subject`). The lane comes from the *signed* header's
priority, so a subject that claims another lane than the signature is a subject mismatch,
refused by the broker and again by the node.

Each hop (the broker on PLM_PUB, each node on PLM_DLV) has one durable pull consumer per lane,
filtered by the subject pattern of that lane, and one :class:`LaneScheduler` that keeps a fetch
outstanding on both and hands out work in this order:

- urgent first: whenever urgent work is ready it is taken, except that
- after ``routine_share`` urgent turns in a row while routine work was waiting, one routine turn
  is taken (routine never starves, however continuous the urgent traffic);
- a routine turn is small (``routine_slice`` messages): a fetched routine batch is handed out a
  slice at a time, and the lanes are looked at again between slices, so urgent work waits for
  at most one slice, not a whole batch;
- within the urgent lane each originator gets at most ``urgent_per_originator`` messages per
  turn, taken in stream order: a flood of "urgent" from one member is spread over several turns
  while the other members' urgent messages fetched with it go in the first one. Messages held
  back are counted per originator (``deferred``, a metric). The scheduler keeps fetching urgent
  messages ahead (up to ``urgent_window``) so that there are other originators to interleave.

Per-originator order within a lane holds: messages of one originator are only ever handed out
as a prefix of what was fetched for it, in stream order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from schemas import Priority

from .pull import LeanPull
from .transport import LANE_URGENT, map_nats_errors

__all__ = [
    "ROUTINE",
    "URGENT",
    "LaneScheduler",
    "LaneShares",
    "bind_lane",
    "lane_filter",
]

URGENT: Final[str] = Priority.URGENT.value
ROUTINE: Final[str] = Priority.ROUTINE.value
_log = structlog.get_logger("palermo.lanes")


def lane_filter(prefix: str, lane: str) -> str:
    """The consumer filter of ``lane`` under ``prefix`` (``plm.pub`` or ``plm.dlv.<agency>``):
    the four subject tokens (originator, kind, route, category), and ``urgent`` for urgent."""
    routine = f"{prefix}.*.*.*.*"
    return f"{routine}.{LANE_URGENT}" if lane == URGENT else routine


@dataclass(frozen=True)
class LaneShares:
    """How a hop divides its time between the lanes (operator settings, docs/operations.md)."""

    routine_share: int = 4
    """After this many urgent turns in a row while routine work waits, one routine turn."""
    routine_slice: int = 64
    """Routine messages per routine turn (urgent work waits for at most one slice)."""
    urgent_per_originator: int = 16
    """Urgent messages of one originator per urgent turn."""
    urgent_window: int = 1024
    """Urgent messages fetched ahead to interleave originators (at most the consumer's
    max_ack_pending)."""


async def bind_lane(
    nc: Client,
    js: JetStreamContext,
    stream: str,
    durable: str,
    subject: str,
    config: ConsumerConfig,
) -> LeanPull:
    """The durable pull consumer ``durable`` on ``stream`` with filter ``subject``, created or,
    when it exists with another filter or settings (a deployment from before the lanes, or
    changed settings), updated in place: its acknowledgement state is kept. Fetched through
    :class:`protocol.pull.LeanPull`."""
    config.durable_name = config.name = durable
    config.filter_subject = subject
    with map_nats_errors(f"set up the consumer {durable} on {stream}"):
        try:
            held = (await js.consumer_info(stream, durable)).config
            stale = (
                held.filter_subject != subject
                or held.ack_wait != config.ack_wait
                or held.max_ack_pending != config.max_ack_pending
                or held.max_deliver != config.max_deliver
            )
        except nats.js.errors.NotFoundError:
            stale = True
        if stale:
            await js.add_consumer(stream, config=config)
        # The context's API prefix (a JetStream domain behind a leafnode); nats-py keeps it in
        # a private attribute and has no accessor for it.
        return await LeanPull(nc, stream, durable, js._prefix).start()


class LaneScheduler:
    """Urgent first, routine never starved, per-originator fair share within the urgent lane.

    ``originator`` reads the originator from a subject (for the urgent fair share).
    ``on_deferred(originator, n)`` is told how many of an originator's urgent messages were
    held back for a later turn.
    """

    def __init__(
        self,
        subs: dict[str, LeanPull],
        batch: int,
        shares: LaneShares,
        originator: Callable[[str], str],
        *,
        fetch_timeout_s: float = 0.5,
        on_deferred: Callable[[str, int], object] = lambda _o, _n: None,
        stuck_after_s: float | None = None,
    ) -> None:
        self.subs = subs
        self.batch = batch
        self.shares = shares
        self.originator = originator
        self.fetch_timeout_s = fetch_timeout_s
        self.on_deferred = on_deferred
        self.ready: dict[str, deque[Msg]] = {URGENT: deque(), ROUTINE: deque()}
        self.streak = 0
        self.deferred: Counter[str] = Counter()
        self._tasks: dict[str, asyncio.Task[list[Msg]]] = {}
        # The last urgent fetch came back full: more urgent work is probably queued, so the
        # fetch in flight is waited for before a routine turn is given instead.
        self._urgent_more = False
        self._asked: dict[str, int] = {}
        self._started: dict[str, float] = {}
        # A fetch returns within its timeout (plus the fetch's own retry pause); one running
        # far longer is stuck and is replaced.
        self._stuck_after_s = stuck_after_s or max(10.0, 20 * fetch_timeout_s)
        # Urgent messages of the last turn, in the caller's hands until its next take(): they
        # count against the window, so what a hop holds unacknowledged stays within it.
        self._handed = 0

    async def _fetch(self, lane: str, batch: int) -> list[Msg]:
        """One batch of ``lane`` (empty after a fetch timeout: the caller's idle work runs).

        Never raises (but for cancellation): a fetch that fails in any way is logged and
        retried, because a lane whose fetch loop died would leave its deliveries in the stream
        while the other lane carries on, which nobody would notice until a report is missed.
        """
        try:
            return await self.subs[lane].fetch(batch, self.fetch_timeout_s)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except nats.errors.Error as exc:
            # Server restarting, leader election, reconnect: the durable consumer keeps every
            # unacknowledged message; wait and fetch again.
            _log.warning("fetch failed; retrying", lane=lane, error=str(exc) or repr(exc))
        except Exception as exc:  # a client library bug must not stop a lane for good
            _log.error("fetch raised unexpectedly; retrying", lane=lane, error=repr(exc))
        await asyncio.sleep(0.5)
        return []

    def _collect(self) -> None:
        now = time.monotonic()
        for lane, task in list(self._tasks.items()):
            if not task.done() and now - self._started[lane] > self._stuck_after_s:
                # A fetch far past its own timeout: the client lost track of its pull request.
                # Replace it (what it was handed comes back after ack_wait, never lost).
                _log.error("fetch overdue; starting a new one", lane=lane,
                           running_s=round(now - self._started[lane], 1))  # fmt: skip
                task.cancel()
                del self._tasks[lane]
                continue
            if task.done():
                del self._tasks[lane]
                got = task.result()
                self.ready[lane].extend(got)
                if lane == URGENT:
                    self._urgent_more = len(got) >= self._asked[URGENT]
        room = self.shares.urgent_window - len(self.ready[URGENT]) - self._handed
        if URGENT not in self._tasks and room > 0:
            self._start(URGENT, min(self.batch, room))
        if ROUTINE not in self._tasks and not self.ready[ROUTINE]:
            self._start(ROUTINE, self.batch)

    def _start(self, lane: str, batch: int) -> None:
        self._asked[lane] = batch
        self._started[lane] = time.monotonic()
        self._tasks[lane] = asyncio.create_task(self._fetch(lane, batch))

    def urgent_waiting(self) -> bool:
        """Whether urgent work is ready now (a node looks between two routine deliveries)."""
        self._collect()
        return bool(self.ready[URGENT])

    async def take(self, busy: asyncio.Future[None] | None = None) -> tuple[str, list[Msg]] | None:
        """The next turn's lane and messages; None when nothing could be handed out for a fetch
        timeout (the caller does its idle work then).

        ``busy``: the routine turn the caller still has in hand (the broker handles urgent
        turns beside it): until it is done only urgent work is handed out, and the wait for
        work ends when it is done.
        """
        self._handed = 0
        self._collect()
        if not self.ready[URGENT] and self._urgent_more and URGENT in self._tasks:
            await asyncio.wait([self._tasks[URGENT]], timeout=self.fetch_timeout_s)
            self._collect()

        def routine_waits() -> bool:
            return bool(self.ready[ROUTINE]) and (busy is None or busy.done())

        if not (self.ready[URGENT] or routine_waits()):
            waits: list[asyncio.Future[Any]] = list(self._tasks.values())
            if busy is not None and not busy.done():
                waits.append(busy)
            await asyncio.wait(
                waits, timeout=self.fetch_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            self._collect()
            if not (self.ready[URGENT] or routine_waits()):
                return None
        if self.ready[URGENT] and (self.streak < self.shares.routine_share or not routine_waits()):
            self.streak = self.streak + 1 if routine_waits() else 0
            taken = self._fair_urgent()
            self._handed = len(taken)
            return URGENT, taken
        self.streak = 0
        queue = self.ready[ROUTINE]
        return ROUTINE, [queue.popleft() for _ in range(min(len(queue), self.shares.routine_slice))]

    def _fair_urgent(self) -> list[Msg]:
        """Up to ``batch`` urgent messages, at most ``urgent_per_originator`` per originator,
        each originator's taken in stream order; the rest stay queued in order."""
        taken: list[Msg] = []
        kept: deque[Msg] = deque()
        counts: Counter[str] = Counter()
        held: Counter[str] = Counter()
        for msg in self.ready[URGENT]:
            who = self.originator(msg.subject)
            if (
                len(taken) < self.batch
                and counts[who] < self.shares.urgent_per_originator
                and (not held[who])
            ):
                counts[who] += 1
                taken.append(msg)
            else:
                held[who] += 1  # and every later message of this originator waits too
                kept.append(msg)
        self.ready[URGENT] = kept
        for who, n in held.items():
            if counts[who] >= self.shares.urgent_per_originator:
                self.deferred[who] += n
                self.on_deferred(who, n)
        return taken

    def put_back(self, lane: str, msgs: Sequence[Msg]) -> None:
        """Messages handed out but not handled (a node switching to urgent work): first again."""
        self.ready[lane].extendleft(reversed(msgs))

    async def close(self) -> list[Msg]:
        """Stop fetching; the messages fetched but never handed out, for the caller to nak
        (otherwise they come back only after ack_wait)."""
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
        for lane, task in tasks.items():
            with contextlib.suppress(asyncio.CancelledError):
                self.ready[lane].extend(await task)  # a fetch that finished before the cancel
        left = [*self.ready[URGENT], *self.ready[ROUTINE]]
        self.ready[URGENT].clear()
        self.ready[ROUTINE].clear()
        return left
