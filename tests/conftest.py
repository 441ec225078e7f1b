"""Fixtures shared by every test package.

Sections, one per concern (add new ones below their own heading):

- NATS: real nats-server processes (``palermo/natsserver.py``) on free loopback ports, JetStream
  on file storage in ``tmp_path``; one fresh set per test, always stopped at teardown, even when
  the test fails. Every test talks to a real server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from palermo.natsserver import NatsCluster, NatsLeafPair, NatsServer
from tests.stateful._summary import print_counts, stateful_first

# --- NATS ---------------------------------------------------------------------------------------


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


# --- Order and summary ------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """The longest tests (the stateful shards) first, one per xdist worker."""
    stateful_first(items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The stateful run's counts, if a shard ran."""
    print_counts(terminalreporter)
