"""A federation run on exactly what ``palermo deploy render`` wrote: real servers, TLS, nkeys,
subject permissions, a 3-server JetStream hub and an agency's own leafnode server."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import pytest_asyncio
from nats.js.api import ConsumerConfig

from node.config import NodeSettings
from node.service import Node
from protocol.settings import NatsSettings
from protocol.transport import connect
from schemas import Report
from schemas.errors import TransportError
from schemas.export import parse_report
from tests.harness import (
    RenderedServer,
    palermo,
    read_all,
    render_on_free_ports,
    start_broker_process,
    stop_process,
    wait_cluster,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
LEAF = "MLT-AFM"


@dataclass
class Deployment:
    out: Path
    manifest: dict[str, Any]
    hubs: list[RenderedServer]
    leaf: RenderedServer
    nodes: dict[str, Node]
    broker: subprocess.Popen[bytes]


def _report() -> Report:
    return parse_report(next(EXAMPLES.glob("01*.json")).read_text())


async def _publish_directory(out: Path) -> None:
    """What the operator does once the broker is up: publish every signed document."""
    docs = sorted(str(p) for p in (out / "fed" / "documents").glob("*.json"))
    done = await palermo(
        "directory", "publish", *docs, "--root", str(out / "fed" / "root.pub.json"),
        "--nats-config", str(out / "admin.toml"),
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr + done.stdout


async def _create_streams(out: Path, broker_toml: Path) -> None:
    """What the operator does before the first broker starts (docs/operations.md, 3)."""
    done = await palermo(
        "broker", "streams", "create", "--config", str(broker_toml),
        "--nats-config", str(out / "admin.toml"),
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr + done.stdout


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    out = tmp_path_factory.mktemp("deployed") / "fed"
    manifest = render_on_free_ports(out, leaves=(LEAF,))
    hubs = [RenderedServer(Path(s["config"])) for s in manifest["servers"]]
    leaf = RenderedServer(Path(manifest["agencies"][LEAF]["leafnode_config"]), jetstream=False)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(lambda: asyncio.gather(*(s.stop() for s in hubs)))
        await asyncio.gather(*(s.start() for s in hubs))
        await wait_cluster(hubs)
        stack.push_async_callback(leaf.stop)
        await leaf.start()
        # The operator creates the streams and the bucket; the broker's user may only check them.
        await _create_streams(out, Path(manifest["broker"]["config"]))
        # The broker as the real service process ('palermo broker run'), on the rendered TOML.
        log = out / "broker.log"
        with pytest.MonkeyPatch.context() as env:
            # Envelopes in flight to a killed server come back after ack_wait: keep it short.
            env.setenv("PALERMO_BROKER_ACK_WAIT_S", "5")
            broker = start_broker_process(Path(manifest["broker"]["config"]), log)
        stack.callback(stop_process, broker)

        async def broker_started() -> bool:
            assert broker.poll() is None, log.read_text()
            return "broker consuming" in log.read_text()

        await wait_for(broker_started, within=60)
        await _publish_directory(out)
        nodes: dict[str, Node] = {}
        tasks = []
        for agency in ("ITA-GDF", "GRC-HCG", LEAF):
            settings = NodeSettings.load(Path(manifest["agencies"][agency]["node_config"]))
            nodes[agency] = await stack.enter_async_context(Node.open(settings))
            tasks.append(asyncio.create_task(nodes[agency].run()))

        async def stop_nodes() -> None:
            for node in nodes.values():
                node.stop()
            await asyncio.gather(*tasks, return_exceptions=True)

        stack.push_async_callback(stop_nodes)
        yield Deployment(out, manifest, hubs, leaf, nodes, broker)


async def test_a_report_goes_from_a_to_b_and_to_the_agency_behind_a_leafnode(
    deployed: Deployment,
) -> None:
    """ITA-GDF (hub) -> GRC-HCG (hub) and MLT-AFM (leaf), with signed receipts back to ITA."""
    ita = deployed.nodes["ITA-GDF"]
    sealed = await ita.publish(_report(), to=["GRC-HCG", LEAF])
    assert ["GRC-HCG", LEAF] == sorted(sealed.recipients)

    async def stored() -> bool:
        return all(deployed.nodes[a].inbox.seen(sealed.header.id) for a in ("GRC-HCG", LEAF))

    await wait_for(stored, within=30)
    _, report = deployed.nodes[LEAF].inbox.show(sealed.header.id)
    assert _report() == report

    async def receipted() -> bool:
        return {"GRC-HCG", LEAF} <= set(await ita.delivery_status(sealed.header.id))

    await wait_for(receipted, within=30)
    status = await ita.delivery_status(sealed.header.id)
    assert {"GRC-HCG": "delivered", LEAF: "delivered"} == {
        a: r["status"] for a, r in status.items()
    }


async def test_an_embargoed_report_is_held_then_delivered_under_the_rendered_permissions(
    deployed: Deployment,
) -> None:
    """ITA-GDF embargoes a report a few seconds ahead: the broker's rendered user holds it in
    PLM_HOLD (R3), the server's schedule releases it at not_before, and GRC-HCG and MLT-AFM
    (behind its leafnode) store it then (decision 0020)."""
    ita = deployed.nodes["ITA-GDF"]
    until = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    report = _report()
    report = report.model_copy(
        update={"handling": report.handling.model_copy(update={"not_before": until})}
    )
    sealed = await ita.publish(report, to=["GRC-HCG", LEAF])
    held = await ita.delivery_status(sealed.header.id)
    assert {"GRC-HCG": "embargoed", LEAF: "embargoed"} == {a: r["status"] for a, r in held.items()}

    async def stored() -> bool:
        return all(deployed.nodes[a].inbox.seen(sealed.header.id) for a in ("GRC-HCG", LEAF))

    await wait_for(stored, within=60)
    assert datetime.now(UTC) >= until


async def _violations(deployed: Deployment, agency: str, action: Any) -> list[str]:
    """Run ``action(nc)`` on ``agency``'s credentials; the errors nats-server sent back."""
    settings = NodeSettings.load(Path(deployed.manifest["agencies"][agency]["node_config"]))
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        settings.nats_url, error_cb=on_error, allow_reconnect=False, **settings.connect_options()
    )
    try:
        await action(nc)
        await wait_for(lambda: _true(errors), within=10)
    finally:
        await nc.close()
    return errors


async def _true(items: list[str]) -> bool:
    return bool(items)


async def test_server_refuses_b_reading_c_deliveries(deployed: Deployment) -> None:
    """GRC-HCG's credentials: subscribing to plm.dlv.ITA-GDF.> is a server permission error."""

    async def subscribe(nc: Any) -> None:
        await nc.subscribe("plm.dlv.ITA-GDF.>")
        await nc.flush()

    errors = await _violations(deployed, "GRC-HCG", subscribe)
    assert any('permissions violation for subscription to "plm.dlv.ita-gdf.>"' in e.lower()
               for e in errors), errors  # fmt: skip


async def test_server_refuses_b_publishing_as_c(deployed: Deployment) -> None:
    """GRC-HCG's credentials: publishing on plm.pub.ITA-GDF.> is a server permission error."""

    async def publish(nc: Any) -> None:
        await nc.publish("plm.pub.ITA-GDF.alert.central-med.smuggling", b"forged")
        await nc.flush()

    errors = await _violations(deployed, "GRC-HCG", publish)
    denied = 'permissions violation for publish to "plm.pub.ita-gdf.alert.central-med.smuggling"'
    assert any(denied in e.lower() for e in errors), errors


async def test_the_leaf_link_cannot_publish_as_another_member(deployed: Deployment) -> None:
    """The leaf server's own hub user (leaf-MLT-AFM) is refused plm.pub.ITA-GDF.> by the hub."""
    node = NodeSettings.load(Path(deployed.manifest["agencies"][LEAF]["node_config"]))
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    options = node.model_copy(
        update={"nats_nkey_seed": deployed.out / "nkeys" / f"leaf-{LEAF}.nk", "nats_url":
                [deployed.manifest["servers"][1]["client_url"]], "nats_inbox_prefix": None}
    ).connect_options()  # fmt: skip
    nc = await nats.connect([deployed.manifest["servers"][1]["client_url"]],
                            error_cb=on_error, allow_reconnect=False, **options)  # fmt: skip
    try:
        await nc.publish("plm.pub.ITA-GDF.alert.central-med.smuggling", b"forged")
        await nc.flush()
        await wait_for(lambda: _true(errors), within=10)
    finally:
        await nc.close()
    assert any("plm.pub.ita-gdf" in e.lower() for e in errors), errors


async def test_server_refuses_b_creating_a_consumer_on_c_deliveries(deployed: Deployment) -> None:
    """The JetStream API call to read ITA-GDF's deliveries is refused by permissions too."""

    async def consume(nc: Any) -> None:
        config = ConsumerConfig(name="node-GRC-HCG", filter_subject="plm.dlv.ITA-GDF.>")
        with pytest.raises(nats.errors.TimeoutError):  # the server drops the request
            await nc.jetstream().add_consumer("PLM_DLV", config, timeout=2)

    errors = await _violations(deployed, "GRC-HCG", consume)
    assert any("permissions violation for publish" in e.lower() for e in errors), errors


async def test_plaintext_connection_to_the_tls_listener_is_refused(deployed: Deployment) -> None:
    """A client without TLS cannot talk to the hub at all."""
    url = deployed.manifest["servers"][0]["client_url"].replace("tls://", "nats://")
    with pytest.raises((nats.errors.Error, OSError, ssl.SSLError)):
        await nats.connect(url, allow_reconnect=False, connect_timeout=3, max_reconnect_attempts=0)


async def test_no_client_certificate_is_refused(deployed: Deployment) -> None:
    """mTLS: the right CA and nkey but no client certificate is refused."""
    settings = NodeSettings.load(Path(deployed.manifest["agencies"]["GRC-HCG"]["node_config"]))
    bare = settings.model_copy(update={"nats_tls_cert": None, "nats_tls_key": None})
    with pytest.raises((nats.errors.Error, OSError, ssl.SSLError)):
        await nats.connect(settings.nats_url, allow_reconnect=False, connect_timeout=3,
                           max_reconnect_attempts=0, **bare.connect_options())  # fmt: skip


async def _where(deployed: Deployment, missing: list[str]) -> str:
    """Where the missing reports are: for a failure message worth reading."""
    admin = NatsSettings.load(deployed.out / "admin.toml")
    async with connect(admin.nats_url, "palermo-admin", **admin.connect_options()) as nc:
        js = nc.jetstream()
        pub = (await js.stream_info("PLM_PUB")).state
        copies = await read_all(nc, "PLM_DLV", "plm.dlv.GRC-HCG.>")
        ids = {m.headers["Nats-Msg-Id"].split(".")[0] for m in copies if m.headers}
        broker = await js.consumer_info("PLM_PUB", "palermo-broker")
        node = await js.consumer_info("PLM_DLV", "node-GRC-HCG")
    return (
        f"{len(missing)} missing; in PLM_DLV: {len(set(missing) & ids)}; PLM_PUB holds "
        f"{pub.messages}; broker consumer pending={broker.num_pending} "
        f"ack_pending={broker.num_ack_pending} redelivered={broker.num_redelivered}; node "
        f"consumer pending={node.num_pending} ack_pending={node.num_ack_pending} "
        f"redelivered={node.num_redelivered}; broker log:\n"
        + "\n".join((deployed.out / "broker.log").read_text().splitlines()[-12:])
    )


async def test_killing_a_hub_server_mid_stream_loses_and_duplicates_nothing(
    deployed: Deployment,
) -> None:
    """40 reports ITA-GDF -> GRC-HCG; hub-1 is killed after 15: every one arrives, once."""
    ita, grc = deployed.nodes["ITA-GDF"], deployed.nodes["GRC-HCG"]
    sent: list[str] = []
    for i in range(40):
        if i == 15:
            await deployed.hubs[0].kill()
        for _attempt in range(100):
            try:
                sent.append((await ita.publish(_report(), to=["GRC-HCG"])).header.id)
                break
            except TransportError:  # reconnecting to another server: try again
                await asyncio.sleep(0.1)
    assert 40 == len(sent)

    async def arrived() -> bool:
        return all(grc.inbox.seen(i) for i in sent)

    try:
        await wait_for(arrived, within=60)
    except AssertionError as exc:
        missing = [i for i in sent if not grc.inbox.seen(i)]
        raise AssertionError(await _where(deployed, missing)) from exc
    assert deployed.broker.poll() is None, "the broker process exited"
    # Exactly one delivery copy per report in the R3 stream (read on the two live servers).
    admin = NatsSettings.load(deployed.out / "admin.toml")
    async with connect(admin.nats_url, "palermo-admin", **admin.connect_options()) as nc:
        copies = await read_all(nc, "PLM_DLV", "plm.dlv.GRC-HCG.>")
    delivered = [m.headers["Nats-Msg-Id"].split(".")[0] for m in copies if m.headers]
    assert sorted(sent) == sorted(i for i in delivered if i in set(sent))
    await deployed.hubs[0].start()
    await wait_cluster(deployed.hubs)


async def test_the_agency_behind_a_leafnode_sends(deployed: Deployment) -> None:
    """MLT-AFM publishes through its own server; ITA-GDF stores it and MLT gets the receipt."""
    mlt, ita = deployed.nodes[LEAF], deployed.nodes["ITA-GDF"]
    report = _report().model_copy(update={"originator": LEAF})
    sealed = await mlt.publish(report, to=["ITA-GDF"])

    async def stored() -> bool:
        return ita.inbox.seen(sealed.header.id)

    await wait_for(stored, within=30)

    async def receipted() -> bool:
        return "ITA-GDF" in await mlt.delivery_status(sealed.header.id)

    await wait_for(receipted, within=30)


async def test_the_operator_verifies_the_audit_chain_with_admin_credentials(
    deployed: Deployment,
) -> None:
    """'palermo audit verify --nats-config admin.toml' reads the R3 audit stream: it verifies."""
    # A delivery of its own, so the chain has an entry whichever xdist worker runs this test
    # (the module's other tests may run on another worker, with another deployment).
    await test_the_agency_behind_a_leafnode_sends(deployed)
    done = await palermo(
        "audit", "verify", "--broker-key", str(deployed.out / "fed" / "broker.pub.json"),
        "--nats-config", str(deployed.out / "admin.toml"), "--json",
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr + done.stdout
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert sum(c["entries"] for c in result["chains"]) >= 1
