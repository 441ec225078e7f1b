"""A slow partner node with a deep queue: the backlog stays in JetStream, not in the node (its
un-acked deliveries never exceed one fetch batch, its Python heap stays bounded), nothing lost."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg

from node.service import FETCH_BATCH
from palermo.devfed import DevFederation
from tests.harness import (
    connect_node,
    example,
    inbox_ids,
    publish,
    running_broker,
    seal_many,
    stream_count,
    wait_for,
)

N = 1200
PARTNER = "MLT-AFM"


@pytest.mark.slow
async def test_slow_consumer_holds_back_pressure_and_loses_nothing(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        report = example("01")
        # ~16 KiB of narrative each: a backlog of about 14 MB waits for the partner.
        narrative = report.narrative.model_copy(update={"text": report.narrative.text * 40})
        report = report.model_copy(update={"narrative": narrative})
        sealed = seal_many(ita, report, [PARTNER], N)
    nc = await nats.connect(url)
    js = nc.jetstream()
    async with running_broker(url, fed):
        await publish(nc, [(s.header, s.data) for s in sealed])

        async def routed() -> bool:
            return await stream_count(nc, "PLM_DLV") >= N

        await wait_for(routed, within=120)
    backlog = sum(len(s.data) for s in sealed)
    async with connect_node(url, fed, PARTNER, tmp_path) as mlt:
        handle = mlt.handle

        async def slow(msg: Msg) -> str:
            await asyncio.sleep(0.002)  # a slow store: the queue stays deep for the whole run
            return await handle(msg)

        mlt.handle = slow  # type: ignore[method-assign]
        tracemalloc.start()
        task = asyncio.create_task(mlt.run())
        in_hand: list[int] = []

        async def drained() -> bool:
            # Both lanes' consumers (the example report is urgent; decision 0032).
            try:
                infos = [await js.consumer_info("PLM_DLV", name)
                         for name in (f"node-{PARTNER}", f"node-{PARTNER}-urgent")]  # fmt: skip
            except nats.js.errors.NotFoundError:
                return False
            in_hand.append(max(info.num_ack_pending for info in infos))
            return mlt.received >= N

        await wait_for(drained, within=180)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        mlt.stop()
        await task
    await nc.close()
    assert max(in_hand) <= FETCH_BATCH
    assert len(in_hand) > 10  # sampled throughout, not only at the end
    # The node never holds the backlog: its heap grows by far less than the queued bytes.
    assert backlog > 10_000_000
    assert peak < backlog // 3, (peak, backlog)
    stored = [i for _, i in inbox_ids(tmp_path / PARTNER / "inbox.db")]
    assert sorted(stored) == sorted(s.header.id for s in sealed)
