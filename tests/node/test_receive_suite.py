"""The receiving node enforces the federation's suite rule itself (docs/envelope-v1.md
MUST-032): a TLP:RED envelope sealed with suite 1 that a broker let through (a compromised
broker writes it straight into PLM_DLV) is refused before any key is used, with a signed
refusal receipt; the same report sealed with suite 2 is stored.

A real nats-server and a real node (MLT-AFM) holding an X25519 and a hybrid key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgpack
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from node.service import Node, NodeIdentity
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from policies import SUITE_BELOW_POLICY, Federation
from protocol.envelope import SUITE_MLKEM768_X25519, SUITE_X25519, decode, seal
from protocol.keys import EncryptionKey
from protocol.transport import deliver_subject
from schemas import EnvelopeHeader, Handling, Kind, Priority, Report, new_uuid7, partition
from tests.harness import example, read_all, setup_federation

ME = "MLT-AFM"
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
HYBRID = EncryptionKey.generate(ME, pq=True)


def _federation() -> DevFederation:
    federation = Federation.from_toml((EXAMPLES / "federation.toml").read_text())
    data = federation.model_dump(mode="json")
    data["rules"]["suite_2_for_tlp"] = ["RED"]
    return DevFederation.build(datetime.now(UTC), federation=Federation.model_validate(data))


FED = _federation()


@pytest.fixture
async def node(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Node]:
    """MLT-AFM's node, holding its X25519 key and a hybrid one."""
    await setup_federation(nats_server.client_url, FED)
    a = FED.agencies[ME]
    identity = NodeIdentity(a.signing, [a.encryption, HYBRID])
    async with Node.connect(nats_server.client_url, identity, FED.root.public, tmp_path / ME) as n:
        yield n


def _sealed(report: Report, suite: int) -> bytes:
    """ITA-GDF's report to MLT-AFM, sealed with ``suite`` to MLT-AFM's hybrid key (suite 1:
    its X25519 part, under the hybrid kid, as the spec allows a sender to do)."""
    signer = FED.agencies["ITA-GDF"].signing
    parts = partition(report)
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=signer.kid, created=datetime.now(UTC),
        kind=report.kind, priority=report.priority, route=report.route,
        category=report.category, handling=report.handling, schema_=report.schema_,
        recipients=[ME], sections=parts.sections(),
    )  # fmt: skip
    keys = [HYBRID.public]
    sections = {
        sid: (msgpack.packb(body, use_bin_type=True), keys)
        for sid, body in parts.section_bodies().items()
    }
    main = msgpack.packb(parts.main, use_bin_type=True)
    return seal(header, main, signer, keys, sections, suite=suite)


async def _deliver(node: Node, data: bytes) -> tuple[str, bool, list[tuple[str, str | None]]]:
    """Into PLM_DLV as a broker would, then Node.handle: (outcome, stored, receipts)."""
    header = EnvelopeHeader.model_validate(decode(data).hdr)
    subject = deliver_subject(ME, header)
    await node.js.publish(subject, data, headers={"Nats-Msg-Id": header.id})
    # The three deliveries share a subject: start at the last message, the one just written.
    last = ConsumerConfig(deliver_policy=DeliverPolicy.LAST)
    sub = await node.js.pull_subscribe(
        subject, durable=f"t-{header.id}", stream="PLM_DLV", config=last
    )
    [msg] = await sub.fetch(1, timeout=10)
    outcome = await node.handle(msg)
    await sub.unsubscribe()
    rcpt = f"plm.rcpt.ITA-GDF.receipt.{ME}"
    docs = [json.loads(m.data)["document"] for m in await read_all(node.nc, "PLM_RCPT", rcpt)]
    receipts = [(d["status"], d.get("code")) for d in docs if d["envelope"] == header.id]
    return outcome, node.inbox.seen(header.id), receipts


async def test_red_below_the_required_suite_is_refused_by_the_node(node: Node) -> None:
    red = example("01").model_copy(update={"handling": Handling(tlp="RED", rel_to=[ME])})
    weak = _sealed(red, SUITE_X25519)
    assert (SUITE_BELOW_POLICY, False, [("refused", SUITE_BELOW_POLICY)]) == await _deliver(
        node, weak
    )
    # Controls: the rule is what refused it. RED under suite 2, and AMBER under suite 1, are
    # stored by the same node.
    strong = _sealed(red, SUITE_MLKEM768_X25519)
    assert ("stored", True, [("delivered", None)]) == await _deliver(node, strong)
    amber = _sealed(example("01"), SUITE_X25519)
    assert ("stored", True, [("delivered", None)]) == await _deliver(node, amber)
    # A retraction is exempt (a rule signed after a report went out must not stop its
    # withdrawal): the RED report's retraction under suite 1 purges it.
    report_id = EnvelopeHeader.model_validate(decode(strong).hdr).id
    outcome, _, _ = await _deliver(node, _retraction(report_id, red.handling))
    assert "purged" == outcome
    assert node.inbox.show(report_id)[0].purged_ms is not None


def _retraction(report_id: str, handling: Handling) -> bytes:
    signer = FED.agencies["ITA-GDF"].signing
    report = example("01")
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=signer.kid, created=datetime.now(UTC),
        kind=Kind.RETRACTION, priority=Priority.URGENT, route=report.route,
        category=report.category, handling=handling, schema_=report.schema_, recipients=[ME],
        refs=[report_id],
    )  # fmt: skip
    body = msgpack.packb({"retracts": report_id, "reason": "withdrawn"}, use_bin_type=True)
    return seal(header, body, signer, [HYBRID.public], suite=SUITE_X25519)
