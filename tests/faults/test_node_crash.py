"""A node process SIGKILLed while it stores deliveries, then restarted: the SQLite inbox passes
integrity_check, every delivery is stored exactly once and readable (un-acked ones come back)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import nats
import pytest

from node.inbox import Inbox, StorageKey
from palermo.devfed import DevFederation
from palermo.natsserver import free_port
from tests.harness import (
    PALERMO,
    connect_node,
    example,
    publish,
    running_broker,
    seal_many,
    stop_process,
    stream_count,
    wait_for,
)

N = 800
PARTNER = "MLT-AFM"


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [PALERMO, "node", "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            # A 2 s ack_wait (the node setting) instead of 30 s, so the batch in hand at the kill
            # comes back quickly.
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "PALERMO_NODE_HTTP_PORT": str(free_port()),
                "PALERMO_NODE_ACK_WAIT_S": "2",
            },
        )


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("SELECT count(*) FROM reports").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not created yet
        return 0
    finally:
        con.close()


@pytest.mark.slow
async def test_node_sigkill_during_inbox_writes_keeps_the_inbox_whole(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    url = federated_url
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", PARTNER, url)
    db = tmp_path / "fed" / "state" / PARTNER / "inbox.db"
    async with connect_node(url, fed, "ITA-GDF", tmp_path) as ita:
        sealed = seal_many(ita, example("01"), [PARTNER], N)
    nc = await nats.connect(url)
    async with running_broker(url, fed):
        await publish(nc, [(s.header, s.data) for s in sealed])

        async def routed() -> bool:
            return await stream_count(nc, "PLM_DLV") >= N

        await wait_for(routed, within=120)
    await nc.close()
    first = _start(config, tmp_path / "node1.log")

    async def storing() -> bool:
        assert first.poll() is None, (tmp_path / "node1.log").read_text()
        return _rows(db) >= N // 10

    await wait_for(storing, within=120)
    assert -signal.SIGKILL == stop_process(first, signal.SIGKILL)
    killed_at = _rows(db)
    assert killed_at < N, "the kill should land while deliveries are still being stored"
    second = _start(config, tmp_path / "node2.log")

    async def all_stored() -> bool:
        return _rows(db) >= N

    await wait_for(all_stored, within=180)
    assert 0 == stop_process(second)
    con = sqlite3.connect(db)
    try:
        assert [("ok",)] == con.execute("PRAGMA integrity_check").fetchall()
        ids = [r[0] for r in con.execute("SELECT id FROM reports")]
    finally:
        con.close()
    assert sorted(ids) == sorted(s.header.id for s in sealed)
    inbox = Inbox(db, StorageKey.load_or_create(db.parent / "storage.key"))
    try:
        assert all(inbox.show(i)[1] is not None for i in ids)
    finally:
        inbox.close()
