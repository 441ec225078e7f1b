"""nats-server SIGKILLed and restarted while a node publishes: each Node.publish either returned
(and that report reaches the partner, once) or raised a typed TransportError telling the user to
retry; nothing that returned is lost, nothing arrives twice. A publish whose acknowledgement the
kill swallowed is sent again under the same id (Node._publish), so most ride the outage out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from schemas.errors import TransportError
from tests.harness import connect_node, example, inbox_ids, running_broker, wait_for

N = 300
KILL_AT = 100


@pytest.mark.slow
async def test_server_sigkill_during_node_publish_loses_nothing_that_returned(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    report = example("01")
    ok: list[str] = []
    failed: list[TransportError] = []
    async with (
        running_broker(url, fed),
        connect_node(url, fed, "ITA-GDF", tmp_path) as ita,
        connect_node(url, fed, "MLT-AFM", tmp_path) as mlt,
    ):
        consumer = asyncio.create_task(mlt.run())
        for i in range(N):
            if i == KILL_AT:
                await nats_server.kill()
                restart = asyncio.create_task(_restart_soon(nats_server))
            try:
                ok.append((await ita.publish(report, to=["MLT-AFM"])).header.id)
            except TransportError as exc:
                failed.append(exc)
        await restart

        async def all_ok_stored() -> bool:
            return all(mlt.inbox.seen(i) for i in ok)

        await wait_for(all_ok_stored, within=120)
        mlt.stop()
        await consumer
        retries = ita.metrics.registry.get_sample_value("palermo_node_publish_retries_total")
    assert (retries or 0) + len(failed) >= 1, "the kill should have cost a retry or a failure"
    told = ("cannot reach NATS", "timed out waiting for NATS")
    assert all(any(t in str(e) for t in told) for e in failed), [str(e) for e in failed][:3]
    stored = [i for _, i in inbox_ids(tmp_path / "MLT-AFM" / "inbox.db")]
    assert len(stored) == len(set(stored))
    assert set(ok) <= set(stored)
    assert len(ok) + len(failed) == N
    assert len(ok) > KILL_AT


async def _restart_soon(server: NatsServer) -> None:
    # While the server is down the publisher must get errors, not hang.
    await asyncio.sleep(1.0)
    await server.restart()
