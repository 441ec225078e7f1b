"""Shared fixtures: real nats-server processes on free loopback ports, stopped after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.natsserver import NatsCluster, NatsLeafPair, NatsServer


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """One nats-server with JetStream on file storage in tmp_path."""
    server = NatsServer(tmp_path / "nats")
    try:
        yield await server.start()
    finally:
        await server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.client_url


@pytest.fixture
async def nats_cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    """A 3-node JetStream cluster."""
    cluster = NatsCluster(tmp_path / "cluster")
    try:
        yield await cluster.start()
    finally:
        await cluster.stop()


@pytest.fixture
async def nats_leaf_pair(tmp_path: Path) -> AsyncIterator[NatsLeafPair]:
    """A hub with one leafnode server connected to it."""
    pair = NatsLeafPair(tmp_path / "leaf")
    try:
        yield await pair.start()
    finally:
        await pair.stop()
