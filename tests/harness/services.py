"""The services of a live stack, started the way their commands start them: the federation's
documents and streams in a server, a broker and nodes in this process, the broker and the
``palermo`` command as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import nats
from nats.aio.client import Client

from broker.service import Broker, BrokerOptions
from broker.streams import StreamLimits, ensure_streams
from node.service import Node, NodeIdentity
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.directory import Directory
from protocol.trust import TrustStore
from protocol.view import PolicyStore
from tests.harness.streams import wait_for

T = TypeVar("T")


PALERMO = str(Path(sys.executable).parent / "palermo")
"""The ``palermo`` command of this virtualenv."""


async def setup_federation(url: str, fed: DevFederation) -> None:
    """Streams plus every signed document of the federation in the directory."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js, StreamLimits())
    directory = Directory(js, fed.trust_store(), fed.policy_store())
    for doc in fed.documents():
        await directory.publish(doc)
    await nc.close()


async def publish_document(url: str, fed: DevFederation, signed: dict[str, Any]) -> None:
    """Put one signed document in the live directory, as 'palermo directory publish' does."""
    nc = await nats.connect(url)
    try:
        directory = Directory(nc.jetstream(), fed.trust_store(), fed.policy_store())
        await directory.publish(signed)
    finally:
        await nc.close()


@asynccontextmanager
async def connect_node(
    url: str, fed: DevFederation, agency: str, home: Path, **options: Any
) -> AsyncIterator[Node]:
    """``agency``'s node connected (not yet running), its state in ``home/agency``; ``options``
    go to ``Node.connect`` (``broker_keys``, ...)."""
    a = fed.agencies[agency]
    async with Node.connect(
        url, NodeIdentity(a.signing, [a.encryption]), fed.root.public, home / agency, **options
    ) as n:
        yield n


@asynccontextmanager
async def running_nodes(
    url: str, fed: DevFederation, agencies: Iterable[str], home: Path
) -> AsyncIterator[dict[str, Node]]:
    """The nodes of ``agencies``, each running (storing its deliveries) until the block ends."""
    async with AsyncExitStack() as stack:
        nodes = {
            a: await stack.enter_async_context(connect_node(url, fed, a, home)) for a in agencies
        }
        tasks = [asyncio.create_task(n.run(), name=f"node-{a}") for a, n in nodes.items()]
        try:
            yield nodes
        finally:
            for n in nodes.values():
                n.stop()
            await asyncio.gather(*tasks)


async def follow_directory(
    nc: Client, fed: DevFederation, *, state_dir: Path | None = None
) -> Directory:
    """What a service builds at start: an empty trust store pinned to the federation's root and
    a policy store over it, loaded from the live directory and following it (``close()`` it;
    ``state_dir``: where its high-water marks persist, as a replica's volume)."""
    trust = TrustStore(fed.root.public)
    view = Directory(
        nc.jetstream(), trust, PolicyStore(fed.root.public, trust), state_dir=state_dir
    )
    await view.load()
    await view.watch()
    return view


@asynccontextmanager
async def live_view(
    nc: Client, fed: DevFederation, *, state_dir: Path | None = None
) -> AsyncIterator[Directory]:
    """``follow_directory`` until the block ends."""
    view = await follow_directory(nc, fed, state_dir=state_dir)
    try:
        yield view
    finally:
        await view.close()


def broker_on(nc: Client, view: Directory, fed: DevFederation, options: BrokerOptions) -> Broker:
    """A broker deciding on ``view``'s stores (``live_view``), as ``palermo broker run`` builds
    it; run it with ``broker.run()``."""
    return Broker(nc, view.store, view.policy, fed.broker_key, options)


@asynccontextmanager
async def running_federation(
    url: str, fed: DevFederation, agencies: Iterable[str], home: Path
) -> AsyncIterator[dict[str, Node]]:
    """The nodes of ``agencies`` running (``running_nodes``) with a broker (``running_broker``):
    the whole live stack most workflow tests need."""
    async with running_nodes(url, fed, agencies, home) as nodes, running_broker(url, fed):
        yield nodes


@asynccontextmanager
async def running_broker(
    url: str, fed: DevFederation, options: BrokerOptions | None = None
) -> AsyncIterator[Broker]:
    nc = await nats.connect(url)
    broker = Broker(nc, fed.trust_store(), fed.policy_store(), fed.broker_key,
                    options or BrokerOptions(fetch_timeout_s=0.2))  # fmt: skip
    task = asyncio.create_task(broker.run())
    try:
        yield broker
    finally:
        broker.stop()
        await task
        await nc.close()


async def run_until_stored(partner: Node, count: int, within: float) -> None:
    """Run ``partner``'s node until it has stored ``count`` deliveries, then stop it."""
    task = asyncio.create_task(partner.run())

    async def stored() -> bool:
        return partner.received >= count

    try:
        await wait_for(stored, within=within)
    finally:
        partner.stop()
        await task


def write_broker_config(tmp: Path, fed: DevFederation, url: str, **overrides: Any) -> Path:
    """Keys on disk and a broker.toml pointing at them, for a broker subprocess."""
    return fed.broker_config(tmp, url, **overrides)


def start_broker_process(
    config: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``palermo broker run`` as a real process, its log in a file (``env``: extra variables)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [PALERMO, "broker", "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


async def palermo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``palermo ARGS`` in a thread (the event loop keeps serving) and capture its output."""
    return await asyncio.to_thread(
        subprocess.run, [PALERMO, *args], capture_output=True, text=True, timeout=timeout
    )


def run_once(tmp: Path, scenario: Callable[[NatsServer], Awaitable[T]]) -> T:
    """Run ``scenario`` against a fresh nats-server in its own event loop (module fixtures)."""

    async def main() -> T:
        async with NatsServer(tmp / "nats", name="plm-adversarial") as server:
            return await scenario(server)

    return asyncio.run(main())


__all__ = [
    "PALERMO",
    "broker_on",
    "connect_node",
    "follow_directory",
    "live_view",
    "palermo",
    "publish_document",
    "run_once",
    "run_until_stored",
    "running_broker",
    "running_nodes",
    "setup_federation",
    "start_broker_process",
    "stop_process",
    "write_broker_config",
]
