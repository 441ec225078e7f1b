"""``palermo dev up`` is the deployed stack (issue 15, item 2): its broker follows the directory
(a revocation reaches it within a second), every agency's node runs, and the federation it made
survives a restart unless ``--fresh`` is given."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats

from broker.config import DEV_STATE_DIR
from node.config import NodeSettings
from node.service import Node
from palermo.devstack import run_dev
from protocol.directory import Directory
from protocol.envelope import seal
from protocol.keys import KeyCard, SigningKey, load_private_key
from protocol.marks import REVOCATIONS_KEY
from protocol.settings import load_root_public
from protocol.transport import publish_subject
from protocol.trust import ROOT, RevocationEntry, RevocationList, TrustStore, sign_document
from protocol.view import PolicyStore
from protocol.watermarks import FILE_NAME
from schemas import EnvelopeHeader, Handling, new_uuid7
from tests.harness import EXAMPLES, example, inbox_ids, palermo, read_all, wait_for


@asynccontextmanager
async def dev_up(state_dir: Path, *, fresh: bool = False) -> AsyncIterator[str]:
    """``palermo dev up`` in this process until the block ends; yields the NATS URL."""
    ready, stop = asyncio.Event(), asyncio.Event()
    lines: list[str] = []
    task = asyncio.create_task(run_dev(state_dir, ready, lines.append, fresh=fresh, stop=stop))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=120, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # raises what stopped it
    assert ready.is_set(), "dev up did not become ready within 120 s"
    try:
        yield next(line.split()[1] for line in lines if line.startswith("NATS: "))
    finally:
        stop.set()
        await task


def _config(state_dir: Path, agency: str) -> Path:
    return state_dir / "fed" / f"{agency}.node.toml"


def _key(state_dir: Path, agency: str) -> SigningKey:
    path = state_dir / "fed" / "agencies" / agency / f"{agency}.sign.pem"
    private = load_private_key(path)
    return SigningKey(agency, private)  # type: ignore[arg-type]


def _card(state_dir: Path, agency: str) -> KeyCard:
    return KeyCard.from_json(
        (state_dir / "fed" / "agencies" / agency / f"{agency}.pub.json").read_text()
    )


async def test_every_node_runs_and_receives(tmp_path: Path) -> None:
    """A report ITA-GDF publishes is stored by MLT-AFM's node, which dev up runs."""
    state = tmp_path / "dev"
    async with dev_up(state), Node.open(NodeSettings.load(_config(state, "ITA-GDF"))) as ita:
        sealed = await ita.publish(example("01"), to=["MLT-AFM"])

        async def receipted() -> bool:
            status = await ita.delivery_status(sealed.header.id)
            return status.get("MLT-AFM", {}).get("status") == "delivered"

        await wait_for(receipted, within=30)
    stored = inbox_ids(state / "fed" / "state" / "MLT-AFM" / "inbox.db")
    assert [("ITA-GDF", sealed.header.id)] == stored


async def test_revocation_reaches_the_dev_broker_within_a_second(tmp_path: Path) -> None:
    """The root revokes MLT-AFM: the dev broker's own view has it within 1 s, and it then
    copies nothing more to MLT-AFM's delivery subject."""
    state = tmp_path / "dev"
    async with dev_up(state) as url:
        root = SigningKey(ROOT, load_private_key(state / "fed" / "root.sign.pem"))  # type: ignore[arg-type]
        now = datetime.now(UTC)
        revoked = RevocationList(seq=2, issued=now, entries=[
            RevocationEntry(agency="MLT-AFM", reason="compromised", revoked_at=now)])  # fmt: skip
        nc = await nats.connect(url)
        try:
            trust = TrustStore(load_root_public(state / "fed" / "root.pub.json"))
            directory = Directory(nc.jetstream(), trust, PolicyStore(trust.root, trust))
            marks = state / DEV_STATE_DIR / FILE_NAME

            def seq() -> int:
                held: dict[str, Any] = json.loads(marks.read_text())["marks"]
                return int(held.get(REVOCATIONS_KEY, {}).get("version", 0))

            async def broker_knows() -> bool:
                return marks.is_file() and seq() == 2

            await directory.publish(sign_document(revoked, root, ROOT))
            await wait_for(broker_knows, within=1.0, every=0.01)
            header, data = _envelope_to_mlt(state)
            await nc.jetstream().publish(
                publish_subject(header), data, headers={"Nats-Msg-Id": header.id}
            )

            async def refused() -> bool:
                dead = await read_all(nc, "PLM_DEAD", "plm.dead.ITA-GDF.policy")
                return any(m.headers.get("Palermo-Envelope-Id") == header.id for m in dead)

            await wait_for(refused, within=20)
            copies = await read_all(nc, "PLM_DLV", "plm.dlv.MLT-AFM.>")
        finally:
            await nc.close()
    assert [] == [m for m in copies if m.headers.get("Nats-Msg-Id") == f"{header.id}.MLT-AFM"]


def _envelope_to_mlt(state: Path) -> tuple[EnvelopeHeader, bytes]:
    """An envelope ITA-GDF seals for MLT-AFM from the keys dev up wrote (its own node would no
    longer seal for a revoked agency: this one tests the broker)."""
    ita = _key(state, "ITA-GDF")
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.kid, created=datetime.now(UTC),
        kind="report", route="central-med", category="routes",
        handling=Handling(tlp="AMBER", rel_to=["group:med-coastal"]), recipients=["MLT-AFM"],
    )  # fmt: skip
    return header, seal(header, b"x" * 64, ita, [_card(state, "MLT-AFM").encryption])


async def test_restart_resumes_the_federation_unless_fresh(tmp_path: Path) -> None:
    """Run again, dev up keeps its root, keys and inboxes; with --fresh it makes new ones."""
    state = tmp_path / "dev"
    async with dev_up(state), Node.open(NodeSettings.load(_config(state, "ITA-GDF"))) as ita:
        sealed = await ita.publish(example("01"), to=["MLT-AFM"])
    root = (state / "fed" / "root.pub.json").read_text()
    async with dev_up(state):
        async with Node.open(NodeSettings.load(_config(state, "MLT-AFM"))) as mlt:

            async def stored() -> bool:
                return mlt.inbox.seen(sealed.header.id)

            # Published before the restart: stored by MLT-AFM's node in either run.
            await wait_for(stored, within=30)
        assert root == (state / "fed" / "root.pub.json").read_text()
    async with dev_up(state, fresh=True):
        assert root != (state / "fed" / "root.pub.json").read_text()
        assert [] == inbox_ids(state / "fed" / "state" / "MLT-AFM" / "inbox.db")


async def test_embargoed_publish_from_the_command_line(tmp_path: Path) -> None:
    """On dev up: 'palermo publish' of a report with not_before ahead says it is held,
    'palermo status' shows "embargoed until …", and MLT-AFM's node stores it at not_before."""
    state = tmp_path / "dev"
    ita = str(_config(state, "ITA-GDF"))
    async with dev_up(state):
        # Counted once the stack is up (its start-up, consoles and officers included, varies a
        # lot on a busy machine), ahead by more than two 'palermo' process starts take.
        until = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
        data = json.loads(next(EXAMPLES.glob("01*.json")).read_text())
        data["handling"]["not_before"] = until.isoformat()
        report = tmp_path / "embargoed.json"
        report.write_text(json.dumps(data))
        sent = await palermo("publish", str(report), "--config", ita, "--to", "MLT-AFM")
        assert 0 == sent.returncode, sent.stderr
        assert (
            f"embargoed: the broker holds it and delivers it at {until.isoformat()}" in sent.stdout
        )
        ident = sent.stdout.split()[1]
        shown = await palermo("status", ident, "--config", ita)
        db = state / "fed" / "state" / "MLT-AFM" / "inbox.db"

        async def stored() -> bool:
            return ("ITA-GDF", ident) in inbox_ids(db)

        await wait_for(stored, within=30)
    assert f"embargoed until {until.isoformat()}" in shown.stdout, shown.stdout + shown.stderr
    assert datetime.now(UTC) >= until
