"""``palermo broker run`` as a process: health, readiness, metrics, SIGTERM, and the audit CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import nats

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer, free_port
from protocol.trust import canonical_json
from tests.harness import (
    PALERMO,
    envelope,
    http_get,
    publish,
    read_all,
    start_broker_process,
    stop_process,
    stream_count,
    wait_for,
    write_broker_config,
)


async def test_service_health_metrics_audit_and_sigterm(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """A running broker is healthy and ready, counts its work, stops cleanly on SIGTERM with a
    signed checkpoint, and `palermo audit verify` accepts its chain but names a forged entry."""
    port = free_port()
    config = write_broker_config(tmp_path, fed, nats_server.client_url, http_port=port)
    proc = start_broker_process(config, tmp_path / "broker.log")
    base = f"http://127.0.0.1:{port}"

    async def ready() -> bool:
        return (await asyncio.to_thread(http_get, base + "/readyz"))[0] == 200

    await wait_for(ready, within=30)
    assert 200 == (await asyncio.to_thread(http_get, base + "/healthz"))[0]
    nc = await nats.connect(nats_server.client_url)
    await publish(nc, [envelope(fed) for _ in range(25)])

    async def drained() -> bool:
        return await stream_count(nc, "PLM_PUB") == 0

    await wait_for(drained, within=30)
    _, metrics = await asyncio.to_thread(http_get, base + "/metrics")
    assert "palermo_envelopes_verified_total 25.0" in metrics
    assert 'palermo_denied_total{reason="not-in-rel-to"} 25.0' in metrics
    assert 0 == stop_process(proc, signal.SIGTERM)
    log = (tmp_path / "broker.log").read_text()
    assert "broker stopped" in log

    verify = [PALERMO, "audit", "verify", "--broker-key", str(tmp_path / "fed" / "broker.pub.json"),
              "--nats", nats_server.client_url, "--json"]  # fmt: skip
    good = subprocess.run(verify, capture_output=True, text=True, timeout=60, check=False)
    assert 0 == good.returncode, good.stdout + good.stderr
    report = json.loads(good.stdout)
    assert (True, 0) == (report["ok"], report["chains"][0]["unsigned_tail"])

    # An insider appends a forged entry to the chain: the CLI names it.
    entries = [json.loads(m.data) for m in await read_all(nc, "PLM_AUDIT")]
    last = entries[-1]
    forged = {**last, "seq": last["seq"] + 1, "prev": "f" * 64, "type": "decisions", "records": []}
    await nc.jetstream().publish(f"plm.audit.{last['chain']}", canonical_json(forged))
    bad = subprocess.run(verify, capture_output=True, text=True, timeout=60, check=False)
    await nc.close()
    assert 1 == bad.returncode
    broken = json.loads(bad.stdout)["chains"][0]
    assert (False, last["seq"] + 1) == (broken["ok"], broken["broken_seq"])


async def test_audit_trail_cli_lists_receivers(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """`palermo audit trail ID` lists each recipient's decision for that report."""
    config = write_broker_config(tmp_path, fed, nats_server.client_url)
    proc = start_broker_process(config, tmp_path / "broker.log")
    nc = await nats.connect(nats_server.client_url)
    header, data = envelope(fed)
    await publish(nc, [(header, data)])

    async def delivered() -> bool:
        return await stream_count(nc, "PLM_DLV") == 4

    await wait_for(delivered, within=30)
    assert 0 == stop_process(proc)
    await nc.close()
    done = subprocess.run(
        [PALERMO, "audit", "trail", header.id, "--nats", nats_server.client_url, "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    rows = json.loads(done.stdout)
    assert {("AUS-ABF", "deny"), ("ESP-GC", "allow"), ("GRC-HCG", "allow"), ("LBY-DCIM", "allow"),
            ("MLT-AFM", "allow")} == {(r["recipient"], r["decision"]) for r in rows}  # fmt: skip
