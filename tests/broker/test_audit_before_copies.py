"""Audit before every copy: whatever stops the broker between deciding and acking (its audit
stream refusing writes, a SIGKILL at a chosen point), every copy in PLM_DLV has the audit entry
that allowed it, and `palermo audit verify` passes (issue 12, "Reliability in the same pass").

The decision is then changed before the broker restarts (ITA-GDF's standing policy starts to
deny MLT-AFM), so a copy delivered before the crash cannot borrow the retry's entry."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import msgpack
import nats
import pytest
from nats.aio.client import Client

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from tests.harness import (
    envelope,
    palermo,
    publish,
    publish_document,
    read_all,
    standing_policy_denying,
    start_broker_process,
    stop_process,
    stream_count,
    wait_for,
    write_broker_config,
)

RECIPIENTS = ("ESP-GC", "GRC-HCG", "MLT-AFM")
# The exit status of the test-only crash point (broker.service.CRASH_EXIT_CODE).
CRASHED = 86


def _sealed(fed: DevFederation) -> list[tuple[Any, bytes]]:
    return [envelope(fed, recipients=RECIPIENTS) for _ in range(3)]


async def _attempts(nc: Client) -> int:
    """Deliveries of PLM_PUB messages to the broker so far, redeliveries included."""
    try:
        info = await nc.jetstream().consumer_info("PLM_PUB", "palermo-broker")
    except nats.js.errors.NotFoundError:
        return 0
    return int(info.delivered.consumer_seq)


async def _restart_after_policy_change(
    nats_server: NatsServer, fed: DevFederation, config: Path, log: Path, nc: Client
) -> None:
    """ITA-GDF denies MLT-AFM from now on; a broker without fault runs until PLM_PUB is empty."""
    url = nats_server.client_url
    await publish_document(url, fed, standing_policy_denying(fed, "ITA-GDF", "MLT-AFM"))
    broker = start_broker_process(config, log)

    async def drained() -> bool:
        return await stream_count(nc, "PLM_PUB") == 0

    await wait_for(drained, within=60)
    assert 0 == stop_process(broker)


async def _copies_and_audit(
    nats_server: NatsServer, tmp_path: Path, nc: Client
) -> tuple[set[str], list[str], int]:
    """(every copy's Nats-Msg-Id, copies with no allowing audit entry, audit verify's status)."""
    copies = {m.headers["Nats-Msg-Id"] for m in await read_all(nc, "PLM_DLV")}
    allowed = {
        f"{record['envelope']}.{decision['recipient']}"
        for entry in (json.loads(m.data) for m in await read_all(nc, "PLM_AUDIT"))
        for record in entry.get("records", [])
        for decision in record.get("decisions", [])
        if decision["decision"] == "allow"
    }
    verify = await palermo(
        "audit", "verify", "--broker-key", str(tmp_path / "fed" / "broker.pub.json"),
        "--nats", nats_server.client_url,
    )  # fmt: skip
    return copies, sorted(copies - allowed), verify.returncode


async def test_no_copy_without_its_entry_when_audit_writes_fail_and_the_broker_dies(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """PLM_AUDIT refuses every entry while the broker works, the broker is SIGKILLed, MLT-AFM
    becomes denied, the broker restarts: the copies are exactly the ones the audit allows."""
    config = write_broker_config(tmp_path, fed, nats_server.client_url, ack_wait_s=2.0)
    nc = await nats.connect(nats_server.client_url)
    js = nc.jetstream()
    broker = start_broker_process(config, tmp_path / "broker1.log")
    await wait_for(lambda: _attempts_ready(nc), within=30)
    # The operator's mistake (or a full disk): the audit stream takes no entry at all.
    audit = (await js.stream_info("PLM_AUDIT")).config
    audit.max_msg_size = 16
    await js.update_stream(audit)
    items = _sealed(fed)
    await publish(nc, items)

    async def retried() -> bool:
        return await _attempts(nc) >= 2 * len(items)

    await wait_for(retried, within=60)
    stop_process(broker, signal.SIGKILL)
    audit.max_msg_size = -1
    await js.update_stream(audit)
    await _restart_after_policy_change(nats_server, fed, config, tmp_path / "broker2.log", nc)
    copies, unaudited, verified = await _copies_and_audit(nats_server, tmp_path, nc)
    await nc.close()
    expected = {f"{h.id}.{r}" for h, _ in items for r in ("ESP-GC", "GRC-HCG")}
    assert (expected, [], 0) == (copies, unaudited, verified)


async def _attempts_ready(nc: Client) -> bool:
    try:
        await nc.jetstream().consumer_info("PLM_PUB", "palermo-broker")
    except nats.js.errors.NotFoundError:
        return False
    return True


@pytest.mark.parametrize(
    ("point", "recipients"),
    [
        # Dead after its entry was stored, before any copy: the retry decides (and audits)
        # again, under the new policy.
        ("after-audit", ("ESP-GC", "GRC-HCG")),
        # Dead after the copies were stored, before the acks: the copies made under the old
        # policy stand, and the entry written before them allows each of them.
        ("after-deliveries", RECIPIENTS),
    ],
)
async def test_a_broker_killed_before_its_acks_leaves_every_copy_audited(
    nats_server: NatsServer,
    federated_url: str,
    fed: DevFederation,
    tmp_path: Path,
    point: str,
    recipients: tuple[str, ...],
) -> None:
    """The broker process exits at a fault point (as a SIGKILL would stop it), MLT-AFM becomes
    denied, the broker restarts: every copy has its allowing entry and the chains verify."""
    config = write_broker_config(tmp_path, fed, nats_server.client_url, ack_wait_s=2.0)
    nc = await nats.connect(nats_server.client_url)
    items = _sealed(fed)
    await publish(nc, items)
    broker = start_broker_process(
        config, tmp_path / "broker1.log", env={"PALERMO_TEST_BROKER_CRASH_AT": point}
    )
    try:
        status = await asyncio.to_thread(broker.wait, 60)
    except subprocess.TimeoutExpired:
        status = stop_process(broker, signal.SIGKILL)  # the fault point never fired
    await _restart_after_policy_change(nats_server, fed, config, tmp_path / "broker2.log", nc)
    copies, unaudited, verified = await _copies_and_audit(nats_server, tmp_path, nc)
    await nc.close()
    expected = {f"{h.id}.{r}" for h, _ in items for r in recipients}
    assert (CRASHED, expected, [], 0) == (status, copies, unaudited, verified)


async def test_an_envelope_given_up_is_on_record_before_its_dead_letter(
    nats_server: NatsServer,
    federated_url: str,
    fed: DevFederation,
) -> None:
    """PLM_DLV full past max_deliver: each envelope dead-lettered as redelivery_exhausted has an
    audit record saying so, after one 'allow' record per attempt."""
    from broker.service import BrokerOptions
    from tests.harness import running_broker

    nc = await nats.connect(nats_server.client_url)
    js = nc.jetstream()
    dlv = (await js.stream_info("PLM_DLV")).config
    dlv.max_msgs = 1  # room for one copy only
    await js.update_stream(dlv)
    items = [envelope(fed, recipients=["MLT-AFM"]) for _ in range(3)]
    await publish(nc, items)
    options = BrokerOptions(fetch_timeout_s=0.2, max_deliver=2, nak_delay_s=0.1)
    async with running_broker(nats_server.client_url, fed, options):

        async def settled() -> bool:
            return 0 == await stream_count(nc, "PLM_PUB")

        await wait_for(settled, within=30)
    dead = {msgpack.unpackb(m.data)["hdr"]["id"] for m in await read_all(nc, "PLM_DEAD")}
    entries = [json.loads(m.data) for m in await read_all(nc, "PLM_AUDIT")]
    await nc.close()
    trail = [
        (record["envelope"], record.get("error", {}).get("code", "allow"))
        for entry in entries
        for record in entry.get("records", [])
        if record["envelope"] in dead
    ]
    expected = sorted((e, c) for e in dead for c in ("allow", "allow", "redelivery_exhausted"))
    assert (2, expected) == (len(dead), sorted(trail))
