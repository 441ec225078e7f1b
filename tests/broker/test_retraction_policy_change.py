"""A retraction reaches the original recipients whatever the policy says now (issue 12, item 9):
membership is the only condition, at the broker and at the receiving node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from node.service import Node
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from tests.harness import (
    envelope,
    example,
    publish,
    publish_document,
    read_all,
    running_nodes,
    standing_policy_denying,
    start_broker_process,
    stop_process,
    wait_for,
    write_broker_config,
)

AGENCIES = ("ITA-GDF", "MLT-AFM")


@dataclass
class Live:
    fed: DevFederation
    nodes: dict[str, Node]


@pytest.fixture
async def live(federated_url: str, fed: DevFederation, tmp_path: Path) -> AsyncIterator[Live]:
    """A broker process following the directory, and the ITA-GDF and MLT-AFM nodes running."""
    url = federated_url
    broker = start_broker_process(write_broker_config(tmp_path, fed, url), tmp_path / "b.log")
    try:
        async with running_nodes(url, fed, AGENCIES, tmp_path) as nodes:
            yield Live(fed, nodes)
    finally:
        assert 0 == stop_process(broker)


async def test_retraction_reaches_a_recipient_the_originator_now_denies(
    live: Live, nats_server: NatsServer
) -> None:
    """ITA-GDF sends MLT-AFM a report, then adds 'deny MLT-AFM' to its standing policy, then
    retracts: MLT-AFM's node purges the report and sends its signed confirmation."""
    fed, ita, mlt = live.fed, live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
    sealed = await ita.publish(example("01"), to=["MLT-AFM"])

    async def stored() -> bool:
        return mlt.inbox.seen(sealed.header.id)

    await wait_for(stored, within=20)
    url = nats_server.client_url
    await publish_document(url, fed, standing_policy_denying(fed, "ITA-GDF", "MLT-AFM"))
    # The broker has taken the new policy once a new report to MLT-AFM is denied.
    nc = await nats.connect(url)
    probe = envelope(fed, recipients=["MLT-AFM"])
    await publish(nc, [probe])

    async def probe_denied() -> bool:
        dead = await read_all(nc, "PLM_DEAD", "plm.dead.ITA-GDF.policy")
        return any(m.headers.get("Palermo-Envelope-Id") == probe[0].id for m in dead)

    await wait_for(probe_denied, within=20)

    async def node_denies_too() -> bool:
        # MLT-AFM's own view has the deny as well: its node must act on the retraction anyway.
        held = mlt.policy.agency_policies.get("ITA-GDF")
        return (
            held is not None
            and not mlt.policy.decide(probe[0], "MLT-AFM", probe[0].created).allowed
        )

    await wait_for(node_denies_too, within=20)
    retraction = await ita.retract(sealed.header.id, "wrong vessel identified")

    async def answered() -> bool:
        rows = await ita.delivery_status(sealed.header.id)
        if rows.get("MLT-AFM", {}).get("status") == "purged":
            return True
        dead = await read_all(nc, "PLM_DEAD", "plm.dead.ITA-GDF.>")
        if any(m.headers.get("Palermo-Envelope-Id") == retraction.id for m in dead):
            return True  # the broker refused it
        answer = (await ita.delivery_status(retraction.id)).get("MLT-AFM", {})
        return answer.get("status") == "refused"  # MLT-AFM's node refused it

    await wait_for(answered, within=30)
    await nc.close()
    status = (await ita.delivery_status(sealed.header.id)).get("MLT-AFM", {}).get("status")
    entry, content = mlt.inbox.show(sealed.header.id)
    assert ("purged", None, "retracted: wrong vessel identified") == (
        status,
        content,
        entry.purge_reason,
    )
