"""What 'palermo status' (Node.delivery_status) believes: broker notices only when the broker's
key signed them on the originator's notice subject; receipts only on their own recipient's
subject; and a co-recipient cannot suppress another recipient's receipt by taking its message id
first.

A real nats-server; MLT-AFM's delivery is written into PLM_DLV and taken by its real node, which
sends its real receipt. The other agencies' messages are published as a member (or anyone on the
network in a dev deployment without permissions) could.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from node.receipts import Receipt
from node.reports import seal_report
from node.service import Node
from palermo.devfed import DevFederation
from protocol.envelope import decode
from protocol.transport import deliver_subject
from protocol.trust import canonical_json, sign_document
from schemas import EnvelopeHeader
from tests.harness import (
    connect_node,
    envelope,
    example,
    palermo,
    publish,
    read_all,
    running_broker,
    wait_for,
)

ITA, MLT, GRC, ESP = "ITA-GDF", "MLT-AFM", "GRC-HCG", "ESP-GC"


@dataclass
class World:
    fed: DevFederation
    ita: Node
    mlt: Node
    stack: AsyncExitStack
    url: str
    tmp: Path


@pytest.fixture
async def w(federated_url: str, fed: DevFederation, tmp_path: Path) -> AsyncIterator[World]:
    """ITA-GDF's node and MLT-AFM's node, live."""
    url = federated_url
    async with AsyncExitStack() as stack:
        ita = await stack.enter_async_context(connect_node(url, fed, ITA, tmp_path))
        mlt = await stack.enter_async_context(connect_node(url, fed, MLT, tmp_path))
        yield World(fed, ita, mlt, stack, url, tmp_path)


def _forged_notice(w: World, envelope_id: str) -> dict[str, Any]:
    """A broker-notice claiming the broker refused MLT-AFM, with a signature of zeros."""
    return {
        "document": {
            "kind": "broker-notice", "broker": "BROKER-1", "kid": w.fed.broker_key.kid,
            "envelope": envelope_id, "originator": ITA, "time": 0,
            "refused": [{"recipient": MLT, "reasons": [{"code": "no-agreement",
                                                         "message": "forged"}]}],
        },
        "signature": {"signer": "BROKER-1", "kid": w.fed.broker_key.kid, "ed25519": "00" * 64},
    }  # fmt: skip


def _report_for(w: World, recipients: list[str]) -> tuple[EnvelopeHeader, bytes]:
    """ITA-GDF's route alert (example 01), sealed by its publishing path."""
    report = example("01")
    trust = w.fed.trust_store()
    sealed = seal_report(report, w.fed.agencies[ITA].signing, recipients, trust,
                         w.fed.policy_store(trust), datetime.now(UTC))  # fmt: skip
    assert recipients == sealed.recipients
    return sealed.header, sealed.data


async def _deliver_to_mlt(w: World, data: bytes) -> str:
    header = EnvelopeHeader.model_validate(decode(data).hdr)
    subject = deliver_subject(MLT, header)
    await w.mlt.js.publish(subject, data, headers={"Nats-Msg-Id": header.id})
    sub = await w.mlt.js.pull_subscribe(subject, durable=f"t-{header.id}", stream="PLM_DLV")
    [msg] = await sub.fetch(1, timeout=10)
    outcome = await w.mlt.handle(msg)
    await sub.unsubscribe()
    return outcome


def _receipt(w: World, signer: str, envelope_id: str, recipient: str) -> bytes:
    """A 'delivered' receipt signed by ``signer`` naming ``recipient``."""
    receipt = Receipt(envelope=envelope_id, originator=ITA, recipient=recipient,
                      status="delivered", time=datetime.now(UTC))  # fmt: skip
    return canonical_json(sign_document(receipt, w.fed.agencies[signer].signing, signer))


async def _statuses(node: Node, envelope_id: str) -> dict[str, str]:
    return {a: row["status"] for a, row in (await node.delivery_status(envelope_id)).items()}


async def test_a_squatted_receipt_id_no_longer_suppresses_the_genuine_receipt(w: World) -> None:
    """GRC-HCG, a co-recipient, publishes first under MLT-AFM's old predictable id
    rcpt.<id>.MLT-AFM.delivered: MLT-AFM's own receipt is still stored and shown."""
    header, data = _report_for(w, [GRC, MLT])
    await w.ita.js.publish(
        f"plm.rcpt.{ITA}.receipt.{GRC}", _receipt(w, GRC, header.id, GRC),
        headers={"Nats-Msg-Id": f"rcpt.{header.id}.{MLT}.delivered"},
    )  # fmt: skip
    assert "stored" == await _deliver_to_mlt(w, data)
    assert {GRC: "delivered", MLT: "delivered"} == await _statuses(w.ita, header.id)


async def test_a_receipt_on_another_agencys_subject_is_ignored(w: World) -> None:
    """ESP-GC's signed receipt (recipient ESP-GC) published on GRC-HCG's receipt subject: not
    counted for anyone."""
    header, _ = _report_for(w, [GRC, MLT])
    await w.ita.js.publish(f"plm.rcpt.{ITA}.receipt.{GRC}", _receipt(w, ESP, header.id, ESP))
    assert {} == await _statuses(w.ita, header.id)


@pytest.mark.parametrize("knows_broker_key", [True, False], ids=["broker-key", "no-broker-key"])
async def test_a_forged_broker_notice_is_ignored(w: World, knows_broker_key: bool) -> None:
    """An unsigned broker-notice on ITA-GDF's notice subject claiming the broker refused
    MLT-AFM does not replace MLT-AFM's signed receipt, whether or not ITA-GDF's node was
    configured with the broker's key."""
    header, data = _report_for(w, [GRC, MLT])
    assert "stored" == await _deliver_to_mlt(w, data)
    forged = _forged_notice(w, header.id)
    await w.ita.js.publish(f"plm.rcpt.{ITA}.notice", canonical_json(forged))
    if not knows_broker_key:
        assert {MLT: "delivered"} == await _statuses(w.ita, header.id)
        return
    keys = [w.fed.broker_key.public]
    async with connect_node(w.url, w.fed, ITA, w.tmp / "aware", broker_keys=keys) as aware:
        assert {MLT: "delivered"} == await _statuses(aware, header.id)


async def _refused_by_the_broker(w: World, nc: Client) -> EnvelopeHeader:
    """ITA-GDF's envelope to MLT-AFM and AUS-ABF through the real broker, which refuses AUS-ABF:
    its signed notice is in PLM_RCPT when this returns."""
    async with running_broker(w.url, w.fed):
        header, data = envelope(w.fed, recipients=[MLT, "AUS-ABF"])
        await publish(nc, [(header, data)])

        async def noticed() -> bool:
            rows = await read_all(nc, "PLM_RCPT", f"plm.rcpt.{ITA}.notice")
            return any(header.id in m.data.decode() for m in rows)

        await wait_for(noticed, within=20)
    return header


async def test_a_notice_signed_by_the_broker_is_shown_only_with_the_brokers_key(w: World) -> None:
    """Control: the real broker refuses AUS-ABF; ITA-GDF's node configured with the broker's
    key shows 'denied by broker', one configured without it shows nothing for AUS-ABF."""
    nc = await nats.connect(w.url)
    w.stack.push_async_callback(nc.close)
    header = await _refused_by_the_broker(w, nc)
    assert "AUS-ABF" not in await _statuses(w.ita, header.id)
    keys = [w.fed.broker_key.public]
    async with connect_node(w.url, w.fed, ITA, w.tmp / "aware", broker_keys=keys) as aware:
        assert "denied by broker" == (await _statuses(aware, header.id))["AUS-ABF"]


async def test_palermo_status_shows_the_brokers_refusal_and_ignores_a_forged_one(w: World) -> None:
    """The CLI on a dev node.toml (which names broker.pub.json): the real broker's refusal of
    AUS-ABF is shown; an unsigned notice claiming MLT-AFM was refused is not."""
    w.fed.write(w.tmp / "fed")
    config = w.fed.node_config(w.tmp / "fed", ITA, w.url)
    nc = await nats.connect(w.url)
    w.stack.push_async_callback(nc.close)
    header = await _refused_by_the_broker(w, nc)
    forged = _forged_notice(w, header.id)
    await nc.jetstream().publish(f"plm.rcpt.{ITA}.notice", canonical_json(forged))
    done = await palermo("status", header.id, "--config", str(config), "--json")
    assert 0 == done.returncode, done.stderr
    rows = json.loads(done.stdout)
    assert {"AUS-ABF": "denied by broker"} == {a: r["status"] for a, r in rows.items()}
