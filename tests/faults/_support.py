"""Helpers for fault-injection tests: nodes and a broker in this process, sealed reports."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import nats

from broker.service import Broker, BrokerOptions
from node.reports import SealedReport, seal_report
from node.service import Node, NodeIdentity
from palermo.devfed import DevFederation
from schemas import Report
from schemas.export import parse_report

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"


def example(name: str = "01") -> Report:
    return parse_report(next(EXAMPLES.glob(f"{name}*.json")).read_text())


@asynccontextmanager
async def node(url: str, fed: DevFederation, agency: str, home: Path) -> AsyncIterator[Node]:
    a = fed.agencies[agency]
    async with Node.connect(
        url, NodeIdentity(a.signing, [a.encryption]), fed.root.public, home / agency
    ) as n:
        yield n


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


def seal_many(origin: Node, report: Report, to: list[str], n: int) -> list[SealedReport]:
    """``n`` copies of ``report`` sealed by ``origin`` (each its own envelope id)."""
    report = report.model_copy(update={"originator": origin.identity.agency})
    now = datetime.now(UTC)
    return [
        seal_report(report, origin.identity.signing, to, origin.trust, origin.policy, now)
        for _ in range(n)
    ]


def inbox_ids(db: Path) -> list[tuple[str, str]]:
    """(originator, id) of every stored report, in the order the inbox stored them."""
    con = sqlite3.connect(db)
    try:
        return [tuple(r) for r in con.execute("SELECT originator, id FROM reports ORDER BY rowid")]
    finally:
        con.close()


async def run_until_stored(partner: Node, count: int, within: float) -> None:
    """Run ``partner``'s node until it has stored ``count`` deliveries, then stop it."""
    from tests.broker._support import wait_for

    task = asyncio.create_task(partner.run())

    async def stored() -> bool:
        return partner.received >= count

    try:
        await wait_for(stored, within=within)
    finally:
        partner.stop()
        await task
