"""A partner offline while 10,000 reports are published for it, then back: every report lands in
its inbox exactly once, in publish order per originator (docs/node.md, "Delivery order")."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from palermo.devfed import DevFederation
from tests.harness import (
    connect_node,
    example,
    inbox_ids,
    publish,
    run_until_stored,
    running_broker,
    seal_many,
    stream_count,
    wait_for,
)

N = 10_000
ORIGINATORS = ("ITA-GDF", "GRC-HCG")
PARTNER = "MLT-AFM"


@pytest.mark.slow
async def test_partner_offline_for_10k_reports_gets_all_in_order_exactly_once(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    sealed = {}
    for agency in ORIGINATORS:
        async with connect_node(url, fed, agency, tmp_path) as origin:
            sealed[agency] = seal_many(origin, example("01"), [PARTNER], N // len(ORIGINATORS))
    # Interleave the originators, as a busy hub would see them.
    order = [s for pair in zip(*sealed.values(), strict=True) for s in pair]
    nc = await nats.connect(url)
    async with running_broker(url, fed):
        await publish(nc, [(s.header, s.data) for s in order])
        # The partner's node is not running: the broker routes everything into PLM_DLV.
        await wait_for(lambda: _count_at_least(nc, "PLM_DLV", N), within=120)
    assert 0 == await stream_count(nc, "PLM_PUB")
    async with connect_node(url, fed, PARTNER, tmp_path) as partner:
        await run_until_stored(partner, N, within=180)
    await nc.close()
    stored = inbox_ids(tmp_path / PARTNER / "inbox.db")
    assert len(stored) == N == len({i for _, i in stored})
    for agency in ORIGINATORS:
        published = [s.header.id for s in sealed[agency]]
        assert published == [i for o, i in stored if o == agency]


async def _count_at_least(nc: Client, stream: str, n: int) -> bool:
    return await stream_count(nc, stream) >= n
