"""Requests with deadlines (Directive (EU) 2023/977 art. 5(1)) on a live stack: cold requests
with typed subjects, the time left, overdue on both sides through an injected clock, document
verdicts, and the signed receipt that proves when an answer was given."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from pydantic import ValidationError

from node._asking import message_body
from node.requests import Access, default_deadline, parse_deadline, time_left
from node.service import Node
from palermo.devfed import DevFederation
from schemas import Kind, from_epoch_ms, to_epoch_ms
from schemas.errors import InputError
from tests.harness import running_federation, wait_for

AGENCIES = ("ITA-GDF", "MLT-AFM", "GRC-HCG")


@pytest.fixture
async def nodes(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[dict[str, Node]]:
    """A broker and three agencies' nodes, running."""
    async with running_federation(federated_url, fed, AGENCIES, tmp_path) as running:
        yield running


def test_art_5_1_defaults_and_overrides() -> None:
    """8 hours urgent-direct, 3 days urgent-indirect, 7 days otherwise; overrides parsed."""
    sent = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    assert [timedelta(hours=8), timedelta(days=3), timedelta(days=7), timedelta(days=7)] == [
        default_deadline(sent, urgent, access) - sent
        for urgent, access in ((True, Access.DIRECT), (True, Access.INDIRECT),
                               (False, Access.DIRECT), (False, Access.INDIRECT))
    ]  # fmt: skip
    assert sent + timedelta(minutes=90) == parse_deadline("90m", sent)
    assert sent + timedelta(days=2) == parse_deadline("2d", sent)
    assert datetime(2026, 5, 2, tzinfo=UTC) == parse_deadline("2026-05-02T00:00:00Z", sent)
    for bad in ("tomorrow", "2026-05-02T00:00:00", "2026-04-30T00:00:00Z", "100d"):
        with pytest.raises(InputError):
            parse_deadline(bad, sent)
    assert "due in 7h 59m" == time_left(
        to_epoch_ms(sent + timedelta(hours=8)), sent + timedelta(seconds=60)
    )
    assert "overdue by 1d 2h" == time_left(to_epoch_ms(sent), sent + timedelta(hours=26, minutes=5))


async def test_cold_verification_request_answered_with_a_verdict_and_a_signed_receipt(
    nodes: dict[str, Node],
) -> None:
    """MLT-AFM asks ITA-GDF cold (no report) to verify a passport number, urgent, on directly
    accessible data: ITA-GDF sees 8 hours left; an answer without a verdict is refused; the
    verdict reaches MLT-AFM, closes its request at the answer's signed time, and MLT-AFM's
    signed receipt of the answer tells ITA-GDF when it was given."""
    ita, mlt = nodes["ITA-GDF"], nodes["MLT-AFM"]
    asked = await mlt.request("Is this passport genuine?", to="ITA-GDF",
                              subject="verify-document", identifier="YA1234567", urgent=True,
                              access="direct")  # fmt: skip
    assert [] == asked.refs

    async def at_ita() -> bool:
        return [asked.id] == [m["id"] for m in ita.inbox.messages("request")]

    await wait_for(at_ita, within=20)
    [received] = ita.inbox.messages("request")
    assert ("verify-document", "YA1234567", "MLT-AFM", "documents") == (
        received["subject"],
        received["identifier"],
        received["from"],
        received["category"],
    )
    assert to_epoch_ms(asked.created + timedelta(hours=8)) == received["deadline_ms"]
    assert "due in 8h 0m" == time_left(received["deadline_ms"], asked.created)
    with pytest.raises(InputError, match="answered with a verdict"):
        await ita.respond(asked.id, "Checked against the register.")
    answer = await ita.respond(asked.id, "Checked against the register.", verdict="counterfeit")

    async def answered() -> bool:
        return mlt.inbox.thread(asked.id)["answered_by"] == answer.id

    await wait_for(answered, within=20)
    [response] = mlt.inbox.messages("response")
    assert ("counterfeit", [asked.id]) == (response["verdict"], response["refs"])
    assert to_epoch_ms(answer.created) == mlt.inbox.thread(asked.id)["answered_ms"]

    async def receipted() -> bool:
        return (await ita.delivery_status(answer.id)).get("MLT-AFM", {}).get(
            "status"
        ) == "delivered"

    await wait_for(receipted, within=20)
    receipt = (await ita.delivery_status(answer.id))["MLT-AFM"]
    # Signed by MLT-AFM, verified by ITA-GDF's node: stored before the deadline, provably.
    assert answer.created <= datetime.fromisoformat(receipt["time"])
    assert datetime.fromisoformat(receipt["time"]) < from_epoch_ms(received["deadline_ms"])


async def test_typed_subjects_and_defaults(nodes: dict[str, Node]) -> None:
    """A subject that needs an identifier refuses none; urgent-indirect gets 3 days, routine 7,
    an officer's override wins; a request to oneself or to a non-member is refused."""
    mlt = nodes["MLT-AFM"]
    with pytest.raises(InputError, match="identify-wallet request names what it is about"):
        await mlt.request("Whose wallet?", to="ITA-GDF", subject="identify-wallet")
    with pytest.raises(InputError, match="own agency"):
        await mlt.request("Anything?", to="MLT-AFM")
    with pytest.raises(InputError, match="cannot receive requests"):
        await mlt.request("Anything?", to="XXX-NONE")
    urgent = await mlt.request("Who owns it?", to="ITA-GDF", subject="identify-vessel",
                               identifier="IMO 9123456", urgent=True)  # fmt: skip
    routine = await mlt.request("What changed?", to="GRC-HCG", subject="route-update",
                                route="eastern-med")  # fmt: skip
    chosen = await mlt.request("Phone owner?", to="ITA-GDF", subject="identify-phone",
                               identifier="+218 91 000 0000", deadline="36h")  # fmt: skip
    sent = {m["id"]: m for m in mlt.inbox.messages("request", outgoing=True)}
    assert {urgent.id: timedelta(days=3), routine.id: timedelta(days=7),
            chosen.id: timedelta(hours=36)} == {
        h.id: from_epoch_ms(sent[h.id]["deadline_ms"]) - h.created
        for h in (urgent, routine, chosen)
    }  # fmt: skip
    assert ("GRC-HCG", "eastern-med") == (sent[routine.id]["to"], sent[routine.id]["route"])


def _overdue(node: Node, direction: str) -> float | None:
    return node.metrics.registry.get_sample_value(
        "palermo_node_requests_overdue", {"direction": direction}
    )


async def test_overdue_on_both_sides_raises_a_metric_and_one_log_event(
    nodes: dict[str, Node],
) -> None:
    """A routine request unanswered after 7 days: with the clocks moved past the deadline both
    nodes list it overdue, each raises its gauge (the running node by itself) and logs one
    ``request overdue`` event; once answered it is no longer overdue."""
    ita, mlt = nodes["ITA-GDF"], nodes["MLT-AFM"]
    asked = await mlt.request("Any departures planned?", to="ITA-GDF", subject="route-update")

    async def at_ita() -> bool:
        return bool(ita.inbox.messages("request"))

    await wait_for(at_ita, within=20)
    assert [] == ita.check_overdue()
    late = asked.created + timedelta(days=7, minutes=1)
    ita.clock = lambda: late

    async def ita_alarmed() -> bool:  # the node's own loop checks deadlines when idle
        return _overdue(ita, "received") == 1.0

    await wait_for(ita_alarmed, within=20)
    with structlog.testing.capture_logs() as logs:
        mlt.clock = lambda: late  # and checked at once (no await): its own loop cannot race
        [mine] = mlt.check_overdue()
        mlt.check_overdue()
        ita.check_overdue()  # flagged already by its loop: no second event
    assert ("sent", asked.id, 1.0) == (mine["direction"], mine["id"], _overdue(mlt, "sent"))
    assert [("request overdue", asked.id, "sent", "ITA-GDF")] == [
        (e["event"], e["request"], e["direction"], e["peer"]) for e in logs
    ]
    assert [asked.id] == [r["id"] for r in ita.inbox.overdue(late)]
    await ita.respond(asked.id, "None known.")
    assert [] == ita.check_overdue()
    assert 0.0 == _overdue(ita, "received")

    async def closed() -> bool:
        return [] == mlt.check_overdue()

    await wait_for(closed, within=20)


def test_bodies_from_nodes_before_deadlines_are_read() -> None:
    """A request from an older node (subject document-verification, no deadline) is read as an
    information request without a deadline; an unknown subject or extra field is refused."""
    old = json.dumps({"subject": "document-verification", "text": "Genuine?"}).encode()
    assert {"subject": "information", "text": "Genuine?", "access": "indirect"} == message_body(
        Kind.REQUEST, old
    )
    for bad in ({"subject": "gossip", "text": "x"}, {"text": "x", "extra": 1}, {"subject": "x"}):
        with pytest.raises(ValidationError):
            message_body(Kind.REQUEST, json.dumps(bad).encode())
    assert {"text": "ok", "verdict": "unknown"} == message_body(
        Kind.RESPONSE, b'{"text": "ok", "verdict": "unknown"}'
    )
