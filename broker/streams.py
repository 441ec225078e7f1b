"""The JetStream streams Palermo runs on, created idempotently (DESIGN.md, "Subjects and streams").

- PLM_PUB   plm.pub.>   work queue: originators publish; brokers take each envelope once
- PLM_DLV   plm.dlv.>   one copy per allowed recipient; partners' durable consumers
- PLM_DEAD  plm.dead.>  refused envelopes with reason headers, for operators
- PLM_AUDIT plm.audit.> hash-chained decisions; deletes and purges denied
- PLM_RCPT  plm.rcpt.>  receipts and broker notices back to originators
- PLM_SEEN  plm.seen.>  one marker per envelope id: replay detection across replicas
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from node.transport import map_nats_errors

__all__ = ["STREAMS", "StreamLimits", "ensure_streams", "stream_configs"]

DAY: Final[float] = 86_400.0


@dataclass(frozen=True)
class StreamLimits:
    """Operator-tunable limits; the defaults suit one federation hub."""

    replicas: int = 1
    max_payload: int = 1024 * 1024
    delivery_days: float = 30
    dead_days: float = 90
    receipt_days: float = 90
    replay_window_s: float = 7 * DAY
    # How long JetStream remembers Nats-Msg-Id values: covers a broker restart and redelivery.
    duplicate_window_s: float = 3600
    max_pub_bytes: int = 8 * 1024**3


STREAMS: Final[tuple[str, ...]] = (
    "PLM_PUB",
    "PLM_DLV",
    "PLM_DEAD",
    "PLM_AUDIT",
    "PLM_RCPT",
    "PLM_SEEN",
)


def stream_configs(limits: StreamLimits) -> list[StreamConfig]:
    file, replicas = StorageType.FILE, limits.replicas
    return [
        StreamConfig(
            name="PLM_PUB",
            subjects=["plm.pub.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            max_msg_size=limits.max_payload,
            max_bytes=limits.max_pub_bytes,
            # New publishes are refused when full, so publishers are told; nothing is dropped.
            discard=DiscardPolicy.NEW,
            duplicate_window=limits.duplicate_window_s,
            storage=file,
            num_replicas=replicas,
        ),
        StreamConfig(
            name="PLM_DLV",
            subjects=["plm.dlv.>"],
            max_age=limits.delivery_days * DAY,
            max_msg_size=limits.max_payload,
            discard=DiscardPolicy.NEW,
            duplicate_window=limits.duplicate_window_s,
            storage=file,
            num_replicas=replicas,
        ),
        StreamConfig(
            name="PLM_DEAD",
            subjects=["plm.dead.>"],
            max_age=limits.dead_days * DAY,
            duplicate_window=limits.duplicate_window_s,
            storage=file,
            num_replicas=replicas,
        ),
        StreamConfig(
            name="PLM_AUDIT",
            subjects=["plm.audit.>"],
            deny_delete=True,
            deny_purge=True,
            storage=file,
            num_replicas=replicas,
        ),
        StreamConfig(
            name="PLM_RCPT",
            subjects=["plm.rcpt.>"],
            max_age=limits.receipt_days * DAY,
            duplicate_window=limits.duplicate_window_s,
            storage=file,
            num_replicas=replicas,
        ),
        StreamConfig(
            name="PLM_SEEN",
            subjects=["plm.seen.>"],
            max_age=limits.replay_window_s,
            max_msgs_per_subject=1,
            storage=file,
            num_replicas=replicas,
        ),
    ]


async def ensure_streams(js: JetStreamContext, limits: StreamLimits) -> None:
    """Create each stream, or bring an existing one to this configuration."""
    for config in stream_configs(limits):
        name = str(config.name)
        with map_nats_errors(f"create stream {name}"):
            try:
                await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                await js.add_stream(config)
                continue
            await js.update_stream(config)
