"""A publish whose acknowledgement does not come is sent again under the same Nats-Msg-Id, and
JetStream stores it once: a paused nats-server (SIGSTOP) outlasts the first attempt, resumes
during the second, and the report is in PLM_PUB exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import nats
import pytest

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from tests.harness import connect_node, example

# nats-py's JetStream publish waits 5 s for the acknowledgement: pause the server longer than
# that, so the first attempt times out and the second one is what the server answers.
PAUSE_S = 6.5


@pytest.mark.slow
async def test_unacknowledged_publish_is_sent_again_and_stored_once(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    pid = nats_server.pid
    assert pid is not None
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        os.kill(pid, signal.SIGSTOP)
        try:
            publishing = asyncio.create_task(ita.publish(example("01"), to=["MLT-AFM"]))
            await asyncio.sleep(PAUSE_S)
            assert not publishing.done(), "the publish returned while the server was paused"
        finally:
            os.kill(pid, signal.SIGCONT)
        sealed = await asyncio.wait_for(publishing, timeout=30)
        retries = ita.metrics.registry.get_sample_value("palermo_node_publish_retries_total")
    assert retries is not None
    assert retries >= 1
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("PLM_PUB")
        assert 1 == info.state.messages, "the retry must not store a second copy"
        stored = await js.get_msg("PLM_PUB", info.state.first_seq)
        assert stored.headers is not None
        assert sealed.header.id == stored.headers["Nats-Msg-Id"]
        assert sealed.data == stored.data
    finally:
        await nc.close()
