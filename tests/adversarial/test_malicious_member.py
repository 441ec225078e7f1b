"""A hostile member agency: validly signed requests whose bodies are unreadable, and garbage on
another agency's receipt subject. The receiving node refuses; nothing stops it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.envelope import seal
from protocol.transport import deliver_subject
from schemas import EnvelopeHeader, Handling, new_uuid7
from tests.harness import connect_node, run_once, setup_federation

ME = "MLT-AFM"
FED = DevFederation.build(datetime.now(UTC))


def _message(kind: str, body: bytes) -> tuple[str, bytes]:
    """A RED request or response from ITA-GDF to MLT-AFM, validly signed, with ``body``.

    ITA-GDF, not LBY-DCIM: the dev federation's MLT-LBY agreement ends on 2025-12-31, after
    which local policy refused these before their bodies were read (``local_policy``), and the
    test no longer reached the path it is about."""
    ita = FED.agencies["ITA-GDF"]
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.signing.kid, created=datetime.now(UTC),
        kind=kind, route="central-med", category="routes",
        handling=Handling(tlp="RED", rel_to=[ME]), recipients=[ME],
    )  # fmt: skip
    data = seal(header, body, ita.signing, [FED.agencies[ME].encryption.public])
    return deliver_subject(ME, header), data


UNREADABLE = {
    "request-body-100000-deep-json": _message("request", b"[" * 100_000),
    "request-body-not-utf8": _message("request", b"\xff\xfe{}"),
    "request-body-a-json-list": _message("request", b"[1, 2]"),
    "response-text-not-a-string": _message("response", json.dumps({"text": 1}).encode()),
}
RECEIPT_GARBAGE = [b"[" * 100_000, b"\xff\xfe", b"[]", b'{"document": 1}', b"null"]


async def _scenario(server: NatsServer, state: Path) -> tuple[dict[str, str], dict[str, object]]:
    await setup_federation(server.client_url, FED)
    async with connect_node(server.client_url, FED, ME, state) as node:
        js = node.js
        for i, (subject, data) in enumerate(UNREADABLE.values()):
            await js.publish(subject, data, headers={"Nats-Msg-Id": f"m{i}"})
        for i, junk in enumerate(RECEIPT_GARBAGE):
            await js.publish(
                f"plm.rcpt.{ME}.receipt.LBY-DCIM", junk, headers={"Nats-Msg-Id": f"r{i}"}
            )
        sub = await js.pull_subscribe(f"plm.dlv.{ME}.>", durable="member-view", stream="PLM_DLV")
        msgs = await sub.fetch(len(UNREADABLE), timeout=10)
        outcomes = {name: await node.handle(m) for name, m in zip(UNREADABLE, msgs, strict=True)}
        status = await node.delivery_status(new_uuid7())
        return outcomes, dict(status)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, object]]:
    tmp = tmp_path_factory.mktemp("malicious-member")
    return run_once(tmp, lambda server: _scenario(server, tmp / "node"))


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_signed_request_is_refused(
    results: tuple[dict[str, str], dict[str, object]], name: str
) -> None:
    """A signed request or response whose body is not the expected JSON is refused, not raised,
    with the code its refusal receipt names (tests/node/test_unreadable_deliveries.py)."""
    assert "unreadable_content" == results[0][name]


def test_garbage_on_the_receipt_subject_is_ignored(
    results: tuple[dict[str, str], dict[str, object]],
) -> None:
    """Deep JSON, non-UTF-8 and wrong shapes among receipts: delivery_status answers, empty."""
    assert {} == results[1]
