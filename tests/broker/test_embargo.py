"""Embargo, hold and deliver (issue 15, item 3; decision 0020), on a live stack: a report with
``not_before`` ahead is accepted and held now, delivered at ``not_before`` (by the server's own
message schedule: the tests wait for that delivery, they never sleep), through restarts; a
retraction before release stops it; an originator revoked meanwhile is dead-lettered then."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from broker.deadletters import DeadLetter, republish
from broker.service import EXHAUSTED, Broker, BrokerOptions
from node.reports import seal_report
from node.service import Node
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.directory import Directory
from protocol.transport import deliver_subject, publish_subject
from protocol.trust import ROOT, RevocationEntry, RevocationList, sign_document
from schemas import Report
from schemas.errors import EmbargoTooFar, RetractedByOriginator
from tests.harness import (
    broker_on,
    envelope,
    example,
    follow_directory,
    publish,
    read_all,
    running_nodes,
    stream_messages,
    wait_for,
)

AGENCIES = ("ITA-GDF", "MLT-AFM")
# Far enough ahead that the assertions made before it are made while it is still held, near
# enough that the real release comes quickly.
AHEAD = timedelta(seconds=3)


@dataclass
class Stack:
    server: NatsServer
    fed: DevFederation
    nc: Client
    nodes: dict[str, Node]
    broker: Broker | None = None
    view: Directory | None = None
    task: asyncio.Task[None] | None = None

    async def start_broker(self, options: BrokerOptions | None = None) -> None:
        """A broker following the live directory, as 'palermo broker run' builds it."""
        self.view = await follow_directory(self.nc, self.fed)
        options = options or BrokerOptions(fetch_timeout_s=0.2)
        self.broker = broker_on(self.nc, self.view, self.fed, options)
        self.task = asyncio.create_task(self.broker.run())

    async def stop_broker(self) -> None:
        assert self.broker is not None
        assert self.task is not None
        assert self.view is not None
        self.broker.stop()
        await self.task
        await self.view.close()


@asynccontextmanager
async def _stack(server: NatsServer, fed: DevFederation, home: Path) -> AsyncIterator[Stack]:
    nc = await nats.connect(server.client_url)
    async with running_nodes(server.client_url, fed, AGENCIES, home) as nodes:
        stack = Stack(server, fed, nc, nodes)
        await stack.start_broker()
        try:
            yield stack
        finally:
            await stack.stop_broker()
            await nc.close()


@pytest.fixture
async def live(
    federated_url: str, nats_server: NatsServer, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[Stack]:
    async with _stack(nats_server, fed, tmp_path) as stack:
        yield stack


def _embargoed(until: datetime) -> Report:
    report = example("01")
    return report.model_copy(
        update={"handling": report.handling.model_copy(update={"not_before": until})}
    )


def _until() -> datetime:
    return (datetime.now(UTC) + AHEAD).replace(microsecond=0) + timedelta(seconds=1)


async def _audit_records(nc: Client, envelope_id: str) -> list[dict[str, object]]:
    entries = [json.loads(m.data) for m in await read_all(nc, "PLM_AUDIT")]
    return [
        r
        for e in entries
        if e["type"] == "decisions"
        for r in e["records"]
        if r["envelope"] == envelope_id
    ]


async def test_held_now_delivered_at_not_before(live: Stack) -> None:
    """Accepted and held at once (status: embargoed until …); stored in PLM_DLV only at
    not_before, then in the recipient's inbox with its receipt."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    until = _until()
    sealed = await ita.publish(_embargoed(until), to=["MLT-AFM"])
    ident = sealed.header.id

    async def held() -> bool:
        return any(m.subject == f"plm.hold.ITA-GDF.{ident}" for m in await read_all(
            live.nc, "PLM_HOLD", "plm.hold.>"))  # fmt: skip

    await wait_for(held, within=10)
    status = (await ita.delivery_status(ident))["MLT-AFM"]
    assert ("embargoed", until.isoformat()) == (status["status"], status["until"])
    assert not mlt.inbox.seen(ident)

    async def receipted() -> bool:
        return (await ita.delivery_status(ident)).get("MLT-AFM", {}).get("status") == "delivered"

    await wait_for(receipted, within=30)
    [copy] = await read_all(live.nc, "PLM_DLV", "plm.dlv.MLT-AFM.ITA-GDF.>")
    assert copy.metadata.timestamp >= until
    assert mlt.inbox.seen(ident)
    records = await _audit_records(live.nc, ident)
    assert [until.isoformat(), True] == [records[0].get("held_until"), records[-1]["released"]]


async def test_a_replay_after_release_is_refused(live: Stack) -> None:
    """The same envelope published again after its release is refused as a replay: its marker
    from the first arrival still stands (PLM_SEEN outlasts the hold)."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    sealed = await ita.publish(_embargoed(_until()), to=["MLT-AFM"])

    async def stored() -> bool:
        return mlt.inbox.seen(sealed.header.id)

    await wait_for(stored, within=30)
    # Under another Nats-Msg-Id: PLM_PUB's duplicate window would drop the same one unseen.
    subject = publish_subject(sealed.header)
    await live.nc.jetstream().publish(subject, sealed.data, headers={"Nats-Msg-Id": "again"})

    async def refused() -> bool:
        return bool(await read_all(live.nc, "PLM_DEAD", "plm.dead.ITA-GDF.replayed"))

    await wait_for(refused, within=20)
    assert 1 == len(await _copies(live, sealed.header.id))


async def test_survives_broker_and_server_restarts(live: Stack) -> None:
    """Held while the broker is stopped and nats-server is restarted: still delivered."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    sealed = await ita.publish(_embargoed(_until()), to=["MLT-AFM"])
    ident = sealed.header.id

    async def held() -> bool:
        return len(await read_all(live.nc, "PLM_HOLD", "plm.hold.>")) == 1

    await wait_for(held, within=10)
    await live.stop_broker()
    await live.server.restart()
    await live.start_broker()

    async def stored() -> bool:
        return mlt.inbox.seen(ident)

    await wait_for(stored, within=30)
    assert 1 == len(await read_all(live.nc, "PLM_DLV", "plm.dlv.MLT-AFM.>"))


async def _released_after(live: Stack, until: datetime) -> None:
    """Returns once a report embargoed until ``until`` has been released and stored: by then
    every schedule due at ``until`` has fired (a barrier, not a sleep)."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    barrier = await ita.publish(_embargoed(until), to=["MLT-AFM"])

    async def stored() -> bool:
        return mlt.inbox.seen(barrier.header.id)

    await wait_for(stored, within=30)


async def _copies(live: Stack, ident: str) -> list[object]:
    return [
        m
        for m in await read_all(live.nc, "PLM_DLV", "plm.dlv.MLT-AFM.>")
        if m.headers.get("Nats-Msg-Id") == f"{ident}.MLT-AFM"
    ]


async def test_retraction_before_release_prevents_delivery(live: Stack) -> None:
    """Retracted while held: the schedule is cancelled and nothing is ever released for it;
    the originator's status says it was never delivered."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    until = _until()
    sealed = await ita.publish(_embargoed(until), to=["MLT-AFM"])
    ident = sealed.header.id
    await ita.retract(ident, "wrong vessel identified")

    async def cancelled() -> bool:
        held = await read_all(live.nc, "PLM_HOLD", f"plm.hold.ITA-GDF.{ident}")
        void = await read_all(live.nc, "PLM_HOLD", f"plm.void.ITA-GDF.{ident}")
        return not held and bool(void)

    await wait_for(cancelled, within=20)
    await _released_after(live, until)
    assert [] == await _copies(live, ident)
    assert not mlt.inbox.seen(ident)
    assert "retracted" == (await ita.delivery_status(ident))["MLT-AFM"]["status"]


async def test_retraction_racing_the_release_still_prevents_delivery(live: Stack) -> None:
    """The schedule fired while the broker was down, and the retraction was accepted (its void
    marker written) before the broker took the release: it is released to nobody, audited."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    sealed = await ita.publish(_embargoed(_until()), to=["MLT-AFM"])
    ident = sealed.header.id

    async def held() -> bool:
        return bool(await read_all(live.nc, "PLM_HOLD", f"plm.hold.ITA-GDF.{ident}"))

    await wait_for(held, within=10)
    await live.stop_broker()

    async def fired() -> bool:
        return bool(await read_all(live.nc, "PLM_HOLD", f"plm.due.ITA-GDF.{ident}"))

    await wait_for(fired, within=30)
    # What the broker writes when it accepts ITA-GDF's retraction (broker/embargo.py).
    await live.nc.jetstream().publish(f"plm.void.ITA-GDF.{ident}", b"retraction")
    await live.start_broker()

    async def audited() -> bool:
        records = await _audit_records(live.nc, ident)
        return any(r.get("retracted_before_release") for r in records)

    await wait_for(audited, within=30)
    assert [] == await _copies(live, ident)
    assert not mlt.inbox.seen(ident)


async def test_originator_revoked_before_release_is_dead_lettered(live: Stack) -> None:
    """ITA-GDF is revoked while its report is held: at release the broker dead-letters it
    with that reason and delivers nothing."""
    fed, ita, mlt = live.fed, live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    sealed = await ita.publish(_embargoed(_until()), to=["MLT-AFM"])
    ident = sealed.header.id
    now = datetime.now(UTC)
    revoked = RevocationList(seq=2, issued=now, entries=[
        RevocationEntry(agency="ITA-GDF", reason="compromised", revoked_at=now)])  # fmt: skip
    assert live.view is not None
    await live.view.publish(sign_document(revoked, fed.root, ROOT))

    async def dead() -> list[object]:
        return [
            m
            for m in await read_all(live.nc, "PLM_DEAD", "plm.dead.ITA-GDF.>")
            if json.dumps(m.headers).find("key_not_valid") >= 0
        ]

    async def dead_lettered() -> bool:
        return bool(await dead())

    await wait_for(dead_lettered, within=30)
    [letter] = await dead()
    assert letter.headers["Palermo-Subject"].startswith("plm.pub.ITA-GDF.")  # type: ignore[attr-defined]
    assert "revoked" in letter.headers["Palermo-Reason"]  # type: ignore[attr-defined]
    assert [] == await read_all(live.nc, "PLM_DLV", "plm.dlv.MLT-AFM.>")
    assert not mlt.inbox.seen(ident)


async def test_embargo_beyond_the_cap_is_refused(live: Stack) -> None:
    """Further ahead than max_embargo: the node refuses to publish, the broker dead-letters
    an envelope sealed anyway (embargo_too_far)."""
    ita = live.nodes["ITA-GDF"]
    far = datetime.now(UTC) + timedelta(days=31)
    with pytest.raises(EmbargoTooFar, match="max_embargo"):
        await ita.publish(_embargoed(far), to=["MLT-AFM"])
    await publish(live.nc, [envelope(live.fed, recipients=["MLT-AFM"], not_before=far)])

    async def refused() -> bool:
        dead = await read_all(live.nc, "PLM_DEAD", "plm.dead.ITA-GDF.embargo_too_far")
        return len(dead) == 1

    await wait_for(refused, within=20)
    assert [] == await read_all(live.nc, "PLM_HOLD", "plm.hold.>")


def _early(node: Node, cause: str) -> float:
    value = node.metrics.registry.get_sample_value("palermo_node_early_total", {"cause": cause})
    return value or 0.0


async def test_a_copy_released_early_is_held_by_the_recipient_until_not_before(
    live: Stack,
) -> None:
    """A delivery that reaches MLT-AFM an hour before its not_before (a broker releasing early)
    is neither stored nor refused by MLT-AFM's node: the embargo holds at the third enforcement
    point, the early release is counted (released_early) and looked at again every
    early_recheck_s, and the report is stored, and receipted, at not_before by the node's clock."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    mlt.delivery = replace(mlt.delivery, early_recheck_s=0.5)
    not_before = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    sealed = seal_report(_embargoed(not_before), ita.identity.signing, ["MLT-AFM"], ita.trust,
                         ita.policy, datetime.now(UTC))  # fmt: skip
    await live.nc.jetstream().publish(
        deliver_subject("MLT-AFM", sealed.header),
        sealed.data,
        headers={"Nats-Msg-Id": f"{sealed.header.id}.MLT-AFM"},
    )

    async def looked_at_again() -> bool:
        return _early(mlt, "released_early") >= 2

    await wait_for(looked_at_again, within=20)
    assert not mlt.inbox.seen(sealed.header.id)
    assert "MLT-AFM" not in await ita.delivery_status(sealed.header.id)  # no refusal, no receipt
    assert 0.0 == _early(mlt, "clock_behind")
    mlt.clock = lambda: not_before

    async def delivered() -> bool:
        row = (await ita.delivery_status(sealed.header.id)).get("MLT-AFM", {})
        return row.get("status") == "delivered"

    await wait_for(delivered, within=20)
    assert mlt.inbox.seen(sealed.header.id)


async def test_a_release_reaching_a_node_whose_clock_is_behind_is_stored_when_due_there(
    live: Stack,
) -> None:
    """The broker releases at not_before; MLT-AFM's clock is 3 minutes behind (beyond
    RELEASE_SKEW): the release is kept (clock_behind counted: check NTP), neither stored nor
    refused, and stored once the node's clock reaches not_before."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    mlt.delivery = replace(mlt.delivery, early_recheck_s=0.5)
    mlt.clock = lambda: datetime.now(UTC) - timedelta(minutes=3)
    until = _until()
    sealed = await ita.publish(_embargoed(until), to=["MLT-AFM"])

    async def early_here() -> bool:
        return _early(mlt, "clock_behind") >= 2

    await wait_for(early_here, within=30)
    assert not mlt.inbox.seen(sealed.header.id)
    assert "MLT-AFM" not in await ita.delivery_status(sealed.header.id)  # no refusal, no receipt
    assert 0.0 == _early(mlt, "released_early")
    mlt.clock = lambda: datetime.now(UTC)  # NTP fixed

    async def delivered() -> bool:
        row = (await ita.delivery_status(sealed.header.id)).get("MLT-AFM", {})
        return row.get("status") == "delivered"

    await wait_for(delivered, within=20)
    assert mlt.inbox.seen(sealed.header.id)


async def test_a_release_given_up_can_be_republished(live: Stack) -> None:
    """PLM_DLV is full when a held envelope is released: after its last attempt it is
    dead-lettered (redelivery_exhausted), its replay marker forgotten, and once there is room
    'palermo dead republish' (broker.deadletters.republish) delivers it."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    js = live.nc.jetstream()
    await live.stop_broker()
    await live.start_broker(BrokerOptions(fetch_timeout_s=0.2, max_deliver=2, nak_delay_s=0.1))
    dlv = (await js.stream_info("PLM_DLV")).config
    await js.publish("plm.dlv.GRC-HCG.filler", b"x")  # PLM_DLV holds exactly this one, full
    dlv.max_msgs = 1
    await js.update_stream(dlv)
    sealed = await ita.publish(_embargoed(_until()), to=["MLT-AFM"])

    async def given_up() -> bool:
        return bool(await read_all(live.nc, "PLM_DEAD", f"plm.dead.ITA-GDF.{EXHAUSTED}"))

    await wait_for(given_up, within=40)
    [letter] = [DeadLetter.of(m) for m in await stream_messages(live.nc, "PLM_DEAD")
                if m.headers.get("Palermo-Reason-Code") == EXHAUSTED]  # fmt: skip
    assert (sealed.header.id, publish_subject(sealed.header)) == (
        letter.envelope_id,
        letter.subject,
    )
    dlv.max_msgs = -1
    await js.update_stream(dlv)
    assert await republish(js, letter)

    async def stored() -> bool:
        return mlt.inbox.seen(sealed.header.id)

    await wait_for(stored, within=30)


async def _given_up(live: Stack, *, embargoed: bool) -> tuple[str, DeadLetter]:
    """A report of ITA-GDF's for MLT-AFM dead-lettered after its last attempt (PLM_DLV full),
    at its release from PLM_HOLD (``embargoed``) or at intake; PLM_DLV has room again after."""
    ita = live.nodes["ITA-GDF"]
    js = live.nc.jetstream()
    await live.stop_broker()
    await live.start_broker(BrokerOptions(fetch_timeout_s=0.2, max_deliver=2, nak_delay_s=0.1))
    dlv = (await js.stream_info("PLM_DLV")).config
    await js.publish("plm.dlv.GRC-HCG.filler", b"x")  # PLM_DLV holds exactly this one, full
    dlv.max_msgs = 1
    await js.update_stream(dlv)
    report = _embargoed(_until()) if embargoed else example("01")
    sealed = await ita.publish(report, to=["MLT-AFM"])

    async def given_up() -> bool:
        return bool(await read_all(live.nc, "PLM_DEAD", f"plm.dead.ITA-GDF.{EXHAUSTED}"))

    await wait_for(given_up, within=40)
    [letter] = [DeadLetter.of(m) for m in await stream_messages(live.nc, "PLM_DEAD")
                if m.headers.get("Palermo-Reason-Code") == EXHAUSTED]  # fmt: skip
    dlv.max_msgs = -1
    await js.update_stream(dlv)
    return sealed.header.id, letter


@pytest.mark.parametrize("embargoed", [True, False], ids=["released", "at-intake"])
async def test_a_retracted_envelope_is_never_delivered_from_the_dead_letters(
    live: Stack, embargoed: bool
) -> None:
    """Given up (redelivery_exhausted), then retracted by ITA-GDF (its void marker written):
    'palermo dead republish' refuses it (RetractedByOriginator), and the same bytes published
    again any other way are dead-lettered by the broker as retracted, never copied to MLT-AFM."""
    ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    ident, letter = await _given_up(live, embargoed=embargoed)
    await ita.retract(ident, "wrong vessel identified")

    async def voided() -> bool:
        return bool(await read_all(live.nc, "PLM_HOLD", f"plm.void.ITA-GDF.{ident}"))

    await wait_for(voided, within=30)
    js = live.nc.jetstream()
    with pytest.raises(RetractedByOriginator, match="retracted by its originator ITA-GDF"):
        await republish(js, letter)
    # What an operator might do instead ('nats pub'): the broker itself refuses it.
    await js.publish(letter.subject, letter.data, headers={"Nats-Msg-Id": "by-hand"})

    async def refused() -> bool:
        return bool(await read_all(live.nc, "PLM_DEAD", "plm.dead.ITA-GDF.retracted"))

    await wait_for(refused, within=30)
    # A barrier: a report published after it has been handled (one batch, in order).
    await _released_after(live, _until())
    assert [] == await _copies(live, ident)
    assert not mlt.inbox.seen(ident)
    [refusal] = [DeadLetter.of(m) for m in await stream_messages(live.nc, "PLM_DEAD")
                 if m.headers.get("Palermo-Reason-Code") == "retracted"]  # fmt: skip
    assert (ident, False) == (refusal.envelope_id, refusal.republishable)
    records = await _audit_records(live.nc, ident)
    assert "retracted" == records[-1]["error"]["code"]


async def test_a_given_up_envelope_not_retracted_is_republished_once(live: Stack) -> None:
    """Not retracted: republished, delivered exactly once; the same bytes again are a replay."""
    mlt = live.nodes["MLT-AFM"]
    ident, letter = await _given_up(live, embargoed=False)
    js = live.nc.jetstream()
    assert await republish(js, letter)

    async def stored() -> bool:
        return mlt.inbox.seen(ident)

    await wait_for(stored, within=30)
    await js.publish(letter.subject, letter.data, headers={"Nats-Msg-Id": "again"})

    async def refused() -> bool:
        return bool(await read_all(live.nc, "PLM_DEAD", "plm.dead.ITA-GDF.replayed"))

    await wait_for(refused, within=30)
    assert 1 == len(await _copies(live, ident))
