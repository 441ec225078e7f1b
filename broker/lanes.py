"""The broker's two lanes on PLM_PUB (protocol/lanes.py, decision 0032): one durable consumer
per lane, filtered by the lane's subjects, and the scheduler that takes urgent work first."""

from __future__ import annotations

from typing import Final

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
    js: JetStreamContext, o: BrokerOptions, metrics: BrokerMetrics
) -> LaneScheduler:
    """Both consumers (the routine one first: PLM_PUB is a work queue, whose consumers may not
    overlap, and one created before the lanes filtered ``plm.pub.>``) and their scheduler."""
    inflight = o.max_inflight * 4
    routine = await bind_lane(js, "PLM_PUB", CONSUMER, ROUTINE_FILTER, _config(o, inflight))
    urgent = await bind_lane(js, "PLM_PUB", URGENT_CONSUMER, URGENT_FILTER,
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


async def release_subscription(
    js: JetStreamContext, o: BrokerOptions
) -> JetStreamContext.PullSubscription:
    """Held envelopes the server released at not_before (``plm.due.>``, broker/embargo.py): one
    lane, taken by their own loop as they fall due."""
    return await js.pull_subscribe(
        "plm.due.>", durable=RELEASE_CONSUMER, stream=HOLD_STREAM,
        config=_config(o, o.max_inflight * 4),
    )  # fmt: skip
