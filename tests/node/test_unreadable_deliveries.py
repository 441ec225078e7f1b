"""Nothing a node takes is dropped silently (issue 15 item 1).

Every delivery a node takes ends stored (and acknowledged), or refused: terminated after a
signed refusal receipt naming the code went to the originator. A property over every kind:
whatever a validly signed envelope of that kind carries (bytes, any JSON, any msgpack), the
node never acknowledges or terminates it without one of those two outcomes, and never raises.

The node here is a real :class:`node.service.Node` on the dev federation's documents; only its
NATS side is replaced: what it publishes (its receipts) is recorded, and each delivery is a
message that records whether it was acknowledged or terminated. The live-stack counterpart,
through a broker to the originator's ``status``, is tests/node/test_unreadable_live.py.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.inbox import Inbox, StorageKey
from node.service import Node, NodeIdentity
from palermo.devfed import DevFederation
from protocol.envelope import seal
from protocol.transport import deliver_subject
from schemas import EnvelopeHeader, Handling, Kind, new_uuid7, partition
from schemas.errors import KindNotPublishable, TransportError
from tests.harness import example

ME, ORIGINATOR = "MLT-AFM", "ITA-GDF"
FED = DevFederation.build(datetime.now(UTC))


@dataclass
class Delivery:
    """A delivery as the node sees it: subject and data, and what the node did with it."""

    subject: str
    data: bytes
    acked: int = 0
    termed: int = 0

    async def ack(self) -> None:
        self.acked += 1

    async def term(self) -> None:
        self.termed += 1

    async def nak(self, delay: float | None = None) -> None:
        raise AssertionError("a delivery that can never be stored must not be retried")


@dataclass
class Sent:
    """What the node published: (subject, signed document) in order."""

    documents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class RecordingNode(Node):
    """The node with its publishing recorded instead of sent."""

    sent: Sent

    async def _publish(self, subject: str, data: bytes, msg_id: str, action: str) -> None:
        self.sent.documents.append((subject, json.loads(data)["document"]))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> RecordingNode:
    state = tmp_path_factory.mktemp("unreadable")
    trust = FED.trust_store()
    directory = SimpleNamespace(js=None, store=trust, policy=FED.policy_store(trust))
    me = FED.agencies[ME]
    inbox = Inbox(state / "inbox.db", StorageKey.load_or_create(state / "storage.key"))
    n = RecordingNode(
        None,  # type: ignore[arg-type]  # never used: _publish is replaced
        NodeIdentity(me.signing, [me.encryption]),
        FED.root.public,
        inbox,
        directory,  # type: ignore[arg-type]
    )
    n.sent = Sent()
    return n


def sealed(kind: Kind, body: bytes, refs: list[str]) -> tuple[EnvelopeHeader, bytes]:
    """``body`` sealed by ITA-GDF for MLT-AFM as an envelope of ``kind``, RED to MLT-AFM (what
    its node's request path writes), with ``refs``."""
    signer = FED.agencies[ORIGINATOR].signing
    header = EnvelopeHeader(
        id=new_uuid7(), originator=ORIGINATOR, kid=signer.kid, created=datetime.now(UTC),
        kind=kind, route="central-med", category="routes",
        handling=Handling(tlp="RED", rel_to=[ME]), recipients=[ME], refs=refs,
    )  # fmt: skip
    return header, seal(header, body, signer, [FED.agencies[ME].encryption.public])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
# What a buggy or hostile originator's node may put in a body: anything.
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
    # Nearly right: the keys the readers look for, with values of any type.
    st.dictionaries(
        st.sampled_from(["text", "subject", "retracts", "reason", "report", "to", "purpose",
                         "originator", "kind"]),
        json_values, max_size=4,
    ).flatmap(lambda d: st.sampled_from([json.dumps(d).encode(), msgpack.packb(d)])),
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(list(Kind)), body=bodies, refs=st.lists(st.just(None), max_size=2))
def test_every_delivery_ends_stored_or_refused_with_a_receipt(
    node: RecordingNode, kind: Kind, body: bytes, refs: list[None]
) -> None:
    header, data = sealed(kind, body, [new_uuid7() for _ in refs])
    delivery = Delivery(deliver_subject(ME, header), data)
    node.sent.documents.clear()
    outcome = asyncio.run(node.handle(delivery))  # type: ignore[arg-type]
    assert delivery.acked + delivery.termed == 1, (outcome, delivery)
    receipts = [d for _, d in node.sent.documents if d.get("kind") == "receipt"]
    if delivery.termed:
        # Refused: the originator got a signed refusal naming the code, about this envelope.
        [refusal] = [r for r in receipts if r["envelope"] == header.id]
        assert (refusal["status"], refusal["recipient"], refusal["originator"]) == (
            "refused",
            ME,
            ORIGINATOR,
        )
        assert refusal["code"] == outcome
        assert refusal["reason"]
    else:
        # Acknowledged only once kept: a thread message (with its delivered receipt), a
        # report, or a release request held for an officer or denied with a signed answer.
        kept = (
            node.inbox.seen(header.id)
            or any(m["id"] == header.id for m in node.inbox.messages(kind.value))
            or any(r["id"] == header.id for r in node.inbox.release_requests())
        )
        assert kept, (outcome, kind, body)


@pytest.mark.parametrize(
    ("kind", "body", "code"),
    [
        (Kind.REQUEST, b"not json", "unreadable_content"),
        (Kind.REQUEST, b'{"question": "no text"}', "unreadable_content"),
        (Kind.RESPONSE, b"[1, 2]", "unreadable_content"),
        (Kind.RETRACTION, b"\xc1", "unreadable_content"),
        (Kind.RELEASE_REQUEST, b'{"report": "x"}', "unreadable_content"),
        (Kind.RECEIPT, b"{}", "kind_not_accepted"),
        (Kind.REPORT, b"\x93\x01\x02", "malformed"),
        (Kind.ALERT, msgpack.packb({"title": 1}), "report_invalid"),
    ],
)
def test_each_unreadable_kind_is_refused_with_its_code(
    node: RecordingNode, kind: Kind, body: bytes, code: str
) -> None:
    refs = [new_uuid7()] if kind in (Kind.RETRACTION, Kind.REQUEST, Kind.RESPONSE) else []
    header, data = sealed(kind, body, refs)
    delivery = Delivery(deliver_subject(ME, header), data)
    node.sent.documents.clear()
    assert code == asyncio.run(node.handle(delivery))  # type: ignore[arg-type]
    assert delivery.termed == 1
    [(subject, receipt)] = node.sent.documents
    assert subject == f"plm.rcpt.{ORIGINATOR}.receipt.{ME}"
    assert (receipt["envelope"], receipt["status"], receipt["code"]) == (header.id, "refused", code)


def test_a_retraction_of_a_report_never_held_is_answered(node: RecordingNode) -> None:
    """Well formed, but this node holds no such report: refused with unknown_reference on the
    retraction's own id, not acknowledged in silence."""
    target = new_uuid7()
    header, data = sealed(Kind.RETRACTION, msgpack.packb({"retracts": target, "reason": "x"}),
                          [target])  # fmt: skip
    delivery = Delivery(deliver_subject(ME, header), data)
    node.sent.documents.clear()
    assert "unknown_reference" == asyncio.run(node.handle(delivery))  # type: ignore[arg-type]
    [(_, receipt)] = node.sent.documents
    assert (receipt["envelope"], receipt["status"]) == (header.id, "refused")
    assert target in receipt["reason"]


def test_a_readable_request_is_stored_and_receipted_before_it_is_acknowledged(
    node: RecordingNode,
) -> None:
    header, data = sealed(Kind.REQUEST, b'{"subject": "information", "text": "how many?"}',
                          [new_uuid7()])  # fmt: skip
    delivery = Delivery(deliver_subject(ME, header), data)
    node.sent.documents.clear()
    assert "request" == asyncio.run(node.handle(delivery))  # type: ignore[arg-type]
    assert (delivery.acked, delivery.termed) == (1, 0)
    [(_, receipt)] = node.sent.documents
    assert (receipt["envelope"], receipt["status"]) == (header.id, "delivered")


@pytest.mark.parametrize(
    "kind", [Kind.REQUEST, Kind.RESPONSE, Kind.RECEIPT, Kind.RELEASE_REQUEST, Kind.RELEASE,
             Kind.RETRACTION],
)  # fmt: skip
def test_publish_refuses_kinds_that_have_their_own_command(node: RecordingNode, kind: Kind) -> None:
    report = example("01").model_copy(update={"kind": kind, "originator": ME})
    with pytest.raises(KindNotPublishable) as caught:
        asyncio.run(node.publish(report, to=[ORIGINATOR]))
    assert caught.value.kind == kind.value
    assert "palermo" in caught.value.command or "none" in caught.value.command


def test_publish_names_the_command_to_use() -> None:
    error = KindNotPublishable("request", "'palermo request --question TEXT ...'")
    assert "use 'palermo request" in error.reason
    assert error.code == "kind_not_publishable"


def test_a_signed_delivery_misrouted_to_this_node_is_refused_with_a_receipt(
    node: RecordingNode,
) -> None:
    """Signed by the originator, but on another route's subject, or not sealed for this node:
    the originator hears it (subject_mismatch, not_a_recipient), not only this node's log."""
    header, data = sealed(Kind.REPORT, b"\x80", [])
    rerouted = Delivery(deliver_subject(ME, header).replace(".central-med.", ".eastern-med."), data)
    node.sent.documents.clear()
    assert "subject_mismatch" == asyncio.run(node.handle(rerouted))  # type: ignore[arg-type]
    [(_, receipt)] = node.sent.documents
    assert (receipt["envelope"], receipt["code"]) == (header.id, "subject_mismatch")
    signer = FED.agencies[ORIGINATOR].signing
    esp_only = {"recipients": ["ESP-GC"], "handling": Handling(tlp="RED", rel_to=["ESP-GC"])}
    other = header.model_copy(update={"id": new_uuid7(), **esp_only})
    misdelivered = Delivery(
        deliver_subject(ME, other),
        seal(other, b"\x80", signer, [FED.agencies["ESP-GC"].encryption.public]),
    )
    node.sent.documents.clear()
    assert "not_a_recipient" == asyncio.run(node.handle(misdelivered))  # type: ignore[arg-type]
    [(_, receipt)] = node.sent.documents
    assert (receipt["envelope"], receipt["code"]) == (other.id, "not_a_recipient")


def test_a_forged_delivery_gets_no_receipt(node: RecordingNode) -> None:
    """Its originator is not known to be genuine: refused and logged, nobody is answered."""
    header, data = sealed(Kind.REPORT, b"\x80", [])
    forged = Delivery(deliver_subject(ME, header), data[:-1] + bytes([data[-1] ^ 1]))
    node.sent.documents.clear()
    assert asyncio.run(node.handle(forged)) in {"auth_failed", "malformed"}  # type: ignore[arg-type]
    assert forged.termed == 1
    assert [] == node.sent.documents


def test_a_report_stored_before_its_receipt_failed_is_confirmed_on_redelivery(
    node: RecordingNode,
) -> None:
    """The receipt goes out before the ack: if it cannot be sent, the delivery is not acked,
    comes again, is recognised as stored, and is confirmed then (never stored in silence)."""
    report = example("01")
    signer = FED.agencies[ORIGINATOR].signing
    header = EnvelopeHeader(
        id=new_uuid7(), originator=ORIGINATOR, kid=signer.kid, created=datetime.now(UTC),
        kind=report.kind, priority=report.priority, route=report.route,
        category=report.category, handling=report.handling, recipients=[ME],
    )  # fmt: skip
    body = msgpack.packb(partition(report).main, use_bin_type=True)
    data = seal(header, body, signer, [FED.agencies[ME].encryption.public])
    first = Delivery(deliver_subject(ME, header), data)
    node.sent.documents.clear()
    publish = node._publish

    async def down(subject: str, data: bytes, msg_id: str, action: str) -> None:
        raise TransportError(f"cannot {action}: NATS is down")

    node._publish = down  # type: ignore[method-assign]
    try:
        with pytest.raises(TransportError):
            asyncio.run(node.handle(first))  # type: ignore[arg-type]
    finally:
        node._publish = publish  # type: ignore[method-assign]
    assert (0, 0) == (first.acked, first.termed)
    assert node.inbox.seen(header.id)
    again = Delivery(deliver_subject(ME, header), data)
    assert "duplicate" == asyncio.run(node.handle(again))  # type: ignore[arg-type]
    assert 1 == again.acked
    receipts = [d for _, d in node.sent.documents if d.get("kind") == "receipt"]
    assert [("delivered", header.id)] == [(r["status"], r["envelope"]) for r in receipts]
