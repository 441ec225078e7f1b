"""Streams full: the publisher gets a typed error that says what is full and what to do, and
nothing already accepted is lost; a full PLM_DLV leaves envelopes pending, never acked away."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import nats
import nats.aio.client
from nats.aio.client import Client
from nats.js.api import StreamConfig

from broker.service import CONSUMER, EXHAUSTED, URGENT_CONSUMER, BrokerOptions
from broker.streams import StreamLimits, ensure_streams
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.directory import Directory
from protocol.transport import PublishRejected
from schemas import EnvelopeHeader
from tests.harness import (
    connect_node,
    envelope,
    example,
    inbox_ids,
    palermo,
    publish,
    run_until_stored,
    running_broker,
    stream_count,
    stream_messages,
    wait_for,
)

PARTNER = "MLT-AFM"
FED_ORIGINATOR = "ITA-GDF"  # tests.harness.envelope's default originator
Sealed = tuple[EnvelopeHeader, bytes]


async def _federation(url: str, fed: DevFederation, limits: StreamLimits) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js, limits)
    directory = Directory(js, fed.trust_store(), fed.policy_store())
    for doc in fed.documents():
        await directory.publish(doc)
    await nc.close()


async def _full_delivery_stream(
    url: str, fed: DevFederation, max_msgs: int
) -> tuple[nats.aio.client.Client, StreamConfig]:
    """The federation with PLM_DLV capped at ``max_msgs``; a connection and the stream config
    (set ``max_msgs = -1`` on it and update the stream to make room again)."""
    await _federation(url, fed, StreamLimits())
    nc = await nats.connect(url)
    js = nc.jetstream()
    dlv = (await js.stream_info("PLM_DLV")).config
    dlv.max_msgs = max_msgs
    await js.update_stream(dlv)
    return nc, dlv


async def test_full_publish_stream_tells_the_publisher_and_keeps_what_it_accepted(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    url = nats_server.client_url
    fed = DevFederation.build(datetime.now(UTC))
    await _federation(url, fed, StreamLimits(max_pub_bytes=64 * 1024))
    accepted: list[str] = []
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        refused: PublishRejected | None = None
        for _ in range(1000):  # far more than 64 KiB of envelopes
            try:
                accepted.append((await ita.publish(example("01"), to=[PARTNER])).header.id)
            except PublishRejected as exc:
                refused = exc
                break
    assert accepted
    assert refused is not None
    assert "stream for this subject is full (maximum bytes exceeded)" in refused.reason
    assert "retry later" in refused.reason
    nc = await nats.connect(url)
    assert len(accepted) == await stream_count(nc, "PLM_PUB")
    await nc.close()
    # The broker drains the stream: every accepted report reaches the partner, once.
    async with (
        running_broker(url, fed),
        connect_node(url, fed, PARTNER, tmp_path) as mlt,
    ):
        await run_until_stored(mlt, len(accepted), within=60)
    assert sorted(accepted) == sorted(i for _, i in inbox_ids(tmp_path / PARTNER / "inbox.db"))


async def test_full_delivery_stream_keeps_envelopes_pending_until_there_is_room(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """PLM_DLV refuses copies (full): the broker must not ack those envelopes; once the operator
    makes room, every one is delivered, once."""
    url = nats_server.client_url
    fed = DevFederation.build(datetime.now(UTC))
    nc, dlv = await _full_delivery_stream(url, fed, max_msgs=3)
    js = nc.jetstream()
    sent: list[str] = []
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        for _ in range(8):
            sent.append((await ita.publish(example("01"), to=[PARTNER])).header.id)
    async with running_broker(url, fed) as broker:

        async def refused_and_pending() -> bool:
            try:  # both lanes (the example report is urgent: decision 0032)
                infos = [await js.consumer_info("PLM_PUB", c) for c in (CONSUMER, URGENT_CONSUMER)]
            except nats.js.errors.NotFoundError:  # the broker has not subscribed yet
                return False
            return (
                await stream_count(nc, "PLM_DLV") == 3
                and sum(info.num_redelivered for info in infos) > 0
                and await stream_count(nc, "PLM_PUB") == 5
            )

        await wait_for(refused_and_pending, within=30)
        assert broker.processed == 3
        dlv.max_msgs = -1
        await js.update_stream(dlv)
        async with connect_node(url, fed, PARTNER, tmp_path) as mlt:
            await run_until_stored(mlt, len(sent), within=60)
    assert 0 == await stream_count(nc, "PLM_PUB")
    assert 8 == await stream_count(nc, "PLM_DLV")
    assert 0 == await stream_count(nc, "PLM_DEAD")
    await nc.close()
    assert sorted(sent) == sorted(i for _, i in inbox_ids(tmp_path / PARTNER / "inbox.db"))


@asynccontextmanager
async def _stranded(url: str) -> AsyncIterator[tuple[Client, StreamConfig, list[Sealed]]]:
    """8 envelopes for PARTNER, PLM_DLV capped at 3, a broker that gives up after 2 attempts:
    yields (connection, PLM_DLV config, envelopes) inside the running broker once PLM_PUB is
    empty, that is once 3 are delivered and 5 dead-lettered as redelivery_exhausted."""
    fed = DevFederation.build(datetime.now(UTC))
    nc, dlv = await _full_delivery_stream(url, fed, max_msgs=3)
    items = [envelope(fed, recipients=[PARTNER]) for _ in range(8)]
    await publish(nc, items)
    options = BrokerOptions(fetch_timeout_s=0.2, max_deliver=2, nak_delay_s=0.1)
    async with running_broker(url, fed, options):

        async def settled() -> bool:
            return 0 == await stream_count(nc, "PLM_PUB")

        await wait_for(settled, within=30)
        yield nc, dlv, items


async def test_envelopes_that_exhaust_their_attempts_are_dead_lettered_not_stranded(
    nats_server: NatsServer,
) -> None:
    """PLM_DLV stays full past the broker's last attempt: each refused envelope goes to PLM_DEAD
    with the reason and leaves PLM_PUB, rather than sit there where no consumer offers it again."""
    async with _stranded(nats_server.client_url) as (nc, _, items):
        pass  # the broker has settled every envelope: look at what it left in the streams
    dead = await stream_messages(nc, "PLM_DEAD")
    delivered = await stream_messages(nc, "PLM_DLV")
    await nc.close()
    assert 3 == len(delivered)
    assert 5 == len(dead)
    assert {EXHAUSTED} == {m.headers["Palermo-Reason-Code"] for m in dead}
    assert all("max_deliver" in m.headers["Palermo-Reason"] for m in dead)
    assert all("republish" in m.headers["Palermo-Reason"] for m in dead)
    # Every envelope is accounted for: delivered, or kept whole in PLM_DEAD for republishing.
    # (a delivery copy carries the envelope's bytes unchanged)
    assert {data for _, data in items} == {m.data for m in dead} | {m.data for m in delivered}


async def test_stranded_envelopes_are_delivered_once_the_operator_republishes_them(
    nats_server: NatsServer,
) -> None:
    """After 'redelivery_exhausted', room is made and 'palermo dead republish --all-exhausted'
    runs: every envelope reaches the partner exactly once, none is refused as a replay of
    itself, and the CLI refuses to republish a letter whose code a retry cannot fix."""
    url = nats_server.client_url
    async with _stranded(url) as (nc, dlv, items):
        dlv.max_msgs = -1
        await nc.jetstream().update_stream(dlv)
        listed = await palermo("dead", "list", "--nats", url, "--json")
        assert 0 == listed.returncode, listed.stderr + listed.stdout
        letters = json.loads(listed.stdout)
        assert 5 == len(letters)
        assert all(row["republishable"] and row["code"] == EXHAUSTED for row in letters)
        done = await palermo("dead", "republish", "--all-exhausted", "--nats", url, "--json")
        assert 0 == done.returncode, done.stderr + done.stdout
        assert [True] * 5 == [row["republished"] for row in json.loads(done.stdout)]

        async def all_delivered() -> bool:
            return 8 == await stream_count(nc, "PLM_DLV")

        await wait_for(all_delivered, within=30)
        # The same letters again within the duplicate window: JetStream drops them.
        again = await palermo("dead", "republish", "--all-exhausted", "--nats", url, "--json")
        assert [False] * 5 == [row["republished"] for row in json.loads(again.stdout)]
    delivered = await stream_messages(nc, "PLM_DLV")
    dead = await stream_messages(nc, "PLM_DEAD")
    await nc.close()
    assert sorted(data for _, data in items) == sorted(m.data for m in delivered)
    assert 5 == len(dead), "a republished envelope was refused (as a replay of itself?)"


async def test_a_stranded_envelope_retracted_since_is_not_republished(
    nats_server: NatsServer,
) -> None:
    """One of the stranded envelopes is retracted meanwhile (the void marker the broker writes
    for every retraction it accepts): 'palermo dead republish SEQ' refuses it, exit code 2 with
    code retracted, and publishes nothing; --all-exhausted republishes the other four only."""
    url = nats_server.client_url
    async with _stranded(url) as (nc, dlv, items):
        dlv.max_msgs = -1
        await nc.jetstream().update_stream(dlv)
        [first, *_] = await stream_messages(nc, "PLM_DEAD")
        ident = next(h.id for h, data in items if data == first.data)
        await nc.jetstream().publish(f"plm.void.{FED_ORIGINATOR}.{ident}", b"retraction-1")
        done = await palermo("dead", "republish", str(first.seq), "--nats", url, "--json")
        assert 2 == done.returncode, done.stdout + done.stderr
        error = json.loads(done.stdout or done.stderr)["error"]
        assert "retracted" == error["code"]
        assert f"{ident} was retracted by its originator {FED_ORIGINATOR}" in error["reason"]
        assert 3 == await stream_count(nc, "PLM_DLV")
        done = await palermo("dead", "republish", "--all-exhausted", "--nats", url, "--json")
        assert 0 == done.returncode, done.stderr + done.stdout
        rows = {row["seq"]: row for row in json.loads(done.stdout)}
        assert [True] * 4 == [r["republished"] for s, r in rows.items() if s != first.seq]
        assert not rows[first.seq]["republished"]
        assert "retraction-1" in rows[first.seq]["retracted"]

        async def delivered() -> bool:
            return 7 == await stream_count(nc, "PLM_DLV")

        await wait_for(delivered, within=30)
    assert first.data not in {m.data for m in await stream_messages(nc, "PLM_DLV")}
    await nc.close()


async def test_a_refused_envelope_cannot_be_republished(nats_server: NatsServer) -> None:
    """A policy refusal in PLM_DEAD: 'palermo dead republish SEQ' says why not, exit code 2."""
    url = nats_server.client_url
    fed = DevFederation.build(datetime.now(UTC))
    await _federation(url, fed, StreamLimits())
    nc = await nats.connect(url)
    await publish(nc, [envelope(fed, recipients=[PARTNER], rel_to=("AUS-ABF",))])
    async with running_broker(url, fed):

        async def refused() -> bool:
            return 1 <= await stream_count(nc, "PLM_DEAD")

        await wait_for(refused, within=30)
    [letter] = await stream_messages(nc, "PLM_DEAD")
    await nc.close()
    done = await palermo("dead", "republish", str(letter.seq), "--nats", url, "--json")
    assert 2 == done.returncode, done.stdout + done.stderr
    error = json.loads(done.stdout or done.stderr)["error"]
    assert "input_error" == error["code"]
    assert "would be refused again" in error["reason"]


async def test_dead_commands_on_a_dead_letter_stream_never_written_to(
    nats_server: NatsServer,
) -> None:
    """A fresh federation: PLM_DEAD is empty (first sequence 0); list and republish say so."""
    url = nats_server.client_url
    await _federation(url, DevFederation.build(datetime.now(UTC)), StreamLimits())
    listed = await palermo("dead", "list", "--nats", url, "--json")
    assert 0 == listed.returncode, listed.stdout + listed.stderr
    assert [] == json.loads(listed.stdout)
    done = await palermo("dead", "republish", "--all-exhausted", "--nats", url, "--json")
    assert 0 == done.returncode, done.stdout + done.stderr
    assert [] == json.loads(done.stdout)
