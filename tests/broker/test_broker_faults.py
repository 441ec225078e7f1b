"""Crashes: the broker killed with SIGKILL, and nats-server restarted, in the middle of 10,000
envelopes. Afterwards every allowed delivery is in PLM_DLV exactly once and none is missing."""

from __future__ import annotations

import signal
from pathlib import Path

import nats
import pytest

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from tests.harness import (
    envelope,
    publish,
    read_all,
    start_broker_process,
    stop_process,
    stream_count,
    wait_for,
    write_broker_config,
)

N = 10_000
RECIPIENTS = ("ESP-GC", "GRC-HCG", "MLT-AFM")


def _batch(fed: DevFederation) -> list[tuple[object, bytes]]:
    return [envelope(fed, recipients=RECIPIENTS, body=b"r" * 512) for _ in range(N)]


async def _exactly_once(nc: nats.NATS, items: list[tuple[object, bytes]]) -> tuple[int, int, int]:
    messages = await read_all(nc, "PLM_DLV")
    ids = [m.headers["Nats-Msg-Id"] for m in messages]
    expected = {f"{h.id}.{r}" for h, _ in items for r in RECIPIENTS}  # type: ignore[attr-defined]
    return len(expected - set(ids)), len(ids) - len(set(ids)), len(ids)


@pytest.mark.slow
async def test_broker_sigkill_mid_stream_loses_and_duplicates_nothing(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """kill -9 of the broker part-way, then a restart: all 30,000 copies, each exactly once."""
    config = write_broker_config(tmp_path, fed, nats_server.client_url, ack_wait_s=2.0)
    nc = await nats.connect(nats_server.client_url)
    items = _batch(fed)
    await publish(nc, items)
    broker = start_broker_process(config, tmp_path / "broker1.log")
    await wait_for(lambda: _at_least(nc, "PLM_DLV", N), within=120)
    stop_process(broker, signal.SIGKILL)
    restarted = start_broker_process(config, tmp_path / "broker2.log")
    await wait_for(lambda: _at_least(nc, "PLM_DLV", 3 * N), within=180)
    await wait_for(lambda: _empty(nc, "PLM_PUB"), within=60)
    missing, duplicates, total = await _exactly_once(nc, items)
    assert 0 == stop_process(restarted)
    await nc.close()
    assert (0, 0, 3 * N) == (missing, duplicates, total)


@pytest.mark.slow
async def test_nats_server_restart_mid_stream_loses_and_duplicates_nothing(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """nats-server stopped and started (file storage) part-way: every copy exactly once."""
    config = write_broker_config(tmp_path, fed, nats_server.client_url, ack_wait_s=2.0)
    nc = await nats.connect(nats_server.client_url, max_reconnect_attempts=-1)
    items = _batch(fed)
    await publish(nc, items)
    broker = start_broker_process(config, tmp_path / "broker.log")
    await wait_for(lambda: _at_least(nc, "PLM_DLV", N), within=120)
    await nats_server.kill()
    await nats_server.restart()
    await wait_for(lambda: _at_least(nc, "PLM_DLV", 3 * N), within=180)
    await wait_for(lambda: _empty(nc, "PLM_PUB"), within=60)
    missing, duplicates, total = await _exactly_once(nc, items)
    assert 0 == stop_process(broker)
    await nc.close()
    assert (0, 0, 3 * N) == (missing, duplicates, total)


async def _at_least(nc: nats.NATS, stream: str, n: int) -> bool:
    try:
        return await stream_count(nc, stream) >= n
    except (nats.errors.Error, TimeoutError):
        return False


async def _empty(nc: nats.NATS, stream: str) -> bool:
    try:
        return await stream_count(nc, stream) == 0
    except (nats.errors.Error, TimeoutError):
        return False
