"""The receiving node, the third enforcement point, on what a hostile originator's node (or a
broker replaying a record) can deliver: sections its own decision withholds, a body that says
something other than the signed header, envelopes older than any genuine delivery.

A real nats-server and a real node (MLT-AFM); the deliveries are written straight into PLM_DLV,
as a compromised broker could, so that only the node stands between them and the inbox. Each
refusal stores nothing and sends the originator a signed refusal receipt naming the code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.reports import seal_report
from node.service import Node
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.envelope import decode, seal
from protocol.transport import deliver_subject
from schemas import EnvelopeHeader, Handling, Report, Route, new_uuid7, partition
from schemas.export import parse_report
from tests.harness import connect_node, read_all, setup_federation

ME = "MLT-AFM"
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
FED = DevFederation.build(datetime.now(UTC))
GREEN = Handling(tlp="GREEN")


def _example(name: str, **update: Any) -> Report:
    report = parse_report(next(EXAMPLES.glob(f"{name}*.json")).read_text())
    return report.model_copy(update=update)


def _pack(data: Mapping[str, Any]) -> bytes:
    return msgpack.packb(data, use_bin_type=True)  # type: ignore[no-any-return]


def _sealed(
    header_of: Report,
    *,
    body_of: Report | None = None,
    recipients: Sequence[str] = (ME,),
    created: datetime | None = None,
    whole_body: bool = False,
) -> bytes:
    """Sealed and signed by ``header_of``'s originator the way its node would, except that the
    body may be another report's (``body_of``), or a whole report with no sections at all
    (``whole_body``), and every section is wrapped for every recipient, whatever the policy."""
    body_report = body_of or header_of
    signer = FED.agencies[header_of.originator].signing
    parts = partition(body_report)
    header = EnvelopeHeader(
        id=new_uuid7(), originator=header_of.originator, kid=signer.kid,
        created=created or datetime.now(UTC), kind=header_of.kind, priority=header_of.priority,
        route=header_of.route, category=header_of.category, handling=header_of.handling,
        recipients=list(recipients),
        sections=[] if whole_body else partition(header_of).sections(),
    )  # fmt: skip
    keys = [FED.agencies[a].encryption.public for a in header.recipients]
    if whole_body:
        return seal(header, _pack(body_report.to_wire()), signer, keys)
    sections = {sid: (_pack(b), keys) for sid, b in parts.section_bodies().items()}
    return seal(header, _pack(parts.main), signer, keys, sections)


@pytest.fixture
async def node(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Node]:
    """MLT-AFM's node on a live server holding the dev federation's directory."""
    await setup_federation(nats_server.client_url, FED)
    async with connect_node(nats_server.client_url, FED, ME, tmp_path) as n:
        yield n


async def _deliver(node: Node, data: bytes) -> tuple[str, bool]:
    """Write ``data`` into PLM_DLV for this node and let Node.handle take it: (outcome, stored)."""
    header = EnvelopeHeader.model_validate(decode(data).hdr)
    subject = deliver_subject(node.identity.agency, header)
    await node.js.publish(subject, data, headers={"Nats-Msg-Id": header.id})
    sub = await node.js.pull_subscribe(subject, durable=f"t-{header.id}", stream="PLM_DLV")
    [msg] = await sub.fetch(1, timeout=10)
    outcome = await node.handle(msg)
    await sub.unsubscribe()
    return outcome, node.inbox.seen(header.id)


async def _receipts(node: Node, data: bytes) -> list[tuple[str, str | None]]:
    """(status, code) of every receipt this node sent about the envelope ``data``."""
    header = EnvelopeHeader.model_validate(decode(data).hdr)
    subject = f"plm.rcpt.{header.originator}.receipt.{node.identity.agency}"
    documents = [
        json.loads(m.data)["document"] for m in await read_all(node.nc, "PLM_RCPT", subject)
    ]
    return [(d["status"], d.get("code")) for d in documents if d["envelope"] == header.id]


# --- item 4: sections the node's own decision withholds ------------------------------------


async def test_a_section_withheld_by_policy_but_wrapped_for_the_node_is_refused(
    node: Node,
) -> None:
    """ESP-GC's witness (released to ITA-GDF only) wrapped for MLT-AFM too: refused unopened,
    nothing stored, and ESP-GC gets a signed refusal naming section_withheld."""
    data = _sealed(_example("08"), recipients=["ITA-GDF", ME])
    assert ("section_withheld", False) == await _deliver(node, data)
    assert [("refused", "section_withheld")] == await _receipts(node, data)


async def test_the_same_report_sealed_by_policy_is_stored_without_the_witness(node: Node) -> None:
    """Control: sealed by ESP-GC's publishing path, MLT-AFM stores it with the witness withheld."""
    now = datetime.now(UTC)
    trust = FED.trust_store()
    sealed = seal_report(_example("08"), FED.agencies["ESP-GC"].signing, ["ITA-GDF", ME], trust,
                         FED.policy_store(trust), now)  # fmt: skip
    assert ("stored", True) == await _deliver(node, sealed.data)
    entry, report = node.inbox.show(sealed.header.id)
    assert ["protected-persons"] == list(entry.withheld)
    assert report is not None
    assert [] == [p.ref for p in report.persons if p.role.protected]


# --- item 8: the decrypted body must say what the signed header says --------------------------

BODY_MISMATCHES = {
    # Header: GREEN, no sections. Body: the persons of the interview report, unsealed.
    "persons-in-a-body-whose-header-has-no-sections": (
        _example("07", handling=GREEN), {"whole_body": True},
    ),
    "another-originator-in-the-body": (
        _example("01", handling=GREEN),
        {"body_of": _example("01", handling=GREEN, originator="GRC-HCG")},
    ),
    "other-handling-in-the-body": (
        _example("01", handling=GREEN), {"body_of": _example("01")},
    ),
    "another-route-in-the-body": (
        _example("01", handling=GREEN),
        {"body_of": _example("01", handling=GREEN, route=Route.EASTERN_MED)},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BODY_MISMATCHES))
async def test_a_body_that_disagrees_with_its_signed_header_is_refused(
    node: Node, case: str
) -> None:
    """The header the broker and the policy judged is GREEN with no sections; the body says
    otherwise: refused with body_mismatch, nothing stored, a signed refusal to the originator."""
    header_of, how = BODY_MISMATCHES[case]
    data = _sealed(header_of, **how)
    assert ("body_mismatch", False) == await _deliver(node, data)
    assert [("refused", "body_mismatch")] == await _receipts(node, data)


async def test_a_body_that_agrees_with_its_header_is_stored(node: Node) -> None:
    """Control: the same hand-made sealing with a consistent body is stored."""
    data = _sealed(_example("07", handling=GREEN))
    assert ("stored", True) == await _deliver(node, data)


# --- item 12: the node's maximum age ----------------------------------------------------------


async def test_an_envelope_older_than_any_genuine_delivery_is_refused(node: Node) -> None:
    """Created 40 days ago (over the broker's 7-day age limit plus PLM_DLV's 30 days): refused
    with too_old, not stored, and the originator is told."""
    data = _sealed(_example("01"), created=datetime.now(UTC) - timedelta(days=40))
    assert ("too_old", False) == await _deliver(node, data)
    assert [("refused", "too_old")] == await _receipts(node, data)


async def test_a_backlog_of_a_month_offline_is_still_taken(node: Node) -> None:
    """Control: an envelope created 30 days ago (a node back after a long outage) is stored."""
    data = _sealed(_example("01"), created=datetime.now(UTC) - timedelta(days=30))
    assert ("stored", True) == await _deliver(node, data)
