"""Every kind of unreadable delivery, through a live stack, ends in the originator's status.

A real nats-server, broker and nodes. ITA-GDF's node is made to misbehave: it signs envelopes
of each kind whose content is not what that kind carries (a request whose body is not JSON, a
report body that fails validation, ...) and publishes them as any node would. The broker
routes them (it judges the signed header, never the content); MLT-AFM's node cannot store
them, and ITA-GDF's ``status`` for each shows MLT-AFM's signed refusal with its code and
reason: none is acknowledged in silence (issue 15 item 1).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.service import Node
from palermo.devfed import DevFederation
from protocol.envelope import seal
from protocol.transport import publish_subject
from schemas import EnvelopeHeader, Handling, Kind, new_uuid7
from schemas.errors import KindNotPublishable
from tests.harness import example, running_federation, wait_for

ORIGINATOR, ME = "ITA-GDF", "MLT-AFM"

# kind, refs it names, body: each what no node of ours sends, each signed by the originator.
UNREADABLE: dict[str, tuple[Kind, int, bytes, str]] = {
    "request-body-not-json": (Kind.REQUEST, 1, b"Is the passport genuine?", "unreadable_content"),
    "request-without-text": (Kind.REQUEST, 1, b'{"question": "genuine?"}', "unreadable_content"),
    "response-text-not-a-string": (Kind.RESPONSE, 1, b'{"text": 42}', "unreadable_content"),
    "retraction-not-msgpack": (Kind.RETRACTION, 1, b"\xc1\xc1", "unreadable_content"),
    "retraction-of-a-report-never-held": (Kind.RETRACTION, 1, b"", "unknown_reference"),
    "release-request-not-json": (Kind.RELEASE_REQUEST, 1, b"\x00", "unreadable_content"),
    "report-body-not-msgpack": (Kind.REPORT, 0, b"\x93\x01\x02", "malformed"),
    "alert-body-fails-validation": (
        Kind.ALERT, 0, msgpack.packb({"title": "x", "originator": ORIGINATOR}), "report_invalid"
    ),
    "receipt-in-an-envelope": (Kind.RECEIPT, 0, b"{}", "kind_not_accepted"),
}  # fmt: skip


def _sealed(fed: DevFederation, kind: Kind, refs: int, body: bytes) -> tuple[EnvelopeHeader, bytes]:
    ita = fed.agencies[ORIGINATOR]
    targets = [new_uuid7() for _ in range(refs)]
    if kind is Kind.RETRACTION and not body:  # well formed, for a report MLT-AFM never had
        body = msgpack.packb({"retracts": targets[0], "reason": "wrong vessel"})
    header = EnvelopeHeader(
        id=new_uuid7(), originator=ORIGINATOR, kid=ita.signing.kid,
        created=datetime.now(UTC),
        kind=kind, route="central-med", category="routes",
        handling=Handling(tlp="RED", rel_to=[ME]), recipients=[ME], refs=targets,
    )  # fmt: skip
    return header, seal(header, body, ita.signing, [fed.agencies[ME].encryption.public])


@pytest.fixture
async def nodes(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[dict[str, Node]]:
    async with running_federation(federated_url, fed, (ORIGINATOR, ME), tmp_path) as running:
        yield running


async def test_each_unreadable_delivery_shows_as_refused_in_the_originators_status(
    nodes: dict[str, Node], fed: DevFederation
) -> None:
    ita, mlt = nodes[ORIGINATOR], nodes[ME]
    sent: dict[str, EnvelopeHeader] = {}
    for name, (kind, refs, body, _) in UNREADABLE.items():
        header, data = _sealed(fed, kind, refs, body)
        await ita._publish(publish_subject(header), data, header.id, f"inject {name}")
        sent[name] = header
    statuses: dict[str, dict[str, Any]] = {}

    async def all_answered() -> bool:
        for name, header in sent.items():
            if name not in statuses:
                row = (await ita.delivery_status(header.id)).get(ME)
                if row is not None:
                    statuses[name] = row
        return len(statuses) == len(sent)

    await wait_for(all_answered, within=60, every=0.2)
    for name, (_, _, _, code) in UNREADABLE.items():
        row = statuses[name]
        assert row["status"] == "refused", (name, row)
        [reason] = row["reasons"]
        assert reason["code"] == code, (name, row)
        assert reason["message"], (name, row)
    # Nothing of them was kept, and the node's count says so.
    assert not any(mlt.inbox.seen(h.id) for h in sent.values())
    assert [] == mlt.inbox.messages("request") == mlt.inbox.messages("response")
    assert mlt.refused == len(UNREADABLE)
    assert "not JSON" in json.dumps(statuses["request-body-not-json"])


async def test_publish_refuses_a_request_naming_the_command_to_use(nodes: dict[str, Node]) -> None:
    """What a user tried (issue 15): ``kind: request`` through publish. Refused before sealing,
    with the command that sends a request."""
    report = example("01").model_copy(update={"kind": Kind.REQUEST})
    with pytest.raises(KindNotPublishable, match="palermo request"):
        await nodes[ORIGINATOR].publish(report, to=[ME])
