"""Broker throughput and latency, with raw nats-py measured on the same server in the same run.

What is measured (one embedded nats-server with JetStream on file storage, one broker process
started with ``palermo broker run``):

- **throughput**: N envelopes (2 KB report, 5 recipients, all allowed) are sealed and published to
  PLM_PUB before the clock starts; the clock runs from broker start-up having finished (its
  consumer exists) until PLM_PUB is empty and PLM_DLV holds all 5·N copies. The floor: raw
  nats-py publish → subscribe of the same N payloads on the same server (msgs/s).
- **latency at a fixed rate**: envelopes published at R/s (default 1,000/s); a core NATS
  subscriber on ``plm.dlv.<one recipient>.>`` timestamps each arrival; latency = arrival −
  publish time. The floor: the same pacing with raw publish → subscribe on a plain subject.

- **CPU per envelope** (``broker_cpu_us_per_envelope``): the broker process's CPU time (user +
  system, from ``psutil``) over the throughput phase, divided by the envelopes it handled. CPU
  time is steadier than wall time on a shared machine. Its floor (``broker_cpu_floor_us``), in
  this process in the same run: what no broker can skip for one 5-recipient envelope: msgpack
  decode and header schema validation (the envelope benchmark's "+ msgpack, schema" floor), one
  Ed25519 verify of the signed bytes, and six raw nats-py publishes of the same bytes (five
  copies and one replay marker), each envelope's CPU time from ``time.process_time``.

- **delay under a flood**: 50 hostile messages (each ~1 MB of tiny msgpack objects behind a valid
  envelope prefix, on a valid publish subject) are stored in PLM_PUB, then one genuine envelope;
  its delay = arrival on a partner's delivery subject − its publish time (issue 12, item 10: it
  was ~27 s when every hostile message was decoded in full).

Usage: ``python benchmarks/broker.py [--quick] [--json] [--markdown]``. The broker process runs the
code of this checkout (``PYTHONPATH``), so the same script measures an older commit's worktree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import nats
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker.streams import StreamLimits, ensure_streams  # noqa: E402
from palermo.devfed import DevFederation  # noqa: E402
from palermo.natsserver import NatsServer  # noqa: E402
from protocol import crypto  # noqa: E402
from protocol.directory import Directory  # noqa: E402
from protocol.envelope import seal  # noqa: E402
from protocol.envelope._format import canonical_packb, signed_prefix  # noqa: E402
from protocol.envelope._seal import DOMAIN_SIGNATURE  # noqa: E402
from protocol.transport import publish_subject  # noqa: E402
from schemas import EnvelopeHeader, Handling, new_uuid7  # noqa: E402

RECIPIENTS = ["ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM", "TUR-CG"]
BODY = (b"Inflatable boat, about 40 persons, departed Zuwara 02:00 UTC heading north. " * 28)[:2048]


def _seal(fed: DevFederation, n: int) -> list[tuple[EnvelopeHeader, bytes]]:
    ita = fed.agencies["ITA-GDF"]
    keys = [fed.agencies[r].encryption.public for r in RECIPIENTS]
    out = []
    for _ in range(n):
        header = EnvelopeHeader(
            id=new_uuid7(),
            originator="ITA-GDF",
            kid=ita.signing.kid,
            created=datetime.now(UTC),
            kind="report",
            route="central-med",
            category="routes",
            handling=Handling(tlp="GREEN"),
            recipients=RECIPIENTS,
        )
        out.append((header, seal(header, BODY, ita.signing, keys)))
    return out


FLOOD = 50


def _hostile(genuine: bytes) -> bytes:
    """A genuine envelope whose header is replaced by ~1 MB of one-entry maps ({"zz": [[{"a": 0},
    ...]]}, canonical): the most expensive shape to decode per byte (each map is a Python dict,
    walked again by the header checks and re-encoded by the canonical check)."""
    start = len(b"\x87\xa1v\x01\xa5suite\x01\xa3hdr")
    end = start + len(canonical_packb(msgpack.unpackb(genuine)["hdr"]))
    one = msgpack.packb({"a": 0})
    inner = b"\xdc" + (1000).to_bytes(2, "big") + one * 1000
    objects = b"\xdc" + (245).to_bytes(2, "big") + inner * 245
    return genuine[:start] + b"\x81\xa2zz" + objects + genuine[end:]


async def flood_delay(url: str, genuine: tuple[EnvelopeHeader, bytes], listen: str) -> float:
    """Store FLOOD hostile messages, then one genuine envelope; its delivery delay in ms."""
    header, data = genuine
    nc = await nats.connect(url)
    js = nc.jetstream()
    arrived = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        if msg.headers and msg.headers.get("Nats-Msg-Id", "").startswith(header.id):
            arrived.set()

    await nc.subscribe(listen, cb=on_msg)
    await nc.flush()
    subject = publish_subject(header)
    hostile = _hostile(data)
    for i in range(FLOOD):
        await js.publish(subject, hostile, headers={"Nats-Msg-Id": f"flood-{header.id}-{i}"})
    start = time.perf_counter()
    await js.publish(subject, data, headers={"Nats-Msg-Id": header.id})
    await asyncio.wait_for(arrived.wait(), 300)
    delay = (time.perf_counter() - start) * 1000
    await nc.close()
    return delay


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _count(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


async def raw_throughput(url: str, n: int) -> float:
    """Raw publish → subscribe msgs/s for the same payload size on the same server."""
    payload = b"x" * 3400
    sub_nc, pub_nc = await nats.connect(url), await nats.connect(url)
    done = asyncio.Event()
    got = 0

    async def on_msg(_: Any) -> None:
        nonlocal got
        got += 1
        if got == n:
            done.set()

    await sub_nc.subscribe("raw.tp", cb=on_msg)
    await sub_nc.flush()
    start = time.perf_counter()
    for i in range(n):
        await pub_nc.publish("raw.tp", payload)
        if i % 500 == 0:
            await pub_nc.flush()
    await pub_nc.flush()
    await asyncio.wait_for(done.wait(), 60)
    elapsed = time.perf_counter() - start
    await sub_nc.close()
    await pub_nc.close()
    return n / elapsed


async def cpu_floor(url: str, sealed: list[tuple[EnvelopeHeader, bytes]], public: Any) -> float:
    """CPU µs per envelope of what no broker can skip (see the module docstring), this process.

    Publishes go to a subject no stream or subscriber listens on: the server's work is not
    counted on either side (the broker's CPU time is its own process's too)."""
    nc = await nats.connect(url)
    await nc.flush()
    start = time.process_time()
    for i, (_, data) in enumerate(sealed):
        doc = msgpack.unpackb(data)
        EnvelopeHeader.model_validate(doc["hdr"])
        crypto.verify(public, doc["sig"], DOMAIN_SIGNATURE, signed_prefix(data))
        for _ in range(6):
            await nc.publish("raw.floor", data)
        if i % 100 == 0:
            await nc.flush()
    await nc.flush()
    elapsed = time.process_time() - start
    await nc.close()
    return elapsed / len(sealed) * 1e6


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def paced_latency(
    url: str, items: list[tuple[str, bytes, str]], rate: float, listen: str, key: Any
) -> list[float]:
    """Publish ``items`` (subject, payload, id) at ``rate``/s; return latencies in ms."""
    sub_nc, pub_nc = await nats.connect(url), await nats.connect(url)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        ident = key(msg)
        if ident in sent:
            latencies.append((time.perf_counter() - sent.pop(ident)) * 1000)
            if len(latencies) == len(items):
                done.set()

    await sub_nc.subscribe(listen, cb=on_msg)
    await sub_nc.flush()
    start = time.perf_counter()
    js = pub_nc.jetstream()
    for i, (subject, payload, ident) in enumerate(items):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[ident] = time.perf_counter()
        if subject.startswith("raw."):
            await pub_nc.publish(subject, payload)
        else:
            await js.publish_async(subject, payload, headers={"Nats-Msg-Id": ident})
    with contextlib.suppress(TimeoutError):  # a lost message shows as fewer samples
        await asyncio.wait_for(done.wait(), 60)
    await sub_nc.close()
    await pub_nc.close()
    return latencies


async def run(n: int, rate: float, latency_n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="plm-bench-"))
    async with NatsServer(tmp / "nats") as server:
        url = server.client_url
        fed = DevFederation.build(datetime.now(UTC))
        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_streams(js, StreamLimits())
        directory = Directory(js, fed.trust_store(), fed.policy_store())
        for doc in fed.documents():
            await directory.publish(doc)
        raw_tp = await raw_throughput(url, n)
        sealed = _seal(fed, n + latency_n + 1)
        backlog, paced, genuine = sealed[:n], sealed[n:-1], sealed[-1]
        futures = [
            await js.publish_async(publish_subject(h), d, headers={"Nats-Msg-Id": h.id})
            for h, d in backlog
        ]
        await asyncio.gather(*futures)
        config = fed.broker_config(tmp, url)
        palermo = Path(sys.executable).parent / "palermo"
        log = (tmp / "broker.log").open("wb")
        proc = subprocess.Popen(
            [str(palermo), "broker", "run", "--config", str(config)],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        # The clock starts once the broker has its consumer: start-up is not throughput.
        while True:
            try:
                await js.consumer_info("PLM_PUB", "palermo-broker")
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.01)
        broker = psutil.Process(proc.pid)
        cpu_start = _cpu_s(broker)
        start = time.perf_counter()
        while await _count(js, "PLM_PUB") > 0 or await _count(js, "PLM_DLV") < 5 * n:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        broker_cpu = _cpu_s(broker) - cpu_start
        floor_us = await cpu_floor(url, backlog, fed.agencies["ITA-GDF"].signing.public.key)
        latencies = await paced_latency(
            url,
            [(publish_subject(h), d, h.id) for h, d in paced],
            rate,
            f"plm.dlv.{RECIPIENTS[0]}.>",
            lambda m: m.headers["Nats-Msg-Id"].rsplit(".", 1)[0],
        )
        raw_lat = await paced_latency(
            url,
            [(f"raw.lat.{i}", b"x" * 3400, f"raw.lat.{i}") for i in range(latency_n)],
            rate,
            "raw.lat.>",
            lambda m: m.subject,
        )
        flood_ms = await flood_delay(url, genuine, f"plm.dlv.{RECIPIENTS[0]}.>")
        proc.terminate()
        proc.wait(30)
        log.close()
        await nc.close()
    p50, p99 = _pct(latencies, 50), _pct(latencies, 99)
    raw_p50, raw_p99 = _pct(raw_lat, 50), _pct(raw_lat, 99)
    return {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        },
        "envelopes": n,
        "recipients": len(RECIPIENTS),
        "envelopes_per_s": round(n / elapsed, 1),
        "deliveries_per_s": round(5 * n / elapsed, 1),
        "raw_msgs_per_s": round(raw_tp, 1),
        "broker_cpu_us_per_envelope": round(broker_cpu / n * 1e6, 1),
        "broker_cpu_floor_us": round(floor_us, 1),
        "broker_cpu_vs_floor": round(broker_cpu / n * 1e6 / floor_us, 2),
        "rate_per_s": rate,
        "latency_samples": len(latencies),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "raw_p50_ms": round(raw_p50, 3),
        "raw_p99_ms": round(raw_p99, 3),
        "p99_added_ms": round(p99 - raw_p99, 3),
        "latency_mean_ms": round(statistics.fmean(latencies), 3),
        "flood_messages": FLOOD,
        "flood_delay_ms": round(flood_ms, 1),
    }


def markdown(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| measure | broker | raw nats-py floor (same server, same run) |",
            "| --- | --- | --- |",
            f"| throughput | {r['envelopes_per_s']:,.0f} envelopes/s "
            f"({r['deliveries_per_s']:,.0f} deliveries/s) | {r['raw_msgs_per_s']:,.0f} msgs/s |",
            f"| p50 latency at {r['rate_per_s']:,.0f}/s | {r['p50_ms']} ms "
            f"| {r['raw_p50_ms']} ms |",
            f"| p99 latency at {r['rate_per_s']:,.0f}/s | {r['p99_ms']} ms "
            f"| {r['raw_p99_ms']} ms |",
            f"| p99 added over the floor | {r['p99_added_ms']} ms | |",
            f"| CPU per envelope (broker process) | {r['broker_cpu_us_per_envelope']:,} µs "
            f"| {r['broker_cpu_floor_us']:,} µs (decode, schema, verify, 6 publishes) |",
            f"| delay of a genuine envelope behind {r['flood_messages']} hostile 1 MB messages "
            f"| {r['flood_delay_ms']:,} ms | |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run well under a minute")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    n, latency_n = (2000, 2000) if args.quick else (10_000, 5000)
    result = asyncio.run(run(n, args.rate, latency_n))
    if args.markdown or not args.json:
        print(markdown(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
