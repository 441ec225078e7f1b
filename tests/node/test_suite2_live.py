"""Suite 2 on the live stack (issue 20): a federation that requires the post-quantum suite for
TLP:RED, a recipient that rotates from X25519 to a hybrid key without losing anything, a RED
report sealed with suite 2 delivered, and one sealed with suite 1 refused by the broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.reports import seal_report
from node.service import Node
from palermo.devfed import DevFederation
from policies import SUITE_BELOW_POLICY, Federation
from protocol.envelope import SUITE_MLKEM768_X25519, SUITE_X25519, decode, seal
from protocol.keys import EncryptionKey
from protocol.transport import publish_subject
from schemas import EnvelopeHeader, Handling, new_uuid7, partition
from schemas.errors import InputError
from tests.harness import example, read_all, running_federation, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
RED = Handling(tlp="RED", rel_to=["MLT-AFM"])


@pytest.fixture
def fed() -> DevFederation:
    """The example federation, whose rules require suite 2 for TLP:RED."""
    federation = Federation.from_toml((EXAMPLES / "federation.toml").read_text())
    data = federation.model_dump(mode="json")
    data["rules"]["suite_2_for_tlp"] = ["RED"]
    return DevFederation.build(datetime.now(UTC), federation=Federation.model_validate(data))


@pytest.fixture
async def nodes(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[dict[str, Node]]:
    async with running_federation(federated_url, fed, ("ITA-GDF", "MLT-AFM"), tmp_path) as running:
        yield running


async def _dead_letters(ita: Node, envelope: str) -> list[Any]:
    dead = await read_all(ita.nc, "PLM_DEAD", "plm.dead.ITA-GDF.policy")
    return [m for m in dead if m.headers.get("Palermo-Envelope-Id") == envelope]


async def test_red_needs_suite_2_and_rotation_to_hybrid_loses_nothing(
    nodes: dict[str, Node], fed: DevFederation
) -> None:
    ita, mlt = nodes["ITA-GDF"], nodes["MLT-AFM"]
    red = example("01").model_copy(update={"handling": RED})

    # Before the rotation: AMBER goes under suite 1; RED cannot go at all, and says why.
    before = await ita.publish(example("01"), to=["MLT-AFM"])
    assert SUITE_X25519 == decode(before.data).suite
    with pytest.raises(InputError, match=r"requires suite 2 for TLP:RED.*keys rotate --pq"):
        await ita.publish(red, to=["MLT-AFM"])
    # Requests are TLP:RED too: refused before sending, not dead-lettered at the broker.
    with pytest.raises(InputError, match=r"requires suite 2 for TLP:RED.*keys rotate --pq"):
        await ita.request("How many persons on board?", to="MLT-AFM")
    # Sealed before the rotation, published after it: must still open with the old key.
    during = seal_report(example("01"), ita.identity.signing, ["MLT-AFM"], ita.trust, ita.policy,
                         datetime.now(UTC))  # fmt: skip

    bundle = await mlt.rotate_keys(EncryptionKey.generate("MLT-AFM", pq=True))
    assert [True, False] == [e.mlkem768 is not None for e in bundle.keys]

    async def publisher_sees_hybrid_key() -> bool:
        held = ita.trust.bundles.get("MLT-AFM")
        return held is not None and held.seq == bundle.seq

    await wait_for(publisher_sees_hybrid_key, within=20)
    await ita.js.publish(publish_subject(during.header), during.data,
                         headers={"Nats-Msg-Id": during.header.id})  # fmt: skip

    # After: RED is sealed with suite 2 and delivered; so is AMBER, every key now being hybrid.
    sealed_red = await ita.publish(red, to=["MLT-AFM"])
    asked = await ita.request("How many persons on board?", to="MLT-AFM")
    after = await ita.publish(example("01"), to=["MLT-AFM"])
    assert SUITE_MLKEM768_X25519 == decode(sealed_red.data).suite == decode(after.data).suite

    # A careless node seals RED with suite 1 (to the X25519 part of the hybrid key).
    weak = _sealed_with_suite_1(ita, red)
    await ita.js.publish(publish_subject(weak[0]), weak[1], headers={"Nats-Msg-Id": weak[0].id})

    async def judged() -> bool:
        stored = all(mlt.inbox.seen(s.header.id) for s in (before, during, sealed_red, after))
        arrived = [asked.id] == [m["id"] for m in mlt.inbox.messages("request")]
        return stored and arrived and bool(await _dead_letters(ita, weak[0].id))

    await wait_for(judged, within=60)
    [dead] = await _dead_letters(ita, weak[0].id)
    assert ("MLT-AFM", SUITE_BELOW_POLICY) == (
        dead.headers["Palermo-Recipient"],
        dead.headers["Palermo-Reason-Code"],
    )
    assert not mlt.inbox.seen(weak[0].id)
    assert 0 == mlt.refused


def _sealed_with_suite_1(ita: Node, report: Any) -> tuple[EnvelopeHeader, bytes]:
    parts = partition(report)
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.identity.signing.kid,
        created=datetime.now(UTC), kind=report.kind, priority=report.priority,
        route=report.route, category=report.category, handling=report.handling,
        schema_=report.schema_, recipients=["MLT-AFM"],
        sections=parts.sections(),
    )  # fmt: skip
    keys = ita.trust.encryption_keys("MLT-AFM", datetime.now(UTC))
    assert keys[0].hybrid
    sections = {
        sid: (msgpack.packb(body, use_bin_type=True), [keys[0]])
        for sid, body in parts.section_bodies().items()
    }
    body = msgpack.packb(parts.main, use_bin_type=True)
    return header, seal(header, body, ita.identity.signing, [keys[0]], sections, suite=1)


async def test_keys_rotate_pq_writes_a_hybrid_key_and_publishes_it(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """``palermo keys rotate --pq`` (the command, against the live directory): a hybrid key file
    beside the old one, a bundle listing it first with the X25519 key kept for the overlap, and
    a node.toml naming both loads an identity whose newest key is hybrid."""
    import asyncio
    import subprocess

    import nats

    from node.config import NodeSettings
    from protocol.keys import HybridPrivateKey, load_private_key
    from tests.harness import PALERMO, follow_directory

    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "MLT-AFM", federated_url)
    old = fed.agencies["MLT-AFM"].encryption
    done = await asyncio.to_thread(
        subprocess.run,
        [PALERMO, "keys", "rotate", "--config", str(config), "--overlap-days", "3", "--pq"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    assert "hybrid ML-KEM-768 + X25519 key" in done.stdout
    keys_dir = tmp_path / "fed" / "agencies" / "MLT-AFM"
    (new_file,) = [p for p in keys_dir.glob("MLT-AFM.enc.*.pem") if old.kid not in p.name]
    assert isinstance(load_private_key(new_file), HybridPrivateKey)

    text = config.read_text().replace("encryption_keys = [", f'encryption_keys = ["{new_file}", ')
    config.write_text(text)
    _, identity = NodeSettings.load(config).keys()
    assert [True, False] == [k.hybrid for k in identity]
    assert old.kid == identity[1].kid

    nc = await nats.connect(federated_url)
    view = await follow_directory(nc, fed)
    try:

        async def hybrid_listed() -> bool:
            bundle = view.store.bundles.get("MLT-AFM")
            return bundle is not None and bundle.keys[0].mlkem768 is not None

        await wait_for(hybrid_listed, within=20)
        bundle = view.store.bundles["MLT-AFM"]
        assert [identity[0].kid, old.kid] == [e.kid for e in bundle.keys]
    finally:
        await view.close()
        await nc.close()
