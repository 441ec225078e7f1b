"""The JetStream streams Palermo runs on, created idempotently (DESIGN.md, "Subjects and streams").

- PLM_PUB   plm.pub.*.*.*.*[.*]  work queue: originators publish, routine and urgent lanes;
            brokers take each envelope once (decision 0032)
- PLM_DLV   plm.dlv.>   one copy per allowed recipient; partners' durable consumers
- PLM_DEAD  plm.dead.>  refused envelopes with reason headers, for operators
- PLM_AUDIT plm.audit.> hash-chained decisions; deletes and purges denied
- PLM_RCPT  plm.rcpt.>  receipts and broker notices back to originators
- PLM_SEEN  plm.seen.>  one marker per envelope id: replay detection across replicas
- PLM_HOLD  plm.hold.>  embargoed envelopes held until not_before (JetStream message schedules,
            decision 0020); plm.due.> what the server releases at not_before, for the broker;
            plm.void.> one marker per envelope retracted while held

and the directory bucket ``PLM_DIR`` (stream ``KV_PLM_DIR``, protocol/directory.py).

Who creates them (docs/decisions/0015-jetstream-api-per-role.md): in a deployment the operator,
once, with ``palermo broker streams create --config broker.toml --nats-config admin.toml``; the
broker's NATS user has no verb that creates, updates, deletes or purges a stream, so at start-up
it only *checks* that each exists with the configuration below and otherwise stops with
:class:`~schemas.errors.StreamsNotProvisioned` naming that command. With full rights (``palermo
dev up``, ``palermo demo``, tests) the same call creates or corrects them, as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from protocol.directory import BUCKET
from protocol.lanes import ROUTINE, lane_filter
from protocol.transport import map_nats_errors
from schemas.errors import PalermoError, StreamsNotProvisioned

__all__ = [
    "CREATE_COMMAND",
    "DIRECTORY_HISTORY",
    "STREAMS",
    "StreamLimits",
    "ensure_directory_bucket",
    "ensure_streams",
    "stream_configs",
]

DAY: Final[float] = 86_400.0
PUBLISH_ROUTINE: Final[str] = lane_filter("plm.pub", ROUTINE)
CREATE_COMMAND: Final[str] = (
    "palermo broker streams create --config broker.toml --nats-config admin.toml"
)
"""What the operator runs (with the admin's NATS user) to create or correct the streams."""
DIRECTORY_STREAM: Final[str] = f"KV_{BUCKET}"
DIRECTORY_HISTORY: Final[int] = 5
"""Versions kept per directory key; the same as protocol/directory.py's ``Directory._create``."""


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
    # How long PLM_HOLD keeps a held envelope: longer than the broker's max_embargo (30 days by
    # default, BrokerOptions), or a schedule would be aged out before it fires.
    hold_days: float = 31


STREAMS: Final[tuple[str, ...]] = (
    "PLM_PUB",
    "PLM_DLV",
    "PLM_DEAD",
    "PLM_AUDIT",
    "PLM_RCPT",
    "PLM_SEEN",
    "PLM_HOLD",
)


def stream_configs(limits: StreamLimits) -> list[StreamConfig]:
    file, replicas = StorageType.FILE, limits.replicas
    return [
        StreamConfig(
            name="PLM_PUB",
            # The two lanes' shapes only (decision 0032): routine plm.pub.<o>.<k>.<r>.<c>, urgent
            # the same and ".urgent"; anything else is refused at publish.
            subjects=[PUBLISH_ROUTINE, f"{PUBLISH_ROUTINE}.*"],
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
            # An envelope's copies in one atomic batch (broker/_atomic.py, decision 0033).
            allow_atomic=True,
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
            # An embargoed envelope's age counts from its not_before (up to hold_days after its
            # marker was written), so its marker must outlive the replay window from then.
            max_age=limits.replay_window_s + limits.hold_days * DAY,
            max_msgs_per_subject=1,
            allow_atomic=True,  # a batch's markers in one atomic batch (decision 0033)
            storage=file,
            num_replicas=replicas,
        ),
        StreamConfig(
            name="PLM_HOLD",
            subjects=["plm.hold.>", "plm.due.>", "plm.void.>"],
            max_age=limits.hold_days * DAY,
            max_msg_size=limits.max_payload,
            # One schedule per held envelope (ADR-51: the last message on a subject holds it).
            max_msgs_per_subject=1,
            # (nats-server refuses discard=new with schedules; nothing but max_age and a newer
            # schedule for the same id removes a held envelope.)
            allow_msg_schedules=True,
            duplicate_window=limits.duplicate_window_s,
            storage=file,
            num_replicas=replicas,
        ),
    ]


def _duration(value: float | None) -> int:
    """Seconds as whole milliseconds: the server returns nanoseconds, nats-py floats."""
    return round((value or 0) * 1000)


def _differences(expected: StreamConfig, actual: StreamConfig) -> list[str]:
    """What of ``expected`` ``actual`` does not have, as ``field: expected X, found Y``.

    Only what Palermo sets, plus what must be absent: a stream that sources, mirrors,
    republishes or transforms subjects can write where its own subjects would not (how the
    broker's user could rewrite the directory while it had STREAM.UPDATE).
    """
    fields: dict[str, tuple[Any, Any]] = {
        "subjects": (sorted(expected.subjects or []), sorted(actual.subjects or [])),
        "retention": (
            expected.retention or RetentionPolicy.LIMITS,
            actual.retention or RetentionPolicy.LIMITS,
        ),
        "max_msg_size": (expected.max_msg_size, actual.max_msg_size),
        "max_bytes": (expected.max_bytes or -1, actual.max_bytes or -1),
        "discard": (expected.discard, actual.discard),
        "max_age": (_duration(expected.max_age), _duration(actual.max_age)),
        "max_msgs_per_subject": (expected.max_msgs_per_subject, actual.max_msgs_per_subject),
        "deny_delete": (expected.deny_delete, actual.deny_delete),
        "deny_purge": (expected.deny_purge, actual.deny_purge),
        "allow_msg_schedules": (
            bool(expected.allow_msg_schedules),
            bool(actual.allow_msg_schedules),
        ),
        "storage": (expected.storage, actual.storage),
        "num_replicas": (expected.num_replicas or 1, actual.num_replicas or 1),
        "sources": ([], actual.sources or []),
        "mirror": (None, actual.mirror),
        "republish": (None, actual.republish),
        "subject_transform": (None, actual.subject_transform),
    }
    if expected.duplicate_window:  # otherwise the server's default (2 minutes) stands
        fields["duplicate_window"] = (
            _duration(expected.duplicate_window),
            _duration(actual.duplicate_window),
        )
    return [f"{k}: expected {e!r}, found {a!r}" for k, (e, a) in fields.items() if e != a]


async def _info(js: JetStreamContext, name: str) -> StreamConfig | None:
    with map_nats_errors(f"look up stream {name}"):
        try:
            return (await js.stream_info(name)).config
        except nats.js.errors.NotFoundError:
            return None


class _Provisioner:
    """Check each stream; create or correct it while this connection may; collect the rest."""

    def __init__(self, js: JetStreamContext, create: bool) -> None:
        self.js = js
        self.create = create
        self.problems: dict[str, str] = {}

    async def ensure(self, expected: StreamConfig, actual: StreamConfig | None) -> None:
        name = str(expected.name)
        problem = "missing" if actual is None else "; ".join(_differences(expected, actual))
        if not problem:
            return
        if self.create:
            try:
                with map_nats_errors(f"create stream {name}"):
                    if actual is None:
                        await self.js.add_stream(expected)
                    else:
                        await self.js.update_stream(expected)
                return
            except PalermoError as exc:
                # A replicated stream on a loaded cluster may take longer to create than the
                # request waits: if it is there now, as configured, it was only slow.
                if await self._arrived_late(expected):
                    return
                # Under a deployment's permissions nats-server drops the request ("Permissions
                # Violation"), which the client sees as a timeout: stop trying the others.
                self.create = False
                problem = f"{problem} (and this NATS user could not fix it: {exc.reason})"
        self.problems[name] = problem

    async def _arrived_late(self, expected: StreamConfig) -> bool:
        try:
            actual = await _info(self.js, str(expected.name))
        except PalermoError:
            return False
        return actual is not None and not _differences(expected, actual)

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        listed = "; ".join(f"{name}: {problem}" for name, problem in self.problems.items())
        raise StreamsNotProvisioned(
            f"JetStream is not provisioned for Palermo ({listed}). The broker's NATS user may "
            f"not create or change streams: the operator creates them once, with the admin "
            f"credentials: '{CREATE_COMMAND}', then starts the broker again",
            streams=sorted(self.problems),
            command=CREATE_COMMAND,
        )


async def ensure_streams(
    js: JetStreamContext, limits: StreamLimits, *, create: bool = True
) -> None:
    """Check that each stream exists as configured; create or correct it if allowed.

    Raises :class:`StreamsNotProvisioned` naming every stream that is missing or different and
    could not be fixed (``create=False``, or the connection's user lacks the right).
    """
    provisioner = _Provisioner(js, create)
    for config in stream_configs(limits):
        await provisioner.ensure(config, await _info(js, str(config.name)))
    provisioner.raise_if_any()


async def ensure_directory_bucket(
    js: JetStreamContext, replicas: int = 1, *, create: bool = True
) -> None:
    """The same for the directory bucket: its stream holds only ``$KV.PLM_DIR.>``, keeps
    :data:`DIRECTORY_HISTORY` versions, and takes nothing from other streams."""
    provisioner = _Provisioner(js, create)
    actual = await _info(js, DIRECTORY_STREAM)
    if actual is None and create:
        try:
            with map_nats_errors(f"create the directory bucket {BUCKET}"):
                await js.create_key_value(
                    bucket=BUCKET, history=DIRECTORY_HISTORY, replicas=replicas
                )
            return
        except PalermoError as exc:
            provisioner.problems[DIRECTORY_STREAM] = (
                f"missing (and this NATS user could not create it: {exc.reason})"
            )
    elif actual is not None:
        # The bucket's own settings (allow_direct, rollups, deny_delete) come from nats-py;
        # only what Palermo chooses and what must be absent is compared.
        expected = dataclasses.replace(
            actual,
            subjects=[f"$KV.{BUCKET}.>"],
            max_msgs_per_subject=DIRECTORY_HISTORY,
            num_replicas=replicas,
            sources=None,
            mirror=None,
            republish=None,
            subject_transform=None,
        )
        await provisioner.ensure(expected, actual)
    else:
        provisioner.problems[DIRECTORY_STREAM] = "missing"
    provisioner.raise_if_any()
