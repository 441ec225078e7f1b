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
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from broker.service import Broker, BrokerOptions
from broker.streams import StreamLimits, ensure_streams
from schemas import Report
from schemas.errors import InputError
from schemas.export import parse_report

from .devfed import DevFederation
from .directory import Directory
from .envelope import open_envelope
from .natsserver import NatsServer
from .reports import open_report, seal_report
from .transport import publish_subject

__all__ = ["DemoResult", "run_demo"]

EXAMPLES = Path(__file__).resolve().parent.parent / "schemas" / "examples"


@dataclass
class DemoResult:
    agencies: list[str]
    reports: list[dict[str, Any]] = field(default_factory=list)
    opened: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"agencies": self.agencies, "reports": self.reports}


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
    base = state_dir or Path(tempfile.mkdtemp(prefix="palermo-demo-"))
    now = datetime.now(UTC)
    fed = DevFederation.build(now)
    result = DemoResult(agencies=sorted(fed.agencies))
    async with NatsServer(base / "nats") as server:
        nc = await nats.connect(server.client_url, name="palermo-demo")
        js = nc.jetstream()
        await ensure_streams(js, StreamLimits())
        trust, policy = fed.trust_store(), fed.policy_store()
        directory = Directory(js, trust, policy)
        for doc in fed.documents():
            await directory.publish(doc)
        broker = Broker(nc, trust, policy, fed.broker_key, BrokerOptions(fetch_timeout_s=0.2))
        task = asyncio.create_task(broker.run())
        sealed = []
        for report in load_examples():
            agency = fed.agencies[report.originator]
            candidates = interested(fed, report)
            row: dict[str, Any] = {
                "originator": report.originator,
                "title": report.title,
                "route": report.route.value,
                "category": report.category.value,
                "handling": report.handling.model_dump(mode="json", exclude_defaults=True),
                "deliveries": {},
            }
            try:
                s = seal_report(report, agency.signing, candidates, trust, policy, now)
            except InputError as exc:
                # Nobody interested or nobody allowed: the originator is told, nothing is sent.
                row["id"] = None
                row["not_sent"] = exc.reason
                row["deliveries"] = {
                    a: {"status": "not-interested", "reasons": []}
                    for a in result.agencies
                    if a != report.originator
                }
                result.reports.append(row)
                continue
            row["id"] = s.header.id
            row["contains_personal_data"] = s.header.contains_personal_data
            for a in result.agencies:
                if a == report.originator:
                    continue
                if a not in candidates:
                    row["deliveries"][a] = {"status": "not-interested", "reasons": []}
                elif not s.decisions[a].allowed:
                    row["deliveries"][a] = {
                        "status": "denied",
                        "reasons": [r.to_dict() for r in s.decisions[a].reasons],
                    }
            await js.publish(
                publish_subject(s.header), s.data, headers={"Nats-Msg-Id": s.header.id}
            )
            sealed.append((s, row))
            result.reports.append(row)
        while broker.processed < len(sealed):  # noqa: ASYNC110 - polling a counter we own
            await asyncio.sleep(0.02)
        broker.stop()
        await task
        await _read_inboxes(nc, fed, result, now)
        await nc.close()
    return result


async def _read_inboxes(nc: Any, fed: DevFederation, result: DemoResult, now: datetime) -> None:
    """Each partner verifies and opens what the broker delivered to it."""
    js = nc.jetstream()
    by_id = {row["id"]: row for row in result.reports}
    signers = fed.trust_store()
    for agency in result.agencies:
        sub = await js.pull_subscribe(
            f"plm.dlv.{agency}.>",
            stream="PLM_DLV",
            config=ConsumerConfig(ack_policy=AckPolicy.NONE),
        )
        try:
            msgs = await sub.fetch(100, timeout=0.5)
        except (nats.errors.TimeoutError, TimeoutError):
            msgs = []
        await sub.unsubscribe()
        for msg in msgs:
            opened = open_envelope(msg.data, [fed.agencies[agency].encryption], signers, now=now)
            report = open_report(opened)
            row = by_id[opened.header.id]
            row["deliveries"][agency] = {
                "status": "delivered",
                "reasons": [],
                "withheld_sections": list(opened.withheld),
            }
            if not result.opened and opened.sections:
                result.opened = {
                    "agency": agency,
                    "header": opened.header.model_dump(mode="json", by_alias=True),
                    "report": report.to_wire(),
                    "withheld": list(opened.withheld),
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


async def run_dev(
    state_dir: Path,
    ready: asyncio.Event | None = None,
    announce: Callable[[str], object] = lambda _: None,
) -> None:
    """``palermo dev up``: the example federation on an embedded server until cancelled.

    Writes every agency's keys and a ``<AGENCY>.node.toml`` under ``state_dir/fed`` so a person
    can run ``palermo node run``, ``palermo publish`` and ``palermo inbox`` from other terminals.
    """
    import shutil

    if (state_dir / "fed").exists():
        shutil.rmtree(state_dir / "fed")  # a fresh federation each time: keys are dev keys
    fed = DevFederation.build(datetime.now(UTC))
    async with NatsServer(state_dir / "nats") as server:
        fed.write(state_dir / "fed")
        configs = {
            a: fed.node_config(state_dir / "fed", a, server.client_url) for a in fed.agencies
        }
        nc = await nats.connect(server.client_url, name="palermo-dev")
        js = nc.jetstream()
        await ensure_streams(js, StreamLimits())
        trust, policy = fed.trust_store(), fed.policy_store()
        directory = Directory(js, trust, policy)
        for doc in fed.documents():
            await directory.publish(doc)
        broker = Broker(nc, trust, policy, fed.broker_key, BrokerOptions())
        example = EXAMPLES / "01-routes-central-med-departure.json"
        for line in (
            f"NATS: {server.client_url}  (JetStream state in {state_dir / 'nats'})",
            f"Broker running. Node configs: {state_dir / 'fed'}/<AGENCY>.node.toml",
            "Try, in other terminals:",
            f"  palermo node run --config {configs['MLT-AFM']} --log-format console",
            f"  palermo publish {example} --config {configs['ITA-GDF']}",
            f"  palermo inbox list --config {configs['MLT-AFM']}",
            "Ctrl-C stops everything.",
        ):
            announce(line)
        if ready is not None:
            ready.set()
        # Stop through the broker, not by cancelling it: it then finishes its batch, writes a
        # final audit checkpoint, and the server is stopped on the way out.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, broker.stop)
        try:
            await broker.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await nc.close()
