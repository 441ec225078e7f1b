"""Issue 12 item 5 (revocation lists): ``next_update``, what happens past it, and ``--renew``.

Decision 0014: every list says when the next is due; past it the list held stays in force
(deliveries go on, an older list is still refused), ``palermo_revocation_list_expired`` goes
to 1 and ``/readyz`` stays ready with a warning, until the operator re-issues the list with
``palermo federation revoke --renew``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from typer.testing import CliRunner, Result

from broker.metrics import BrokerMetrics
from node.metrics import NodeMetrics
from palermo.cli import app
from palermo.devfed import DevFederation
from palermo.natsserver import free_port
from protocol.settings import load_root_public
from protocol.trust import (
    ROOT,
    RevocationEntry,
    RevocationList,
    TrustStore,
    sign_document,
    verify_document,
)
from schemas.errors import TrustError
from tests.harness import (
    connect_node,
    envelope,
    http_get,
    publish,
    start_broker_process,
    stop_process,
    stream_count,
    wait_for,
    write_broker_config,
)
from tests.trust._support import DAY, NOW, ROOT_KEY, sign_raw, store

runner = CliRunner()
HOUR = timedelta(hours=1)


def _run(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def _list(fed: Path) -> RevocationList:
    signed = json.loads((fed / "revocations.json").read_text())
    return verify_document(signed, RevocationList, load_root_public(fed / "root.pub.json"), ROOT)


def _signed(seq: int, issued: datetime, next_update: datetime | None, *entries: Any) -> Any:
    rl = RevocationList(seq=seq, issued=issued, next_update=next_update, entries=list(entries))
    return sign_document(rl, ROOT_KEY, ROOT)


# --- the CLI -----------------------------------------------------------------------------------


def test_init_and_revoke_set_next_update_a_week_on(tmp_path: Path) -> None:
    """init and revoke sign lists due again in 7 days, or in --list-valid-days."""
    fed = tmp_path / "fed"
    assert 0 == _run("federation", "init", "--dir", fed).exit_code
    first = _list(fed)
    assert timedelta(days=7) == first.next_update - first.issued
    done = _run("federation", "revoke", "MLT-AFM", "--reason", "left", "--list-valid-days", "2",
                "--dir", fed)  # fmt: skip
    assert 0 == done.exit_code, done.output
    second = _list(fed)
    assert (2, timedelta(days=2)) == (second.seq, second.next_update - second.issued)


def test_renew_reissues_the_same_entries_under_the_next_seq(tmp_path: Path) -> None:
    """revoke --renew: seq + 1, a new next_update, the same entries, signed by the root."""
    fed = tmp_path / "fed"
    assert 0 == _run("federation", "init", "--dir", fed).exit_code
    assert 0 == _run("federation", "revoke", "MLT-AFM", "--reason", "left", "--dir", fed).exit_code
    before = _list(fed)
    renewed = _run("federation", "revoke", "--renew", "--list-valid-days", "14", "--dir", fed)
    assert 0 == renewed.exit_code, renewed.output
    after = _list(fed)
    assert (before.seq + 1, before.entries, timedelta(days=14)) == (
        after.seq,
        after.entries,
        after.next_update - after.issued,
    )
    assert "revocation list renewed (list seq 3" in " ".join(renewed.output.split())


@pytest.mark.parametrize(
    "args",
    [
        ("--renew", "MLT-AFM", "--reason", "left"),
        ("--renew", "--kid", "0123456789abcdef"),
        ("MLT-AFM",),
        (),
    ],
    ids=["renew-with-agency", "renew-with-kid", "no-reason", "nothing"],
)
def test_revoke_refuses_unclear_requests(tmp_path: Path, args: tuple[str, ...]) -> None:
    """--renew with an agency or kid, or a revoke without agency and reason: exit 2, no change."""
    fed = tmp_path / "fed"
    assert 0 == _run("federation", "init", "--dir", fed).exit_code
    before = (fed / "revocations.json").read_text()
    result = _run("federation", "revoke", *args, "--dir", fed)
    assert (2, before) == (result.exit_code, (fed / "revocations.json").read_text())
    assert "[config_error]" in " ".join(result.output.split())


# --- the store ---------------------------------------------------------------------------------


def test_a_list_signed_before_next_update_existed_still_verifies() -> None:
    """A list without next_update (the old canonical JSON) verifies and never expires."""
    body = {"kind": "revocation-list", "seq": 3, "issued": 1_790_000_000_000, "entries": []}
    trust = store()
    held = trust.set_revocations(sign_raw(body, ROOT_KEY, ROOT))
    assert (3, None, None, [], float("inf")) == (
        held.seq,
        held.next_update,
        trust.revocation_list_overdue(NOW + 1000 * DAY),
        trust.warnings(NOW + 1000 * DAY),
        trust.revocation_seconds_left(NOW),
    )


def test_past_next_update_the_list_stays_in_force_and_older_ones_are_refused() -> None:
    """An overdue list still revokes, still refuses an older list, and warns; a renewed one
    clears the warning."""
    gone = RevocationEntry(agency="ITA-GDF", reason="left", revoked_at=NOW - DAY)
    trust = store()
    trust.set_revocations(_signed(4, NOW - 8 * DAY, NOW - DAY, gone))
    assert DAY == trust.revocation_list_overdue(NOW)
    assert ["revocation list seq 4 passed its next_update"] == [
        w.split(" (")[0] for w in trust.warnings(NOW)
    ]
    assert "palermo federation revoke --renew" in trust.warnings(NOW)[0]
    with pytest.raises(TrustError):
        trust.set_revocations(_signed(3, NOW - HOUR, NOW + 7 * DAY))
    assert gone == trust.revoked("ITA-GDF", None, NOW)
    trust.set_revocations(_signed(5, NOW - HOUR, NOW + 7 * DAY, gone))
    assert ([], None, 7 * 86400.0) == (
        trust.warnings(NOW),
        trust.revocation_list_overdue(NOW),
        trust.revocation_seconds_left(NOW),
    )


@pytest.mark.parametrize("metrics", [NodeMetrics, BrokerMetrics], ids=["node", "broker"])
def test_alarm_gauges_follow_the_list_held(metrics: type[NodeMetrics | BrokerMetrics]) -> None:
    """palermo_revocation_list_expired is 0 then 1 once next_update passes; the countdown
    gauge goes negative; both read from the registry at scrape time."""
    trust, clock = store(), [NOW]
    m = metrics()
    m.watch_revocations(trust, lambda: clock[0])
    trust.set_revocations(_signed(2, NOW - DAY, NOW + HOUR))

    def sample(name: str) -> float | None:
        return m.registry.get_sample_value(name)

    before = (sample("palermo_revocation_list_expired"),
              sample("palermo_revocation_list_seconds_to_next_update"))  # fmt: skip
    clock[0] = NOW + 2 * HOUR
    after = (sample("palermo_revocation_list_expired"),
             sample("palermo_revocation_list_seconds_to_next_update"))  # fmt: skip
    assert ((0.0, 3600.0), (1.0, -3600.0)) == (before, after)


# --- live: a broker process and a node on a real nats-server -----------------------------------


async def _overdue_list(url: str, fed: DevFederation) -> None:
    """The directory's revocation list replaced by seq 2, due three days ago."""
    now = datetime.now(UTC)
    rl = RevocationList(seq=2, issued=now - 10 * DAY, next_update=now - 3 * DAY)
    nc = await nats.connect(url)
    kv = await nc.jetstream().key_value("PLM_DIR")
    await kv.put("revocations", json.dumps(sign_document(rl, fed.root, ROOT)).encode())
    await nc.close()


async def test_broker_past_next_update_is_ready_warns_alarms_and_delivers(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """A broker holding an overdue list: /readyz 200 with the warning, the alarm gauge at 1 in
    /metrics, and envelopes still delivered."""
    url = federated_url
    await _overdue_list(url, fed)
    port = free_port()
    config = write_broker_config(tmp_path, fed, url, http_port=port)
    proc = start_broker_process(config, tmp_path / "broker.log")
    base = f"http://127.0.0.1:{port}"
    nc = await nats.connect(url)
    try:

        async def ready() -> bool:
            return (await asyncio.to_thread(http_get, base + "/readyz"))[0] == 200

        await wait_for(ready, within=30)
        status, body = await asyncio.to_thread(http_get, base + "/readyz")
        _, metrics = await asyncio.to_thread(http_get, base + "/metrics")
        readyz = json.loads(body)
        assert (200, "ready", 1) == (status, readyz["status"], len(readyz["warnings"]))
        assert readyz["warnings"][0].startswith("revocation list seq 2 passed its next_update")
        assert "palermo_revocation_list_expired 1.0" in metrics.splitlines()
        await publish(nc, [envelope(fed)])

        async def delivered() -> bool:
            return await stream_count(nc, "PLM_DLV") == 4

        await wait_for(delivered, within=30)
    finally:
        await nc.close()
        assert 0 == stop_process(proc), (tmp_path / "broker.log").read_text()


async def test_node_past_next_update_raises_its_alarm(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """A node loading an overdue list from the directory: its registry says expired = 1."""
    url = federated_url
    async with connect_node(url, fed, "MLT-AFM", tmp_path / "fresh") as mlt:
        fresh = mlt.metrics.registry.get_sample_value("palermo_revocation_list_expired")
    await _overdue_list(url, fed)
    async with connect_node(url, fed, "MLT-AFM", tmp_path / "late") as mlt:
        late = mlt.metrics.registry.get_sample_value("palermo_revocation_list_expired")
        warned = mlt.trust.warnings()
    assert (0.0, 1.0, 1) == (fresh, late, len(warned))


async def test_node_process_past_next_update_is_ready_with_the_warning(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """'palermo node run' holding an overdue list: /readyz 200 with the warning, alarm at 1."""
    url = federated_url
    await _overdue_list(url, fed)
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "MLT-AFM", url)
    port = free_port()
    with (tmp_path / "node.log").open("ab") as log:
        node = subprocess.Popen(
            [str(Path(sys.executable).parent / "palermo"), "node", "run", "--config", str(config)],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PALERMO_NODE_HTTP_PORT": str(port)},
        )
    base = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            if node.poll() is not None:
                raise AssertionError((tmp_path / "node.log").read_text())
            return (await asyncio.to_thread(http_get, base + "/readyz"))[0] == 200

        await wait_for(ready, within=30)
        _, body = await asyncio.to_thread(http_get, base + "/readyz")
        _, metrics = await asyncio.to_thread(http_get, base + "/metrics")
        readyz = json.loads(body)
        assert ("ready", True, True) == (
            readyz["status"],
            readyz["warnings"][0].startswith("revocation list seq 2 passed its next_update"),
            "palermo_revocation_list_expired 1.0" in metrics.splitlines(),
        )
    finally:
        assert 0 == stop_process(node), (tmp_path / "node.log").read_text()


def test_trust_store_of_a_fresh_process_has_no_warning() -> None:
    """Before any list is held there is nothing to warn about (no list, no next_update)."""
    trust = TrustStore(ROOT_KEY.public)
    assert ([], float("inf")) == (trust.warnings(NOW), trust.revocation_seconds_left(NOW))


def test_revoke_on_a_fresh_directory_says_which_file_to_start_from(tmp_path: Path) -> None:
    """Issue 15 item 10: an empty --dir names 'federation init'; a 'dev up' directory (root
    key, its list among documents/) names the list to copy to revocations.json."""
    empty = _run("federation", "revoke", "MLT-AFM", "--reason", "left", "--dir", tmp_path / "e")
    assert 0 != empty.exit_code
    text = " ".join(empty.output.split())
    assert "holds no federation root key (root.sign.pem)" in text
    assert "palermo federation init --dir" in text
    dev = tmp_path / "dev"
    DevFederation.build(datetime.now(UTC)).write(dev)
    done = _run("federation", "revoke", "MLT-AFM", "--reason", "left", "--dir", dev)
    assert 0 != done.exit_code
    [published] = sorted(dev.glob("documents/*revocation*.json"))
    text = "".join(done.output.split())  # paths may be wrapped anywhere
    assert f"cp{published}{dev / 'revocations.json'}" in text
    (dev / "revocations.json").write_text(published.read_text())
    again = _run("federation", "revoke", "MLT-AFM", "--reason", "left", "--dir", dev)
    assert 0 == again.exit_code, again.output
