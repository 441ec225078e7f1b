"""Nodes and broker end to end on a real nats-server: publish, deliver, open, store, receipt."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from broker.service import Broker
from node.service import Node
from palermo.devfed import DevFederation
from schemas import Report
from schemas.errors import InputError
from schemas.export import parse_report
from tests.harness import read_all, running_broker, running_nodes, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"


class Federation:
    """A broker and one node per agency, all in this process."""

    def __init__(self, fed: DevFederation, nodes: dict[str, Node], broker: Broker) -> None:
        self.fed, self.nodes, self.broker = fed, nodes, broker


AGENCIES = ("ITA-GDF", "MLT-AFM", "GRC-HCG", "LBY-DCIM", "ESP-GC", "TUR-CG", "AUS-ABF")


@pytest.fixture
async def running(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[Federation]:
    """A broker and seven agencies' nodes running on the example federation."""
    async with (
        running_nodes(federated_url, fed, AGENCIES, tmp_path) as nodes,
        running_broker(federated_url, fed) as broker,
    ):
        yield Federation(fed, nodes, broker)


def _example(name: str) -> Report:
    return parse_report(next(EXAMPLES.glob(f"{name}*.json")).read_text())


async def test_publish_reaches_exactly_the_allowed_interested_partners(running: Federation) -> None:
    """An AMBER route alert reaches the coastal partners' inboxes, each with a receipt."""
    ita = running.nodes["ITA-GDF"]
    sealed = await ita.publish(_example("01"))

    async def stored() -> bool:
        return sum(n.received for n in running.nodes.values()) >= len(sealed.recipients)

    await wait_for(stored, within=20)
    holders = sorted(a for a, n in running.nodes.items() if n.inbox.seen(sealed.header.id))
    assert sealed.recipients == holders
    assert {"ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM", "TUR-CG"} == set(holders)
    entry, report = running.nodes["MLT-AFM"].inbox.show(sealed.header.id)
    assert _example("01") == report
    assert "TLP:AMBER" in entry.codes
    receipts = [
        json.loads(m.data)["document"]
        for m in await read_all(ita.nc, "PLM_RCPT", "plm.rcpt.ITA-GDF.receipt.>")
    ]
    assert {(r["recipient"], r["status"]) for r in receipts} == {(a, "delivered") for a in holders}


async def test_personal_data_report_skips_partners_without_data_protection(
    running: Federation,
) -> None:
    """The interview report (persons) goes to EU partners only; LBY-DCIM is refused by policy."""
    sealed = await running.nodes["ITA-GDF"].publish(_example("07"))
    assert "LBY-DCIM" not in sealed.recipients
    assert not sealed.decisions["LBY-DCIM"].allowed

    async def stored() -> bool:
        return all(running.nodes[a].inbox.seen(sealed.header.id) for a in sealed.recipients)

    await wait_for(stored, within=20)
    _, report = running.nodes["ESP-GC"].inbox.show(sealed.header.id)
    assert {"ERI", "SDN"} <= {p.nationality for p in report.persons}


async def test_a_node_cannot_publish_for_another_agency(running: Federation) -> None:
    """MLT-AFM's node refuses to send a report that names ITA-GDF as originator."""
    with pytest.raises(InputError, match="this node is MLT-AFM"):
        await running.nodes["MLT-AFM"].publish(_example("01"))


async def test_status_shows_every_recipients_signed_receipt(running: Federation) -> None:
    """After delivery, the originator's status lists each recipient as delivered."""
    ita = running.nodes["ITA-GDF"]
    sealed = await ita.publish(_example("01"))

    async def receipted() -> bool:
        rows = await ita.delivery_status(sealed.header.id)
        return set(rows) == set(sealed.recipients)

    await wait_for(receipted, within=20)
    rows = await ita.delivery_status(sealed.header.id)
    assert {a: "delivered" for a in sealed.recipients} == {a: r["status"] for a, r in rows.items()}


async def test_retraction_is_purged_and_confirmed_by_every_recipient(running: Federation) -> None:
    """After a retraction every recipient's inbox holds a tombstone and status says purged."""
    ita = running.nodes["ITA-GDF"]
    sealed = await ita.publish(_example("01"))

    async def stored() -> bool:
        return all(running.nodes[a].inbox.seen(sealed.header.id) for a in sealed.recipients)

    await wait_for(stored, within=20)
    await ita.retract(sealed.header.id, "wrong departure point")

    async def purged() -> bool:
        rows = await ita.delivery_status(sealed.header.id)
        return all(rows.get(a, {}).get("status") == "purged" for a in sealed.recipients)

    await wait_for(purged, within=20)
    entry, content = running.nodes["MLT-AFM"].inbox.show(sealed.header.id)
    assert (None, "retracted: wrong departure point") == (content, entry.purge_reason)


async def test_only_the_originator_can_retract(running: Federation) -> None:
    """A node cannot retract a report it did not send."""
    with pytest.raises(InputError, match="did not send"):
        await running.nodes["MLT-AFM"].retract("01a205df-79eb-787c-affb-e98c452bf3ac", "x")


async def test_subscriptions_decide_who_a_publisher_encrypts_for(running: Federation) -> None:
    """When MLT-AFM drops central-med, the next central-med report is not sealed for it."""
    mlt, ita = running.nodes["MLT-AFM"], running.nodes["ITA-GDF"]
    await mlt.subscribe(["eastern-med"])

    async def seen_by_publisher() -> bool:
        subs = ita.trust.subscriptions.get("MLT-AFM")
        return subs is not None and [f.route for f in subs.filters] == ["eastern-med"]

    await wait_for(seen_by_publisher, within=5)
    sealed = await ita.publish(_example("01"))
    assert "MLT-AFM" not in sealed.recipients
    assert "GRC-HCG" in sealed.recipients


async def test_key_rotation_loses_nothing_sealed_before_during_or_after(
    running: Federation,
) -> None:
    """Reports sealed before, during (published after) and after MLT-AFM's rotation all open."""
    from node.reports import seal_report
    from protocol.keys import EncryptionKey
    from protocol.transport import publish_subject

    ita, mlt = running.nodes["ITA-GDF"], running.nodes["MLT-AFM"]
    before = await ita.publish(_example("01"), to=["MLT-AFM"])
    during = seal_report(_example("01"), ita.identity.signing, ["MLT-AFM"], ita.trust, ita.policy,
                         datetime.now(UTC))  # fmt: skip
    old_kid = mlt.identity.encryption[0].kid
    bundle = await mlt.rotate_keys(EncryptionKey.generate("MLT-AFM"))
    assert [mlt.identity.encryption[0].kid, old_kid] == [k.kid for k in bundle.keys]

    async def publisher_sees_new_key() -> bool:
        held = ita.trust.bundles.get("MLT-AFM")
        return held is not None and held.seq == bundle.seq

    await wait_for(publisher_sees_new_key, within=5)
    await ita.js.publish(publish_subject(during.header), during.data,
                         headers={"Nats-Msg-Id": during.header.id})  # fmt: skip
    after = await ita.publish(_example("01"), to=["MLT-AFM"])
    assert after.data != before.data

    async def all_stored() -> bool:
        return all(mlt.inbox.seen(s.header.id) for s in (before, during, after))

    await wait_for(all_stored, within=20)
    assert 0 == mlt.refused


async def test_http_ingest_202_and_422(running: Federation) -> None:
    """POST /v1/reports: a valid report is published (202); an invalid one names its fields (422)
    and publishes nothing; a kind that has its own command is refused (409)."""
    import aiohttp

    from node.ingest import IngestServer, IngestToken, generate_token

    ita = running.nodes["ITA-GDF"]
    token = generate_token()
    ops = IngestServer(port=0, token=IngestToken(token))
    (url,) = await ops.start(ita.http_ingest)
    good = _example("01").to_wire()
    bad = {**good, "itinerary": {"embarkation": [{"country": "XXX"}]}}
    before = (await ita.js.stream_info("PLM_PUB")).state.last_seq
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.post(url, json=bad) as resp:
                refused = (resp.status, await resp.json())
            async with http.post(url, data=b"{not json") as resp:
                garbled = resp.status
            async with http.post(url, json={**good, "kind": "request"}) as resp:
                wrong_kind = (resp.status, await resp.json())
            middle = (await ita.js.stream_info("PLM_PUB")).state.last_seq
            async with http.post(url, json=good) as resp:
                accepted = (resp.status, await resp.json())
    finally:
        await ops.stop()
    assert 422 == refused[0]
    assert ["itinerary.embarkation.0.country"] == [e["field"] for e in refused[1]["errors"]]
    assert 422 == garbled
    # A kind with its own command (issue 15 item 1): 409, naming it, nothing published.
    assert (409, "kind_not_publishable") == (wrong_kind[0], wrong_kind[1]["code"])
    assert "palermo request" in wrong_kind[1]["reason"]
    assert before == middle
    assert 202 == accepted[0]
    assert "MLT-AFM" in accepted[1]["recipients"]


async def test_release_request_granted_by_an_officer_reaches_the_new_partner(
    running: Federation,
) -> None:
    """MLT-AFM asks to share with AUS-ABF; ITA-GDF holds it, an officer grants, AUS-ABF reads it;
    a request for a statistics body is refused at once by policy."""
    ita, mlt, aus = running.nodes["ITA-GDF"], running.nodes["MLT-AFM"], running.nodes["AUS-ABF"]
    sealed = await ita.publish(_example("01"))
    assert "AUS-ABF" not in sealed.recipients

    async def at_mlt() -> bool:
        return mlt.inbox.seen(sealed.header.id)

    await wait_for(at_mlt, within=20)
    await mlt.request_release(sealed.header.id, "AUS-ABF", "joint operation on the route")
    await mlt.request_release(sealed.header.id, "UNODC-STATS", "annual statistics")

    async def both_arrived() -> bool:
        return len(ita.inbox.release_requests()) == 2

    await wait_for(both_arrived, within=20)
    states = {r["target"]: r["state"] for r in ita.inbox.release_requests()}
    assert {"AUS-ABF": "pending", "UNODC-STATS": "denied"} == states
    [pending] = ita.inbox.release_requests("pending")
    release_id = await ita.decide_release(
        pending["id"], grant=True, reason="approved by duty officer"
    )

    async def at_aus() -> bool:
        return release_id is not None and aus.inbox.seen(release_id)

    await wait_for(at_aus, within=20)
    entry, report = aus.inbox.show(str(release_id))
    assert ("release", _example("01").title) == (entry.kind, report.title)
    answered = await read_all(mlt.nc, "PLM_RCPT", "plm.rcpt.MLT-AFM.release.>")
    answers = [json.loads(m.data)["document"] for m in answered]
    assert {("AUS-ABF", "granted"), ("UNODC-STATS", "denied")} == {
        (a["target"], a["decision"]) for a in answers
    }


async def test_request_gets_its_threaded_response_urgent_first(running: Federation) -> None:
    """A partner asks the originator; the originator sees urgent requests first and answers;
    the answer arrives threaded to both the request and the report."""
    ita, mlt = running.nodes["ITA-GDF"], running.nodes["MLT-AFM"]
    sealed = await ita.publish(_example("01"))

    async def at_mlt() -> bool:
        return mlt.inbox.seen(sealed.header.id)

    await wait_for(at_mlt, within=20)
    routine = await mlt.request("How many persons on board?", about=sealed.header.id)
    urgent = await mlt.request("Is the passport genuine?", about=sealed.header.id,
                               subject="verify-document", identifier="YA1234567",
                               urgent=True)  # fmt: skip

    async def both_at_ita() -> bool:
        return len(ita.inbox.messages("request")) == 2

    await wait_for(both_at_ita, within=20)
    assert [urgent.id, routine.id] == [m["id"] for m in ita.inbox.messages("request")]
    answer = await ita.respond(urgent.id, "Issued 2024 to the holder.", verdict="genuine")

    async def answered() -> bool:
        return [answer.id] == [m["id"] for m in mlt.inbox.messages("response")]

    await wait_for(answered, within=20)
    [response] = mlt.inbox.messages("response")
    assert [sealed.header.id, urgent.id] == sorted(
        response["refs"], key=[sealed.header.id, urgent.id].index
    )
    assert ("Issued 2024 to the holder.", "genuine") == (response["text"], response["verdict"])
    assert (
        answer.id
        == next(m for m in ita.inbox.messages("request") if m["id"] == urgent.id)["answered_by"]
    )


async def test_red_report_reaches_only_the_named_recipients(running: Federation) -> None:
    """ESP-GC's RED report naming ITA-GDF and MLT-AFM reaches them and nobody else."""
    esp = running.nodes["ESP-GC"]
    sealed = await esp.publish(_example("08"))
    assert ["ITA-GDF", "MLT-AFM"] == sealed.recipients

    async def stored() -> bool:
        return all(running.nodes[a].inbox.seen(sealed.header.id) for a in sealed.recipients)

    await wait_for(stored, within=20)
    others = [a for a, n in running.nodes.items() if a not in sealed.recipients and a != "ESP-GC"]
    assert [] == [a for a in others if running.nodes[a].inbox.seen(sealed.header.id)]
    _, at_mlt = running.nodes["MLT-AFM"].inbox.show(sealed.header.id)
    _, at_ita = running.nodes["ITA-GDF"].inbox.show(sealed.header.id)
    # The witness is released by name to ITA-GDF only.
    assert (["c1"], ["w1", "c1"]) == (
        [p.ref for p in at_mlt.persons],
        [p.ref for p in at_ita.persons],
    )


async def test_a_later_partner_cannot_open_earlier_reports(running: Federation) -> None:
    """A partner that was not a recipient holds no key: NotARecipient, until a release."""
    from protocol.envelope import open_envelope
    from schemas.errors import NotARecipient

    ita, aus = running.nodes["ITA-GDF"], running.nodes["AUS-ABF"]
    sealed = await ita.publish(_example("01"))
    with pytest.raises(NotARecipient):
        open_envelope(sealed.data, aus.identity.encryption, aus.trust, now=datetime.now(UTC))


async def test_node_refuses_a_revoked_originator_even_if_a_broker_delivers(
    running: Federation,
) -> None:
    """Within a second of a revocation, a node refuses the agency's envelopes by itself."""
    from protocol.trust import ROOT, RevocationEntry, RevocationList, sign_document

    ita, mlt = running.nodes["ITA-GDF"], running.nodes["MLT-AFM"]
    sealed = await ita.publish(_example("01"), to=["MLT-AFM"])
    running.broker.stop()  # deliveries below come straight from a (misbehaving) relay
    now = datetime.now(UTC)
    revoked = RevocationList(seq=2, issued=now, entries=[
        RevocationEntry(agency="ITA-GDF", reason="compromised", revoked_at=now)])  # fmt: skip
    await mlt.directory.publish(sign_document(revoked, running.fed.root, ROOT))
    started = asyncio.get_running_loop().time()

    async def known() -> bool:
        return mlt.trust.revoked("ITA-GDF", None, datetime.now(UTC)) is not None

    await wait_for(known, within=1, every=0.01)
    assert asyncio.get_running_loop().time() - started < 1.0
    before = mlt.refused
    await mlt.js.publish("plm.dlv.MLT-AFM.ITA-GDF.report.central-med.routes", sealed.data)

    async def refused() -> bool:
        return mlt.refused > before

    await wait_for(refused, within=10)
    assert not mlt.inbox.seen(sealed.header.id)


async def test_an_unexpected_error_on_one_delivery_does_not_stop_the_node(
    running: Federation,
) -> None:
    """A bug met while handling one delivery is logged and the delivery retried; the node keeps
    consuming, and the report is stored once the retry succeeds."""
    mlt = running.nodes["MLT-AFM"]
    real_handle = mlt.handle
    failures: list[str] = []

    async def failing_once(msg: nats.aio.msg.Msg) -> str:
        if not failures:
            failures.append(msg.subject)
            raise RuntimeError("a bug in the node")
        return await real_handle(msg)

    mlt.handle = failing_once  # type: ignore[method-assign]
    sealed = await running.nodes["ITA-GDF"].publish(_example("01"))
    assert "MLT-AFM" in sealed.recipients

    async def stored() -> bool:
        return mlt.inbox.seen(sealed.header.id)

    await wait_for(stored, within=30)
    assert 1 == len(failures)
    assert failures[0].startswith("plm.dlv.MLT-AFM.ITA-GDF.")


async def test_failing_idle_work_does_not_stop_the_node(running: Federation) -> None:
    """The deadline check the node runs when idle once raised (two threads met in one SQLite
    transaction) and took the node's delivery loop down with it: now it is logged and tried
    again, and deliveries keep being stored."""
    mlt = running.nodes["MLT-AFM"]
    real_check = mlt.check_overdue
    failures: list[int] = []

    def failing_once() -> list[dict[str, object]]:
        if not failures:
            failures.append(1)
            raise sqlite3.OperationalError("cannot start a transaction within a transaction")
        return real_check()

    mlt.check_overdue = failing_once  # type: ignore[method-assign]

    async def failed() -> bool:
        return bool(failures)

    await wait_for(failed, within=30)  # the node went idle and its check raised
    sealed = await running.nodes["ITA-GDF"].publish(_example("01"))
    assert "MLT-AFM" in sealed.recipients

    async def stored() -> bool:
        return mlt.inbox.seen(sealed.header.id)

    await wait_for(stored, within=30)


async def test_deliveries_are_retried_without_an_attempt_limit(running: Federation) -> None:
    """A delivery the node cannot store yet must never be dropped by JetStream after N tries:
    the node's durable consumer has no max_deliver limit (refusals are terminated explicitly)."""
    js = running.nodes["MLT-AFM"].js

    async def subscribed() -> bool:  # node.run() creates the consumer as it starts
        return "node-MLT-AFM" in {c.name for c in await js.consumers_info("PLM_DLV")}

    await wait_for(subscribed, within=20)
    info = await js.consumer_info("PLM_DLV", "node-MLT-AFM")
    assert -1 == info.config.max_deliver
