"""The pipelined publisher resolves every future: stored, refused, or timed out."""

from __future__ import annotations

import nats
from nats.js.api import StreamConfig

from palermo.natsserver import NatsServer
from protocol.jspublish import WRONG_LAST_SEQUENCE, PipelinedPublisher
from protocol.transport import PublishRejected


async def test_refusals_resolve_instead_of_hanging(nats_server: NatsServer) -> None:
    """Stored, wrong-expected-sequence, full stream and no stream each give a definite answer."""
    nc = await nats.connect(nats_server.client_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"], max_msgs=2, discard="new"))
    pub = PipelinedPublisher(nc, timeout_s=5)
    futures = [
        await pub.publish("s.a", b"1"),
        await pub.publish("s.a", b"2", {"Nats-Expected-Last-Subject-Sequence": "0"}),
        await pub.publish("s.b", b"3"),
        await pub.publish("s.c", b"4"),
        await pub.publish("nowhere.x", b"5"),
    ]
    results = await pub.settle(futures)
    await nc.close()
    assert 1 == results[0].seq  # type: ignore[union-attr]
    assert isinstance(results[1], PublishRejected)
    assert WRONG_LAST_SEQUENCE == results[1].err_code
    assert 2 == results[2].seq  # type: ignore[union-attr]
    assert isinstance(results[3], PublishRejected)
    assert "maximum messages" in results[3].reason
    assert isinstance(results[4], PublishRejected)
