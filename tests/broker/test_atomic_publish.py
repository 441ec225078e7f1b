"""Atomic batch publish (decision 0033): each message stored exactly once, whether the batch
commits, is refused (a duplicate, an existing replay marker) or the stream cannot take batches;
an envelope's messages are never split across batches."""

from __future__ import annotations

from collections.abc import Hashable

import nats
import pytest
from nats.js.api import StreamConfig

from broker._atomic import ATOMIC_LIMIT, AtomicPublisher, Publication, _chunks
from palermo.natsserver import NatsServer
from protocol.jspublish import WRONG_LAST_SEQUENCE, PipelinedPublisher, StoredAck
from protocol.transport import PublishRejected


@pytest.mark.parametrize(
    ("owners", "limit", "runs"),
    [
        ([], 4, []),
        (["a", "a", "b", "b", "b", "c"], 4, [[0, 1], [2, 3, 4, 5]]),
        (["a", "a", "b", "b", "b", "c"], 1, [[0, 1], [2, 3, 4], [5]]),
        (["a"] * 5 + ["b"], 4, [[0, 1, 2, 3, 4], [5]]),  # an owner too big keeps its run
    ],
)
def test_runs_never_split_an_owner(
    owners: list[Hashable], limit: int, runs: list[list[int]]
) -> None:
    assert runs == _chunks(owners, limit)


def _copies(envelopes: list[str], recipients: int) -> tuple[list[Publication], list[Hashable]]:
    items: list[Publication] = []
    owners: list[Hashable] = []
    for env in envelopes:
        for r in range(recipients):
            items.append((f"d.{r}.{env}", f"{env}/{r}".encode(), {"Nats-Msg-Id": f"{env}.{r}"}))
            owners.append(env)
    return items, owners


async def _stored(js: nats.js.JetStreamContext, stream: str) -> list[bytes]:
    info = await js.stream_info(stream)
    return [
        (await js.get_msg(stream, seq)).data or b""
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


async def test_copies_are_stored_once_through_batches_duplicates_and_disabled_streams(
    nats_server: NatsServer,
) -> None:
    nc = await nats.connect(nats_server.client_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="D", subjects=["d.>"], allow_atomic=True))
    await js.add_stream(StreamConfig(name="OLD", subjects=["old.>"]))
    publisher = PipelinedPublisher(nc, timeout_s=20)
    await publisher.start()
    atomic = AtomicPublisher(nc, publisher)

    # More messages than one batch may hold: several batches, each of whole envelopes.
    first, owners = _copies([f"e{i}" for i in range(250)], 5)
    results = await atomic.publish("D", first, owners)
    assert all(isinstance(r, StoredAck) for r in results)
    acks = {(r.stream, r.seq) for r in results if isinstance(r, StoredAck)}
    assert len(first) > ATOMIC_LIMIT
    assert 2 == len(acks)  # one answer per batch: 200 envelopes (1,000 copies), then 50
    # A redelivery: old copies refuse the batch; one by one they are duplicates, the new stored.
    again, owners = _copies(["e0", "e1", "new"], 5)
    results = await atomic.publish("D", again, owners)
    assert all(isinstance(r, StoredAck) for r in results)
    assert [r.duplicate for r in results if isinstance(r, StoredAck)] == [True] * 10 + [False] * 5
    stored = await _stored(js, "D")
    assert sorted(stored) == sorted(p for _, p, _ in first + again[10:])

    # A stream created before allow_atomic: refused as disabled, published one by one, and
    # remembered (the second call sends no batch at all).
    old = [(f"old.{i}", b"x", {"Nats-Msg-Id": f"o{i}"}) for i in range(6)]
    results = await atomic.publish("OLD", old, ["a"] * 3 + ["b"] * 3)
    assert all(isinstance(r, StoredAck) for r in results)
    assert "OLD" in atomic.disabled
    results = await atomic.publish("OLD", old, ["a"] * 3 + ["b"] * 3)
    assert all(isinstance(r, StoredAck) and r.duplicate for r in results)
    assert 6 == (await js.stream_info("OLD")).state.messages
    await nc.close()


async def test_an_existing_replay_marker_is_named_one_by_one(nats_server: NatsServer) -> None:
    """One marker already written refuses its batch; one by one, only that one is refused."""
    nc = await nats.connect(nats_server.client_url)
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(name="SEEN", subjects=["seen.>"], max_msgs_per_subject=1, allow_atomic=True)
    )
    publisher = PipelinedPublisher(nc, timeout_s=20)
    atomic = AtomicPublisher(nc, publisher)
    expect = {"Nats-Expected-Last-Subject-Sequence": "0"}
    await js.publish("seen.e2", b"earlier")
    markers: list[Publication] = [(f"seen.e{i}", str(i).encode(), expect) for i in range(5)]
    results = await atomic.publish("SEEN", markers, list(range(5)))
    refused = [i for i, r in enumerate(results) if isinstance(r, PublishRejected)]
    assert [2] == refused
    assert WRONG_LAST_SEQUENCE == results[2].err_code  # type: ignore[union-attr]
    assert 5 == (await js.stream_info("SEEN")).state.messages
    last = await js.get_last_msg("SEEN", "seen.e2")
    assert b"earlier" == last.data
    await nc.close()
