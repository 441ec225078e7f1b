"""Priority lanes on a live stack (decision 0032): a real nats-server, the broker and a partner
node in this process. No timing: what is checked is the order things were stored in.

- an urgent alert published behind a routine backlog is routed (broker) and stored (node)
  before the routine reports published before it that were still queued;
- routine deliveries keep being stored while urgent ones are continuously waiting, and each
  originator's reports are stored in the order published within each lane;
- an envelope whose subject claims another lane than its signed priority is refused, by the
  broker and by the node.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from broker._inspection import Outcome
from broker.audit import verify_entries
from broker.lanes import CONSUMER, URGENT_CONSUMER, broker_lanes
from broker.metrics import BrokerMetrics
from broker.service import BrokerOptions
from broker.streams import StreamLimits, ensure_streams
from node.reports import SealedReport
from node.service import DeliveryOptions, Node
from palermo.devfed import DevFederation
from protocol.lanes import ROUTINE, URGENT, LaneShares
from protocol.transport import deliver_subject, publish_subject
from schemas import Priority
from tests.harness import (
    connect_node,
    example,
    inbox_ids,
    publish,
    read_all,
    running_broker,
    seal_many,
    stream_count,
    wait_for,
)

PARTNER = "MLT-AFM"
WITHIN = 180.0


def _sealed(origin: Node, priority: Priority, n: int) -> list[SealedReport]:
    report = example("01").model_copy(update={"priority": priority})
    return seal_many(origin, report, [PARTNER], n)


async def _routed(nc: Client, total: int, within: float = WITHIN) -> None:
    async def done() -> bool:
        return await stream_count(nc, "PLM_DLV") >= total

    await wait_for(done, within=within)


async def _send(nc: Client, sealed: Sequence[SealedReport]) -> None:
    await publish(nc, [(s.header, s.data) for s in sealed])


@asynccontextmanager
async def _partner(
    url: str, fed: DevFederation, home: Path, delivery: DeliveryOptions | None = None
) -> AsyncIterator[Node]:
    async with connect_node(url, fed, PARTNER, home, delivery=delivery) as node:
        task = asyncio.create_task(node.run())
        try:
            yield node
        finally:
            node.stop()
            await task


async def _stored(node: Node, count: int) -> None:
    async def done() -> bool:
        return node.received >= count

    await wait_for(done, within=WITHIN)


async def test_an_urgent_alert_overtakes_the_queued_routine_backlog(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    nc = await nats.connect(url)
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        first, second = _sealed(ita, Priority.ROUTINE, 48), _sealed(ita, Priority.ROUTINE, 48)
        alert1, alert2 = _sealed(ita, Priority.URGENT, 2)
    # At the broker: the backlog and then the alert wait in PLM_PUB before it starts; small
    # slices, so the backlog takes many turns.
    await _send(nc, [*first, alert1])
    options = BrokerOptions(batch=8, fetch_timeout_s=0.2, lanes=LaneShares(routine_slice=4))
    async with running_broker(url, fed, options):
        await _routed(nc, len(first) + 1)
        routed = [m.headers["Nats-Msg-Id"].split(".")[0] for m in await read_all(nc, "PLM_DLV")]
        assert routed.index(alert1.header.id) < len(first) // 2, routed.index(alert1.header.id)
        # At the node: a second backlog routed in full, then another alert behind it.
        await _send(nc, second)
        await _routed(nc, len(first) + 1 + len(second))
        await _send(nc, [alert2])
        await _routed(nc, len(first) + len(second) + 2)
    async with _partner(url, fed, tmp_path) as mlt:
        await _stored(mlt, len(first) + len(second) + 2)
    stored = [i for _, i in inbox_ids(tmp_path / PARTNER / "inbox.db")]
    # Both alerts come before most of the routine reports published before them: urgent work
    # waits for at most the routine delivery in hand.
    assert stored.index(alert1.header.id) < 8, stored.index(alert1.header.id)
    assert stored.index(alert2.header.id) < 8, stored.index(alert2.header.id)
    await nc.close()


async def test_an_urgent_envelope_is_routed_while_a_routine_batch_is_in_hand(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """The broker handles an urgent turn beside the routine turn it still has in hand (decision
    0036): a routine batch held before its replay markers are stored does not hold up an urgent
    alert published meanwhile; once let go, every envelope is routed once, each audit entry
    before its copies, and the audit chain verifies."""
    url = federated_url
    nc = await nats.connect(url)
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        backlog, [alert] = _sealed(ita, Priority.ROUTINE, 8), _sealed(ita, Priority.URGENT, 1)
    entered, let_go = asyncio.Event(), asyncio.Event()
    async with running_broker(url, fed, BrokerOptions(batch=8, fetch_timeout_s=0.2)) as broker:
        mark_seen = broker._mark_seen

        async def held(outcomes: Sequence[Outcome]) -> set[int]:
            if any(o.header and o.header.priority is Priority.ROUTINE for o in outcomes):
                entered.set()
                await let_go.wait()  # a slow store, as under a bulk import
            return await mark_seen(outcomes)

        broker._mark_seen = held  # type: ignore[method-assign]
        try:
            await _send(nc, backlog)
            await asyncio.wait_for(entered.wait(), WITHIN)
            await _send(nc, [alert])
            await _routed(nc, 1, within=30)
            first = [m.headers["Nats-Msg-Id"] for m in await read_all(nc, "PLM_DLV")]
        finally:
            let_go.set()
        await _routed(nc, len(backlog) + 1)
    copies = [m.headers["Nats-Msg-Id"] for m in await read_all(nc, "PLM_DLV")]
    entries = [json.loads(m.data) for m in await read_all(nc, "PLM_AUDIT")]
    await nc.close()
    assert [f"{alert.header.id}.{PARTNER}"] == first
    assert sorted(f"{s.header.id}.{PARTNER}" for s in [*backlog, alert]) == sorted(copies)
    reports = verify_entries(entries, {fed.broker_key.kid: fed.broker_key.public.key})
    assert [(True, 2)] == [(r.ok, r.entries - r.checkpoints) for r in reports]


async def test_routine_flows_under_continuous_urgent_traffic_and_order_holds_per_lane(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    nc = await nats.connect(url)
    sent: dict[tuple[str, Priority], list[str]] = {}
    for origin in ("ITA-GDF", "GRC-HCG"):
        async with connect_node(url, fed, origin, tmp_path) as node:
            for priority, n in ((Priority.ROUTINE, 12), (Priority.URGENT, 40)):
                sealed = _sealed(node, priority, n)
                sent[(origin, priority)] = [s.header.id for s in sealed]
                await _send(nc, sealed)
    total = sum(len(ids) for ids in sent.values())
    async with running_broker(url, fed) as broker:
        await _routed(nc, total)
    # ITA-GDF's 40 urgent envelopes were fetched ahead of GRC-HCG's: past its share of a batch
    # (16), the rest waited for the next one while GRC-HCG's went; the metric counts them.
    deferred = "palermo_broker_lane_deferred_total"
    assert (broker.metrics.registry.get_sample_value(deferred, {"originator": "ITA-GDF"}) or 0) > 0
    # Small urgent turns (4, at most 2 per originator), one routine delivery after every two:
    # the 80 urgent deliveries wait throughout, and routine must still move.
    delivery = DeliveryOptions(
        fetch_batch=4,
        lanes=LaneShares(routine_share=2, routine_slice=1, urgent_per_originator=2,
                         urgent_window=4),
    )  # fmt: skip
    async with _partner(url, fed, tmp_path, delivery) as mlt:
        await _stored(mlt, total)
    sample = mlt.metrics.registry.get_sample_value
    assert (sample("palermo_node_lane_deferred_total", {"originator": "ITA-GDF"}) or 0) > 0
    stored = [i for _, i in inbox_ids(tmp_path / PARTNER / "inbox.db")]
    urgent = {i for (_, p), ids in sent.items() if p is Priority.URGENT for i in ids}
    last_urgent = max(stored.index(i) for i in urgent)
    routine_before = [i for i in stored[:last_urgent] if i not in urgent]
    assert len(routine_before) >= 10, len(routine_before)
    for (origin, priority), ids in sent.items():
        assert [i for i in stored if i in set(ids)] == ids, (origin, priority)
    await nc.close()


async def test_a_subject_in_another_lane_than_the_signed_priority_is_refused(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    nc = await nats.connect(url)
    js = nc.jetstream()
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        [urgent] = _sealed(ita, Priority.URGENT, 1)
        [routine] = _sealed(ita, Priority.ROUTINE, 1)
        [direct] = _sealed(ita, Priority.URGENT, 1)
    # Jumping the queue: a routine envelope on the urgent lane; and an urgent one on routine.
    await js.publish(publish_subject(routine.header) + ".urgent", routine.data)
    await js.publish(publish_subject(urgent.header).removesuffix(".urgent"), urgent.data)
    async with running_broker(url, fed):

        async def dead() -> bool:
            return await stream_count(nc, "PLM_DEAD") >= 2

        await wait_for(dead, within=WITHIN)
    letters = await read_all(nc, "PLM_DEAD")
    assert sorted(m.headers["Palermo-Reason-Code"] for m in letters) == ["subject_mismatch"] * 2
    assert await stream_count(nc, "PLM_DLV") == 0
    # A broker that demoted an alert to the routine lane: the node refuses the delivery.
    wrong = deliver_subject(PARTNER, direct.header).removesuffix(".urgent")
    await js.publish(wrong, direct.data, headers={"Nats-Msg-Id": f"{direct.header.id}.x"})
    async with _partner(url, fed, tmp_path) as mlt:

        async def refused() -> bool:
            return mlt.refused >= 1

        await wait_for(refused, within=WITHIN)
        assert mlt.received == 0
    await nc.close()


async def test_upgrading_narrows_the_old_consumer_in_place_and_keeps_its_backlog(
    nats_url: str,
) -> None:
    """A deployment from before the lanes: PLM_PUB on plm.pub.> and the broker's one consumer
    filtered plm.pub.>, an envelope waiting. 'streams create' narrows the stream, the new broker
    narrows the consumer and adds the urgent one: the waiting envelope is still there."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="PLM_PUB", subjects=["plm.pub.>"],
                                     retention=RetentionPolicy.WORK_QUEUE))  # fmt: skip
    old = ConsumerConfig(
        durable_name=CONSUMER, filter_subject="plm.pub.>", ack_policy=AckPolicy.EXPLICIT
    )
    await js.add_consumer("PLM_PUB", old)
    await js.publish("plm.pub.ITA-GDF.report.central-med.routes", b"waiting")
    await ensure_streams(js, StreamLimits())
    lanes = await broker_lanes(nc, js, BrokerOptions(fetch_timeout_s=0.2), BrokerMetrics())
    try:
        routine = await js.consumer_info("PLM_PUB", CONSUMER)
        urgent = await js.consumer_info("PLM_PUB", URGENT_CONSUMER)
        assert routine.config.filter_subject == "plm.pub.*.*.*.*"
        assert routine.num_pending == 1
        assert urgent.config.filter_subject == "plm.pub.*.*.*.*.*"
        await js.publish("plm.pub.ITA-GDF.report.central-med.routes.urgent", b"alert")
        # Both lanes deliver: the backlog kept from before the upgrade, and the new urgent lane
        # (which lane's fetch answers first is up to the server: urgent-first among what is
        # fetched is tests/test_lanes.py's and the overtaking test's to show).
        taken: dict[str, list[tuple[str, bytes]]] = {}
        for _ in range(50):
            turn = await lanes.take()
            if turn is not None:
                taken.setdefault(turn[0], []).extend((m.subject, m.data) for m in turn[1])
                for m in turn[1]:
                    await m.ack()
            if len(taken) == 2:
                break
        assert {
            ROUTINE: [("plm.pub.ITA-GDF.report.central-med.routes", b"waiting")],
            URGENT: [("plm.pub.ITA-GDF.report.central-med.routes.urgent", b"alert")],
        } == taken
    finally:
        for msg in await lanes.close():
            await msg.nak()
    await nc.close()
