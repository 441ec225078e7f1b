"""``palermo demo``: the whole path on an embedded nats-server, end to end, then exit.

Starts nats-server (JetStream in a temporary folder), builds the example federation (fresh keys,
signed certificates, bundles, route subscriptions, signed policies) and publishes it to the
directory, runs a broker, and has each originator seal the example reports for the partners
whose subscriptions match and whom its policy allows. Every partner then reads its inbox
subject, verifies and opens what arrived. The result is a delivery matrix (report × agency:
delivered, denied with the reason, or not interested) and one opened report as a partner sees it.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from broker.service import Broker, BrokerOptions
from broker.streams import StreamLimits, ensure_streams
from node.service import Node, NodeIdentity
from protocol.directory import Directory
from schemas import Report
from schemas.errors import InputError
from schemas.export import parse_report

from .devfed import DevFederation
from .natsserver import NatsServer

__all__ = ["DemoResult", "run_demo"]

EXAMPLES = Path(__file__).resolve().parent.parent / "schemas" / "examples"


@dataclass
class DemoResult:
    agencies: list[str]
    reports: list[dict[str, Any]] = field(default_factory=list)
    opened: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"agencies": self.agencies, "reports": self.reports, "opened": self.opened}


def load_examples() -> list[Report]:
    return [parse_report(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))]


def interested(fed: DevFederation, report: Report) -> list[str]:
    """Partners whose registered subscriptions match the report's topic."""
    store = fed.trust_store()
    return sorted(
        a
        for a, subs in store.subscriptions.items()
        if a != report.originator and subs.matches(report.route, report.category, report.kind)
    )


async def run_demo(state_dir: Path | None = None) -> DemoResult:
    """Every agency runs a real node; each example is published by its originator's node."""
    base = state_dir or Path(tempfile.mkdtemp(prefix="palermo-demo-"))
    fed = DevFederation.build(datetime.now(UTC))
    result = DemoResult(agencies=sorted(fed.agencies))
    async with NatsServer(base / "nats") as server, AsyncExitStack() as stack:
        nc = await nats.connect(server.client_url, name="palermo-demo")
        stack.push_async_callback(nc.close)
        js = nc.jetstream()
        await ensure_streams(js, StreamLimits())
        trust, policy = fed.trust_store(), fed.policy_store()
        directory = Directory(js, trust, policy)
        for doc in fed.documents():
            await directory.publish(doc)
        broker = Broker(nc, trust, policy, fed.broker_key, BrokerOptions(fetch_timeout_s=0.2))
        nodes: dict[str, Node] = {}
        for agency in result.agencies:
            keys = fed.agencies[agency]
            nodes[agency] = await stack.enter_async_context(
                Node.connect(
                    server.client_url,
                    NodeIdentity(keys.signing, [keys.encryption]),
                    fed.root.public,
                    base / "nodes" / agency,
                    broker_keys=[fed.broker_key.public],
                )
            )
        tasks = [asyncio.create_task(broker.run())]
        tasks += [asyncio.create_task(n.run()) for n in nodes.values()]
        try:
            sent = [await _publish(nodes, report, result) for report in load_examples()]
            await _collect(nodes, [s for s in sent if s is not None], result)
        finally:
            broker.stop()
            for n in nodes.values():
                n.stop()
            await asyncio.gather(*tasks)
    return result


async def _publish(nodes: dict[str, Node], report: Report, result: DemoResult) -> Any:
    node = nodes[report.originator]
    candidates = node.interested(report)
    row: dict[str, Any] = {
        "id": None,
        "originator": report.originator,
        "title": report.title,
        "route": report.route.value,
        "category": report.category.value,
        "handling": report.handling.model_dump(mode="json", exclude_defaults=True),
        "contains_personal_data": False,
        "deliveries": {
            a: {"status": "not-interested", "reasons": []}
            for a in result.agencies
            if a != report.originator and a not in candidates
        },
    }
    result.reports.append(row)
    try:
        sealed = await node.publish(report)
    except InputError as exc:
        # Nobody interested or nobody allowed: the originator is told, nothing is sent.
        row["not_sent"] = exc.reason
        for a in candidates:
            row["deliveries"][a] = {"status": "denied", "reasons": [exc.to_dict()]}
        return None
    row["id"] = sealed.header.id
    row["contains_personal_data"] = sealed.header.contains_personal_data
    for agency, decision in sealed.decisions.items():
        if not decision.allowed:
            reasons = [r.to_dict() for r in decision.reasons]
            row["deliveries"][agency] = {"status": "denied", "reasons": reasons}
    return sealed


async def _collect(nodes: dict[str, Node], sent: list[Any], result: DemoResult) -> None:
    """Wait for every recipient's signed receipt, then fill in the matrix from the inboxes."""
    by_id = {row["id"]: row for row in result.reports if row["id"]}
    deadline = asyncio.get_running_loop().time() + 30
    statuses: dict[str, dict[str, Any]] = {}
    for sealed in sent:
        origin = nodes[sealed.header.originator]
        while True:
            statuses[sealed.header.id] = await origin.delivery_status(sealed.header.id)
            if set(sealed.recipients) <= set(statuses[sealed.header.id]):
                break
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
    for sealed in sent:
        row = by_id[sealed.header.id]
        receipts = statuses[sealed.header.id]
        row["receipts"] = {a: r["status"] for a, r in receipts.items()}
        for agency in sealed.recipients:
            node = nodes[agency]
            if not node.inbox.seen(sealed.header.id):
                row["deliveries"][agency] = {"status": "missing", "reasons": []}
                continue
            entry, report = node.inbox.show(sealed.header.id)
            row["deliveries"][agency] = {
                "status": "delivered",
                "reasons": [],
                "withheld_sections": entry.withheld,
            }
            if report is not None and entry.withheld and not result.opened:
                result.opened = {
                    "agency": agency,
                    "header": entry.header,
                    "report": report.to_wire(),
                    "withheld": entry.withheld,
                    "codes": entry.codes,
                }


def render(result: DemoResult) -> str:
    """The delivery matrix as text: D delivered, x denied, . not interested, - originator."""
    short = {a: a.split("-")[0] for a in result.agencies}
    lines = ["Delivery matrix (D delivered, D* delivered with sections withheld, x denied, "
             ". not interested, - originator)", ""]  # fmt: skip
    lines.append(f"{'report':<42} " + " ".join(f"{short[a]:>5}" for a in result.agencies))
    denials = []
    for row in result.reports:
        cells = []
        for a in result.agencies:
            d = row["deliveries"].get(a)
            if a == row["originator"]:
                cells.append("-")
            elif d is None:
                cells.append("?")
            elif d["status"] == "delivered":
                cells.append("D*" if d.get("withheld_sections") else "D")
            elif d["status"] == "denied":
                cells.append("x")
                denials.append(f"  {row['title'][:40]} → {a}: {d['reasons'][0]['message']}")
            else:
                cells.append(".")
        lines.append(f"{row['title'][:42]:<42} " + " ".join(f"{c:>5}" for c in cells))
    lines += ["", "Denials, with the reason each partner's operator would see:", *denials]
    lines += ["", "Receipts signed by the recipients' nodes, as each originator sees them:"]
    for row in result.reports:
        receipts = row.get("receipts")
        if receipts is None:
            lines.append(f"  {row['title'][:40]}: not sent ({row.get('not_sent', '')[:60]})")
            continue
        expected = sum(1 for d in row["deliveries"].values() if d["status"] == "delivered")
        got = sum(1 for status in receipts.values() if status == "delivered")
        lines.append(f"  {row['title'][:40]}: {got} of {expected} delivered and confirmed")
    if result.opened:
        lines += [
            "",
            f"One report as {result.opened['agency']} opened it "
            f"(withheld: {', '.join(result.opened['withheld']) or 'nothing'}):",
            json.dumps(
                {"header": result.opened["header"], "report": result.opened["report"]},
                indent=2,
                ensure_ascii=False,
            ),
        ]
    return "\n".join(lines)
