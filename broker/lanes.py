"""The broker's two lanes on PLM_PUB (protocol/lanes.py, decision 0032): one durable consumer
per lane, filtered by the lane's subjects, and the scheduler that takes urgent work first."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from protocol.lanes import ROUTINE, URGENT, LaneScheduler, bind_lane, lane_filter
from protocol.transport import subject_originator

from ._inspection import BrokerOptions
from .embargo import HOLD_STREAM, RELEASE_CONSUMER
from .metrics import BrokerMetrics

__all__ = [
    "CONSUMER",
    "ROUTINE_FILTER",
    "URGENT_CONSUMER",
    "URGENT_FILTER",
    "broker_lanes",
    "consume_lanes",
    "release_subscription",
]

CONSUMER: Final[str] = "palermo-broker"
"""The routine lane's consumer (the name it had before there were lanes: kept, and its filter
narrowed in place on the first start of a broker with lanes)."""
URGENT_CONSUMER: Final[str] = "palermo-broker-urgent"
ROUTINE_FILTER: Final[str] = lane_filter("plm.pub", ROUTINE)
# Any 7-token subject, not only ``....urgent``: PLM_PUB is a work queue, and a message no
# consumer's filter matched would lie there for ever; a mis-shaped subject is instead taken with
# the urgent lane and refused as a subject mismatch (dead letter, notice). PLM_PUB's subjects
# are exactly these two shapes (broker/streams.py), so nothing else is stored at all.
URGENT_FILTER: Final[str] = f"{ROUTINE_FILTER}.*"


def _config(o: BrokerOptions, max_ack_pending: int) -> ConsumerConfig:
    return ConsumerConfig(
        ack_policy=AckPolicy.EXPLICIT,
        max_deliver=o.max_deliver,
        ack_wait=o.ack_wait_s,
        max_ack_pending=max_ack_pending,
    )


async def broker_lanes(
    nc: Client, js: JetStreamContext, o: BrokerOptions, metrics: BrokerMetrics
) -> LaneScheduler:
    """Both consumers (the routine one first: PLM_PUB is a work queue, whose consumers may not
    overlap, and one created before the lanes filtered ``plm.pub.>``) and their scheduler."""
    inflight = o.max_inflight * 4
    routine = await bind_lane(nc, js, "PLM_PUB", CONSUMER, ROUTINE_FILTER, _config(o, inflight))
    urgent = await bind_lane(nc, js, "PLM_PUB", URGENT_CONSUMER, URGENT_FILTER,
                             _config(o, max(inflight, o.lanes.urgent_window)))  # fmt: skip

    def deferred(originator: str, n: int) -> None:
        metrics.lane_deferred.labels(originator=originator).inc(n)

    return LaneScheduler(
        {ROUTINE: routine, URGENT: urgent},
        o.batch,
        o.lanes,
        lambda subject: subject_originator(subject) or "?",
        fetch_timeout_s=o.fetch_timeout_s,
        on_deferred=deferred,
    )


async def consume_lanes(
    lanes: LaneScheduler,
    take: Callable[[Sequence[Msg], bool, str], Coroutine[Any, Any, None]],
    idle: Callable[[], Awaitable[None]],
    stopping: asyncio.Event,
    metrics: BrokerMetrics,
) -> None:
    """The broker's loop over PLM_PUB's lanes until ``stopping``. Urgent turns are handled as they
    come, also while a routine turn is still in hand (its publications and acknowledgements are
    awaited): an urgent envelope waits for no routine one at the broker. At most one turn of each
    lane is in hand, so each lane's envelopes are stored in the order they were fetched
    (decision 0036). ``take(msgs, release, lane)`` handles a turn; ``idle()`` runs when there
    was nothing to take."""
    routine: asyncio.Task[None] | None = None
    try:
        while not stopping.is_set():
            turn = await lanes.take(busy=routine)
            if turn is None:
                if routine is None or routine.done():
                    await idle()
                continue
            lane, msgs = turn
            metrics.lane_turns.labels(lane=lane).inc()
            if lane == URGENT:
                await take(msgs, False, URGENT)
            else:
                routine = asyncio.create_task(take(msgs, False, ROUTINE))
    finally:
        if routine is not None:
            await routine


async def release_subscription(
    js: JetStreamContext, o: BrokerOptions
) -> JetStreamContext.PullSubscription:
    """Held envelopes the server released at not_before (``plm.due.>``, broker/embargo.py): one
    lane, taken by their own loop as they fall due."""
    return await js.pull_subscribe(
        "plm.due.>", durable=RELEASE_CONSUMER, stream=HOLD_STREAM,
        config=_config(o, o.max_inflight * 4),
    )  # fmt: skip
