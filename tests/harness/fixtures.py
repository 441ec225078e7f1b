"""The live-stack fixtures every test package shares (loaded by ``tests/conftest.py``).

Real nats-server processes (``palermo/natsserver.py``) on free loopback ports, JetStream on file
storage in ``tmp_path``; one fresh set per test, always stopped at teardown, even when the test
fails. Every test talks to a real server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from palermo.devfed import DevFederation
from palermo.natsserver import NatsCluster, NatsLeafPair, NatsServer
from tests.harness.services import setup_federation


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """One nats-server with JetStream on file storage in tmp_path; kill()/restart() allowed."""
    server = NatsServer(tmp_path / "nats", name="plm-test")
    try:
        yield await server.start()
    finally:
        await server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    """The client URL of the ``nats_server`` fixture."""
    return nats_server.client_url


@pytest.fixture
async def nats_cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    """A 3-node JetStream cluster with an elected meta leader."""
    cluster = NatsCluster(tmp_path / "cluster")
    try:
        yield await cluster.start()
    finally:
        await cluster.stop()


@pytest.fixture
async def nats_leaf_pair(tmp_path: Path) -> AsyncIterator[NatsLeafPair]:
    """A JetStream hub with one leafnode server connected to it."""
    pair = NatsLeafPair(tmp_path / "leaf")
    try:
        yield await pair.start()
    finally:
        await pair.stop()


@pytest.fixture
def fed() -> DevFederation:
    """The example federation (``palermo/devfed.py``), its documents valid from now."""
    return DevFederation.build(datetime.now(UTC))


@pytest.fixture
async def federated_url(nats_server: NatsServer, fed: DevFederation) -> str:
    """The ``nats_server`` holding ``fed``'s streams and signed documents."""
    await setup_federation(nats_server.client_url, fed)
    return nats_server.client_url
