"""Run the broker as a service: connect, check the streams (create them only with full rights:
in a deployment the operator does, decision 0015), follow the directory, consume, stop.

On SIGTERM or SIGINT the broker stops fetching, finishes the batch in hand (or naks it), writes
a final signed audit checkpoint, drains its NATS connection and logs one summary line.
"""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Final

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.directory import Directory
from protocol.keys import SigningKey, load_private_key
from protocol.marks import HighWaterMarks
from protocol.ops import OpsServer
from protocol.transport import connect
from protocol.trust import TrustStore
from protocol.view import PolicyStore
from schemas.errors import ConfigError

from .config import BrokerSettings
from .metrics import BrokerMetrics
from .service import Broker, BrokerOptions
from .streams import ensure_directory_bucket, ensure_streams

__all__ = ["load_broker_key", "run_broker"]

GRACE_S: Final[float] = 20.0
_log = structlog.get_logger("palermo.broker")


def load_broker_key(settings: BrokerSettings) -> SigningKey:
    secret = settings.signing_key_passphrase
    key = load_private_key(
        settings.signing_key, secret.get_secret_value().encode() if secret else None
    )
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{settings.signing_key} is not an Ed25519 signing key")
    return SigningKey(settings.broker_id, key)


async def run_broker(
    settings: BrokerSettings,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until a signal; returns envelopes processed.

    With ``stop`` (``palermo dev up``, which runs it beside the nodes) it runs until that event
    is set instead, and leaves the process's signals to the caller.
    """
    from protocol.settings import load_root_public

    settings.check_secure()
    if settings.state_dir is None:
        # Without state a restarted replica forgets the versions it accepted and would adopt
        # a rolled-back revocation list or policy from the directory.
        raise ConfigError(
            f"{settings.what}: set state_dir, a persistent directory of this replica's own "
            "(one volume per replica; docs/operations.md)"
        )
    root = load_root_public(settings.root_key)
    key = load_broker_key(settings)
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        nc = await stack.enter_async_context(
            connect(
                settings.nats_url,
                f"palermo-broker-{settings.broker_id}",
                **settings.connect_options(),
            )
        )
        js = nc.jetstream()
        await ensure_streams(js, settings.stream_limits())
        # Under a deployment's permissions this only checks (the operator creates them with
        # 'palermo broker streams create'); with full rights (dev, tests) it creates them.
        await ensure_directory_bucket(js, settings.replicas)
        # Marks: the configured minimums, raised by what this replica accepted before (its
        # state_dir); the directory refuses to start below them for revocations and policy.
        trust = TrustStore(root, HighWaterMarks(settings.minimum_marks()))
        policy = PolicyStore(root, trust)
        directory = Directory(
            js, trust, policy, replicas=settings.replicas, state_dir=settings.state_dir
        )
        await directory.load()
        await directory.watch()
        stack.push_async_callback(directory.close)
        metrics = BrokerMetrics()
        metrics.watch_revocations(trust)
        directory.register_metrics(metrics.registry)
        broker = Broker(
            nc,
            trust,
            policy,
            key,
            BrokerOptions(
                broker_id=settings.broker_id,
                max_envelope_bytes=settings.max_envelope_bytes,
                max_embargo=timedelta(days=settings.max_embargo_days),
                batch=settings.batch,
                max_inflight=settings.max_inflight,
                max_deliver=settings.max_deliver,
                ack_wait_s=settings.ack_wait_s,
                checkpoint_every=settings.checkpoint_every,
                checkpoint_ms=settings.checkpoint_ms,
                lanes=settings.lane_shares(),
            ),
            metrics,
        )
        ops = OpsServer(nc, metrics.registry, lambda: policy.ready, settings.http_host,
                        settings.http_port, warnings=trust.warnings)  # fmt: skip
        port = await ops.start()
        stack.push_async_callback(ops.stop)
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
        for sig in signals:
            loop.add_signal_handler(sig, broker.stop)
        _log.info("broker started", broker=settings.broker_id, http_port=port,
                  members=len(trust.members), chain=broker.chain.chain)  # fmt: skip
        if ready is not None:
            ready.set()
        task = asyncio.create_task(broker.run())
        stopper = asyncio.create_task(stop.wait()) if stop is not None else None
        await asyncio.wait({task} | ({stopper} if stopper else set()),
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        broker.stop()
        await task
        if stopper is not None:
            stopper.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
    _log.info("broker stopped", broker=settings.broker_id, processed=broker.processed,
              seconds=round(time.monotonic() - started, 1))  # fmt: skip
    return broker.processed
