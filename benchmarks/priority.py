"""Urgent alerts under a bulk import: publish → stored in a partner's inbox, with the idle floor.

What is measured (one embedded nats-server with JetStream on file storage, and as separate
processes ``palermo broker run`` and ``palermo node run`` for two partners, ESP-GC and GRC-HCG):

- **idle floor**: urgent alerts (MLT-AFM → the two partners, priority urgent) published one at a
  time with nothing else queued; latency = the partner's signed receipt seen on
  ``plm.rcpt.MLT-AFM.>`` − publish time. A node publishes the receipt right after storing the
  report in its inbox and before acking, so this is publish → stored (+ one publish).
- **bulk without urgent traffic**: N routine 2 KB reports from ITA-GDF to 5 recipients published
  as fast as possible; the three recipients without a running node keep their copies in PLM_DLV.
  Throughput = N / (first publish → the last report stored by both partners).
- **bulk with urgent traffic**: the same import again, and while it drains urgent alerts are
  published at a fixed pace (by default ``--urgent`` alerts over the time the import took
  without them, at most one every 25 ms: a light load next to the import); the drain is
  repeated until at least ``--urgent`` alerts were published under bulk, so that p99 is a
  percentile and not the maximum. Reports each alert's publish → stored latency (one sample per
  partner copy) and the bulk throughput.

Target (issue 19): ``urgent_p99_ms_under_bulk`` ≤ 2 × ``urgent_p99_ms_idle`` + 20 ms, and
``bulk_envelopes_per_s`` within 10% of ``bulk_envelopes_per_s_no_urgent``.

Usage: ``python benchmarks/priority.py [--quick] [--json] [--markdown]``. The broker and node
processes run the code of this checkout (``PYTHONPATH``), so the same script measures another
worktree's commit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker.streams import StreamLimits, ensure_streams  # noqa: E402
from node.reports import seal_report  # noqa: E402
from palermo.devfed import DevFederation  # noqa: E402
from palermo.natsserver import NatsServer  # noqa: E402
from protocol.directory import Directory  # noqa: E402
from protocol.transport import publish_subject  # noqa: E402
from schemas import EnvelopeHeader, Priority  # noqa: E402
from schemas.export import parse_report  # noqa: E402

BULK_FROM = "ITA-GDF"
URGENT_FROM = "MLT-AFM"
PARTNERS = ["ESP-GC", "GRC-HCG"]  # the two running nodes
RECIPIENTS = ["ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM", "TUR-CG"]
REPORT = parse_report(
    next((ROOT / "schemas" / "examples").glob("01-*.json")).read_text()
)  # a boat departure (about 2 KB sealed)
WAIT_S = 600.0


def _seal(fed: DevFederation, originator: str, recipients: list[str], priority: Priority,
          n: int) -> list[tuple[EnvelopeHeader, bytes]]:  # fmt: skip
    """``n`` copies of the example departure report, each sealed as its own envelope."""
    report = REPORT.model_copy(update={"originator": originator, "priority": priority})
    trust, policy = fed.trust_store(), fed.policy_store()
    out = []
    for _ in range(n):
        sealed = seal_report(report, fed.agencies[originator].signing, recipients, trust, policy,
                             datetime.now(UTC))  # fmt: skip
        if sealed.recipients != sorted(recipients):
            raise SystemExit(f"policy refused some of {recipients}: {sealed.decisions}")
        out.append((sealed.header, sealed.data))
    return out


def _alerts(fed: DevFederation, n: int) -> Iterator[tuple[EnvelopeHeader, bytes]]:
    """``n`` urgent alerts sealed in advance, then more as they are needed."""
    yield from _seal(fed, URGENT_FROM, PARTNERS, Priority.URGENT, n)
    while True:
        yield from _seal(fed, URGENT_FROM, PARTNERS, Priority.URGENT, 1)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Receipts:
    """Every partner receipt seen on plm.rcpt.>: (envelope, recipient) → arrival time."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[str, str], float] = {}
        self.refused: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def on_msg(self, msg: Any) -> None:
        document = json.loads(msg.data)["document"]
        if document.get("status") != "delivered":
            self.refused.append(document)
        self.arrived.setdefault((document["envelope"], document["recipient"]), time.perf_counter())
        self.changed.set()

    async def until(self, ids: list[str], within: float = WAIT_S) -> None:
        wanted = [(i, p) for i in ids for p in PARTNERS]
        deadline = time.perf_counter() + within
        while not all(w in self.arrived for w in wanted):
            if self.refused:
                raise SystemExit(f"a partner refused a delivery: {self.refused[0]}")
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                missing = sum(w not in self.arrived for w in wanted)
                raise TimeoutError(f"{missing} of {len(wanted)} copies not stored in {within} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))


class Copies:
    """When the broker published each urgent alert's copy for a partner (a plain subscription
    on the copies' subjects sees them as they are stored in PLM_DLV): (envelope, recipient) →
    time. Splits an alert's latency into the broker's hop and the node's."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}

    async def on_msg(self, msg: Any) -> None:
        envelope, _, recipient = (msg.headers or {}).get("Nats-Msg-Id", "").partition(".")
        self.seen.setdefault((envelope, recipient), time.perf_counter())


async def _publish_all(js: Any, items: list[tuple[EnvelopeHeader, bytes]]) -> None:
    pending = []
    for header, data in items:
        pending.append(await js.publish_async(publish_subject(header), data,
                                              headers={"Nats-Msg-Id": header.id}))  # fmt: skip
        if len(pending) >= 512:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def _urgent(js: Any, receipts: Receipts, alerts: Iterator[tuple[EnvelopeHeader, bytes]],
                  sent: dict[str, float], stop: asyncio.Event, pace_s: float) -> None:  # fmt: skip
    """Publish one alert every ``pace_s`` until ``stop``; their send times into ``sent``."""
    start = time.perf_counter()
    i = 0
    while not stop.is_set():
        delay = start + i * pace_s - time.perf_counter()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                break
        header, data = next(alerts)
        sent[header.id] = time.perf_counter()
        await js.publish(publish_subject(header), data, headers={"Nats-Msg-Id": header.id})
        i += 1


def _latencies(receipts: Receipts, sent: dict[str, float]) -> list[float]:
    return [(receipts.arrived[(i, p)] - t) * 1000 for i, t in sent.items() for p in PARTNERS]


def _hops(receipts: Receipts, copies: Copies, sent: dict[str, float],
          phases: list[tuple[float, float, float]]) -> dict[str, Any]:  # fmt: skip
    """Where the urgent alerts' time under bulk went: publish → the broker's copy published
    (the broker's hop, with nats-server's two stores), copy → receipt (the node's hop), each
    p50/p99; and the slowest 1% of copies one by one, with whether the bulk import was still
    being published when the alert was (then it queued behind it in PLM_PUB's ingest)."""
    broker, node, rows = [], [], []
    for i, t in sent.items():
        for p in PARTNERS:
            copied, stored = copies.seen.get((i, p)), receipts.arrived[(i, p)]
            if copied is None:
                continue
            broker.append((copied - t) * 1000)
            node.append((stored - copied) * 1000)
            publishing = any(start <= t < published for start, published, _ in phases)
            rows.append(((stored - t) * 1000, (copied - t) * 1000, (stored - copied) * 1000,
                         publishing))  # fmt: skip
    rows.sort(reverse=True)
    slowest = rows[: max(1, len(rows) // 100)]
    if not broker:
        return {}
    return {
        "urgent_broker_hop_ms_p50": round(_pct(broker, 50), 1),
        "urgent_broker_hop_ms_p99": round(_pct(broker, 99), 1),
        "urgent_node_hop_ms_p50": round(_pct(node, 50), 1),
        "urgent_node_hop_ms_p99": round(_pct(node, 99), 1),
        "urgent_sent_while_bulk_published": sum(r[3] for r in rows),
        "urgent_slowest_1pct": [
            {
                "total_ms": round(a, 1),
                "broker_ms": round(b, 1),
                "node_ms": round(c, 1),
                "while_bulk_published": d,
            }
            for a, b, c, d in slowest
        ],
    }


async def _drain(js: Any, receipts: Receipts, bulk: list[tuple[EnvelopeHeader, bytes]],
                 alerts: Iterator[tuple[EnvelopeHeader, bytes]] | None,
                 sent: dict[str, float], pace_s: float,
                 phases: list[tuple[float, float, float]]) -> float:  # fmt: skip
    """One bulk import (and urgent alerts meanwhile); its envelopes/s to both partners.
    ``phases`` gets (start, bulk published, bulk stored)."""
    stop = asyncio.Event()
    start = time.perf_counter()
    urgent = None
    if alerts is not None:
        urgent = asyncio.create_task(_urgent(js, receipts, alerts, sent, stop, pace_s))
    await _publish_all(js, bulk)
    published = time.perf_counter()
    await receipts.until([h.id for h, _ in bulk])
    elapsed = time.perf_counter() - start
    phases.append((start, published, start + elapsed))
    stop.set()
    if urgent is not None:
        await urgent
    await receipts.until(list(sent))
    return len(bulk) / elapsed


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "palermo"), *args],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        )


async def run(n: int, urgent_n: int, idle_n: int, pace_s: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="plm-bench-prio-"))
    procs: list[subprocess.Popen[bytes]] = []
    async with NatsServer(tmp / "nats") as server:
        url = server.client_url
        fed = DevFederation.build(datetime.now(UTC))
        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_streams(js, StreamLimits())
        directory = Directory(js, fed.trust_store(), fed.policy_store())
        for doc in fed.documents():
            await directory.publish(doc)
        receipts = Receipts()
        await nc.subscribe(f"plm.rcpt.{BULK_FROM}.>", cb=receipts.on_msg)
        await nc.subscribe(f"plm.rcpt.{URGENT_FROM}.>", cb=receipts.on_msg)
        copies = Copies()
        for partner in PARTNERS:
            await nc.subscribe(f"plm.dlv.{partner}.{URGENT_FROM}.>", cb=copies.on_msg)
        await nc.flush()
        # Sealed before anything is timed: sealing is the publisher's cost, not the path's.
        alerts_needed = idle_n + 8 + urgent_n * 2
        pool = _alerts(fed, alerts_needed)
        bulks = [_seal(fed, BULK_FROM, RECIPIENTS, Priority.ROUTINE, n) for _ in range(2)]
        try:
            config = fed.broker_config(tmp, url)
            procs.append(_start(["broker", "run", "--config", str(config)], tmp / "broker.log"))
            for partner in PARTNERS:
                node = fed.node_config(tmp / "fed", partner, url)
                procs.append(_start(["node", "run", "--config", str(node)], tmp / f"{partner}.log"))
            # Warm-up: the whole path works (processes started, consumers created).
            warm: dict[str, float] = {}
            for _ in range(8):
                header, data = next(pool)
                warm[header.id] = time.perf_counter()
                await js.publish(publish_subject(header), data, headers={"Nats-Msg-Id": header.id})
            await receipts.until(list(warm), 120)
            # Idle floor: one alert at a time, nothing else queued.
            idle: dict[str, float] = {}
            for _ in range(idle_n):
                header, data = next(pool)
                idle[header.id] = time.perf_counter()
                await js.publish(publish_subject(header), data, headers={"Nats-Msg-Id": header.id})
                await receipts.until([header.id])
            idle_lat = _latencies(receipts, idle)
            no_urgent_tp = await _drain(js, receipts, bulks[0], None, {}, 0, [])
            if pace_s <= 0:
                # About urgent_n alerts over one drain: a light load next to the bulk import, so
                # that the throughput measures the lanes, not the extra work of the alerts.
                pace_s = max(0.025, n / no_urgent_tp / (urgent_n * 1.1))
            under: dict[str, float] = {}
            phases: list[tuple[float, float, float]] = []
            rates = []
            rounds = 0
            while len(under) < urgent_n:
                bulk = (
                    bulks[1]
                    if rounds == 0
                    else _seal(fed, BULK_FROM, RECIPIENTS, Priority.ROUTINE, n)
                )
                rates.append(await _drain(js, receipts, bulk, pool, under, pace_s, phases))
                rounds += 1
            bulk_lat = _latencies(receipts, under)
            hops = _hops(receipts, copies, under, phases)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            await nc.close()
    u50, u99 = _pct(bulk_lat, 50), _pct(bulk_lat, 99)
    i50, i99 = _pct(idle_lat, 50), _pct(idle_lat, 99)
    bulk_tp = rates[0]
    return {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        },
        "bulk_envelopes": n,
        "bulk_recipients": len(RECIPIENTS),
        "urgent_alerts_under_bulk": len(under),
        "urgent_samples_under_bulk": len(bulk_lat),
        "bulk_rounds_with_urgent": rounds,
        "urgent_pace_ms": pace_s * 1000,
        "urgent_p50_ms_under_bulk": round(u50, 1),
        "urgent_p99_ms_under_bulk": round(u99, 1),
        "urgent_max_ms_under_bulk": round(max(bulk_lat), 1),
        "urgent_p50_ms_idle": round(i50, 1),
        "urgent_p99_ms_idle": round(i99, 1),
        "bulk_envelopes_per_s": round(bulk_tp, 1),
        "bulk_envelopes_per_s_all_rounds": [round(r, 1) for r in rates],
        "bulk_envelopes_per_s_no_urgent": round(no_urgent_tp, 1),
        **hops,
        "target_urgent_p99_ms": round(2 * i99 + 20, 1),
        "urgent_target_met": u99 <= 2 * i99 + 20,
        "bulk_target_met": bulk_tp >= 0.9 * no_urgent_tp,
    }


def markdown(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| measure | under bulk | floor (same run) |",
            "| --- | --- | --- |",
            f"| urgent publish → stored, p50 | {r['urgent_p50_ms_under_bulk']:,} ms "
            f"| {r['urgent_p50_ms_idle']:,} ms idle |",
            f"| urgent publish → stored, p99 | {r['urgent_p99_ms_under_bulk']:,} ms "
            f"| {r['urgent_p99_ms_idle']:,} ms idle (target ≤ {r['target_urgent_p99_ms']:,} ms) |",
            f"| bulk import ({r['bulk_envelopes']:,} × {r['bulk_recipients']} recipients) "
            f"| {r['bulk_envelopes_per_s']:,} envelopes/s with urgent traffic "
            f"| {r['bulk_envelopes_per_s_no_urgent']:,} envelopes/s without |",
            f"| urgent alerts under bulk | {r['urgent_alerts_under_bulk']} "
            f"({r['urgent_samples_under_bulk']} stored copies, one every "
            f"{r['urgent_pace_ms']:.0f} ms, {r['bulk_rounds_with_urgent']} drain(s)) | |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000-envelope imports")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--urgent", type=int, default=200, help="alerts published under bulk")
    parser.add_argument(
        "--pace-ms", type=float, default=0.0, help="one alert every ... ms (0: --urgent per drain)"
    )
    args = parser.parse_args()
    n, idle_n = (2000, 100) if args.quick else (10_000, 200)
    result = asyncio.run(run(n, args.urgent, idle_n, args.pace_ms / 1000))
    if args.markdown or not args.json:
        print(markdown(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
