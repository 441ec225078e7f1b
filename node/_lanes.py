"""The node's two delivery lanes on PLM_DLV (protocol/lanes.py, decision 0032): one durable
consumer per lane, and the settings an operator tunes (node.toml, docs/node.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from protocol.lanes import ROUTINE, URGENT, LaneScheduler, LaneShares, bind_lane, lane_filter
from protocol.transport import subject_originator

from .metrics import NodeMetrics

__all__ = [
    "DELIVERY_CONSUMER",
    "FETCH_BATCH",
    "URGENT_DELIVERY_CONSUMER",
    "DeliveryOptions",
    "node_lanes",
]

FETCH_BATCH: Final[int] = 64
DELIVERY_CONSUMER: Final[str] = "node-{agency}"
"""The routine lane's consumer (the name it had before there were lanes; its filter is
narrowed in place on the first start of a node with lanes)."""
URGENT_DELIVERY_CONSUMER: Final[str] = "node-{agency}-urgent"


def _node_shares() -> LaneShares:
    # One routine delivery per turn: a node stores deliveries one at a time, so an urgent one
    # waits for at most the routine delivery in hand. No urgent read-ahead beyond one fetch:
    # the backlog stays in JetStream, not in the node's memory.
    return LaneShares(routine_slice=1, urgent_window=FETCH_BATCH)


@dataclass(frozen=True)
class DeliveryOptions:
    """How a node takes its deliveries (NodeSettings: ack_wait_s, fetch_batch, ...)."""

    ack_wait_s: float = 30.0
    """How long a delivery handed to this node may stay unacknowledged before it comes again."""
    fetch_batch: int = FETCH_BATCH
    max_ack_pending: int = 1000
    """Deliveries handed out and not yet acknowledged, per lane (JetStream's default)."""
    early_recheck_s: float = 300.0
    """The longest a delivery that came early by this node's clock (an embargoed one before its
    not_before, or one created more than 5 minutes ahead) is put back before it is looked at
    again (and warned about again): node/_receiving.py, early_wait and created_wait."""
    lanes: LaneShares = field(default_factory=_node_shares)


def _config(o: DeliveryOptions) -> ConsumerConfig:
    # No attempt limit: what cannot be stored yet (a full disk, a receipt that cannot be sent)
    # is retried until it can; what can never be stored is refused and terminated by handle().
    # A limit would silently drop an alert.
    return ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_deliver=-1, ack_wait=o.ack_wait_s,
                          max_ack_pending=o.max_ack_pending)  # fmt: skip


async def node_lanes(
    nc: Client, js: JetStreamContext, agency: str, o: DeliveryOptions, metrics: NodeMetrics
) -> LaneScheduler:
    """This agency's two delivery consumers and their scheduler (urgent first)."""
    prefix = f"plm.dlv.{agency}"
    routine = await bind_lane(nc, js, "PLM_DLV", DELIVERY_CONSUMER.format(agency=agency),
                              lane_filter(prefix, ROUTINE), _config(o))  # fmt: skip
    urgent = await bind_lane(nc, js, "PLM_DLV", URGENT_DELIVERY_CONSUMER.format(agency=agency),
                             lane_filter(prefix, URGENT), _config(o))  # fmt: skip

    def deferred(originator: str, n: int) -> None:
        metrics.lane_deferred.labels(originator=originator).inc(n)

    return LaneScheduler(
        {ROUTINE: routine, URGENT: urgent},
        o.fetch_batch,
        o.lanes,
        lambda subject: subject_originator(subject, 3) or "?",
        on_deferred=deferred,
    )
