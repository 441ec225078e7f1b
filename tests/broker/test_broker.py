"""The broker against a real nats-server: routing, refusals, dead letters, audit, replicas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from broker.audit import verify_entries
from broker.service import Broker, BrokerOptions
from palermo.devfed import DevFederation
from protocol.directory import Directory
from protocol.transport import publish_subject
from protocol.trust import ROOT, RevocationEntry, RevocationList, sign_document
from tests.harness import (
    broker_on,
    envelope,
    follow_directory,
    publish,
    stream_count,
    stream_messages,
    wait_for,
)


@pytest.fixture
async def nc(federated_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(federated_url)
    yield client
    await client.close()


async def start_broker(
    nc: Client, fed: DevFederation, **options: Any
) -> tuple[Broker, asyncio.Task[None], Directory]:
    """An in-process broker that follows the live directory, like the service does."""
    directory = await follow_directory(nc, fed)
    broker = broker_on(nc, directory, fed, BrokerOptions(**options))
    return broker, asyncio.create_task(broker.run()), directory


async def stop_broker(broker: Broker, task: asyncio.Task[None], directory: Directory) -> None:
    broker.stop()
    await task
    await directory.close()


async def test_allowed_recipients_get_a_copy_denied_are_dead_lettered(
    nc: Client, fed: DevFederation
) -> None:
    """AMBER to group:med-coastal: the four coastal partners get it, AUS-ABF is refused."""
    header, data = envelope(fed)
    broker, task, directory = await start_broker(nc, fed)
    await publish(nc, [(header, data)])
    await wait_for(lambda: _processed(broker, 1))
    delivered = sorted(m.subject.split(".")[2] for m in await stream_messages(nc, "PLM_DLV"))
    dead = await stream_messages(nc, "PLM_DEAD")
    notices = await stream_messages(nc, "PLM_RCPT")
    await stop_broker(broker, task, directory)
    assert ["ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM"] == delivered
    assert [("AUS-ABF", "not-in-rel-to")] == [
        (m.headers["Palermo-Recipient"], m.headers["Palermo-Reason-Code"]) for m in dead
    ]
    notice = json.loads(notices[0].data)["document"]
    assert ["AUS-ABF"] == [r["recipient"] for r in notice["refused"]]
    assert all(m.data == data for m in await stream_messages(nc, "PLM_DLV"))


async def _processed(broker: Broker, n: int) -> bool:
    return broker.processed >= n


async def _dead_reason(nc: Client, index: int = 0) -> str:
    dead = await stream_messages(nc, "PLM_DEAD")
    return str(dead[index].headers["Palermo-Reason-Code"])


async def test_tampered_envelope_is_refused(nc: Client, fed: DevFederation) -> None:
    """A flipped byte in the body is refused before delivery with auth_failed."""
    header, data = envelope(fed)
    tampered = data[:200] + bytes([data[200] ^ 1]) + data[201:]
    broker, task, directory = await start_broker(nc, fed)
    await publish(nc, [(header, tampered)])
    await wait_for(lambda: _processed(broker, 1))
    assert 0 == await stream_count(nc, "PLM_DLV")
    reason = await _dead_reason(nc)
    await stop_broker(broker, task, directory)
    assert reason in {"auth_failed", "non_canonical", "malformed", "header_invalid"}


async def test_signature_tamper_is_auth_failure(nc: Client, fed: DevFederation) -> None:
    """A flipped signature bit is refused with auth_failed."""
    header, data = envelope(fed)
    broker, task, directory = await start_broker(nc, fed)
    await publish(nc, [(header, data[:-1] + bytes([data[-1] ^ 1]))])
    await wait_for(lambda: _processed(broker, 1))
    reason = await _dead_reason(nc)
    await stop_broker(broker, task, directory)
    assert "auth_failed" == reason


async def test_replay_with_a_new_message_id_is_refused(nc: Client, fed: DevFederation) -> None:
    """The same envelope published again under another Nats-Msg-Id is dead-lettered as replayed."""
    header, data = envelope(fed)
    broker, task, directory = await start_broker(nc, fed)
    await publish(nc, [(header, data)])
    await wait_for(lambda: _processed(broker, 1))
    await nc.jetstream().publish(publish_subject(header), data, headers={"Nats-Msg-Id": "other"})
    await wait_for(lambda: _processed(broker, 2))
    codes = [m.headers["Palermo-Reason-Code"] for m in await stream_messages(nc, "PLM_DEAD")]
    delivered = await stream_count(nc, "PLM_DLV")
    await stop_broker(broker, task, directory)
    assert ["not-in-rel-to", "replayed"] == codes
    assert 4 == delivered


async def test_unknown_agency_is_refused(nc: Client, fed: DevFederation) -> None:
    """An agency that is not a member (no certificate) cannot publish."""
    outsider = DevFederation.build(datetime.now(UTC))  # same ids, other keys: not ours
    header, data = envelope(outsider)
    broker, task, directory = await start_broker(nc, fed)
    await publish(nc, [(header, data)])
    await wait_for(lambda: _processed(broker, 1))
    reason = await _dead_reason(nc)
    await stop_broker(broker, task, directory)
    assert "unknown_signer" == reason


async def test_subject_must_match_the_signed_originator(nc: Client, fed: DevFederation) -> None:
    """An envelope signed by ITA-GDF but published on GRC-HCG's subject is refused."""
    _, data = envelope(fed)
    broker, task, directory = await start_broker(nc, fed)
    await nc.jetstream().publish("plm.pub.GRC-HCG.report.central-med.routes", data)
    await wait_for(lambda: _processed(broker, 1))
    reason = await _dead_reason(nc)
    await stop_broker(broker, task, directory)
    assert "subject_mismatch" == reason


async def test_revocation_applies_within_a_second(nc: Client, fed: DevFederation) -> None:
    """Once the revocation list names ITA-GDF, its next envelope is refused (key_not_valid)."""
    broker, task, directory = await start_broker(nc, fed)
    revoked = RevocationList(
        seq=2,
        issued=datetime.now(UTC),
        entries=[RevocationEntry(agency="ITA-GDF", reason="test", revoked_at=datetime.now(UTC))],
    )
    publisher = Directory(nc.jetstream(), fed.trust_store(), fed.policy_store())
    await publisher.publish(sign_document(revoked, fed.root, ROOT))
    started = asyncio.get_running_loop().time()
    await wait_for(
        lambda: _is_revoked(broker), within=1.0, every=0.01
    )  # the broker's view, not ours
    elapsed = asyncio.get_running_loop().time() - started
    header, data = envelope(fed)
    await publish(nc, [(header, data)])
    await wait_for(lambda: _processed(broker, 1))
    reason = await _dead_reason(nc)
    await stop_broker(broker, task, directory)
    assert "key_not_valid" == reason
    assert elapsed < 1.0


async def _is_revoked(broker: Broker) -> bool:
    return broker.trust.revoked("ITA-GDF", None, datetime.now(UTC)) is not None


async def test_audit_chain_records_every_decision_and_verifies(
    nc: Client, fed: DevFederation
) -> None:
    """Every envelope has an audit entry with each recipient's decision; the chain verifies."""
    items = [envelope(fed) for _ in range(20)]
    broker, task, directory = await start_broker(nc, fed, checkpoint_every=7)
    await publish(nc, items)
    await wait_for(lambda: _processed(broker, 20))
    await stop_broker(broker, task, directory)
    entries = [json.loads(m.data) for m in await stream_messages(nc, "PLM_AUDIT")]
    reports = verify_entries(entries, {fed.broker_key.kid: fed.broker_key.public.key})
    decisions = [r for e in entries if e["type"] == "decisions" for r in e["records"]]
    assert [True] == [r.ok for r in reports]
    assert 0 == reports[0].unsigned_tail
    assert {h.id for h, _ in items} == {e["envelope"] for e in decisions}
    assert all(len(e["decisions"]) == 5 for e in decisions)


async def test_two_replicas_share_the_load_without_duplicates(
    nc: Client, fed: DevFederation
) -> None:
    """Two brokers on the same consumer: every allowed copy exactly once, both did work."""
    items = [envelope(fed) for _ in range(400)]
    a = await start_broker(nc, fed, batch=16)
    b = await start_broker(nc, fed, batch=16)
    await publish(nc, items)
    await wait_for(lambda: _sum_processed(a[0], b[0], 400))
    for broker in (a, b):
        await stop_broker(*broker)
    ids = [m.headers["Nats-Msg-Id"] for m in await stream_messages(nc, "PLM_DLV")]
    assert 4 * 400 == len(ids)
    assert len(ids) == len(set(ids))
    assert a[0].processed > 0
    assert b[0].processed > 0


async def _sum_processed(a: Broker, b: Broker, n: int) -> bool:
    return a.processed + b.processed >= n
