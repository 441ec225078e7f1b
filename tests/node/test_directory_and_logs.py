"""The directory CLI against a real server, and the log redaction processor."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.logs import REDACTED, redact
from tests.harness import PALERMO


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PALERMO, *args], capture_output=True, text=True, timeout=60, check=False)


async def test_directory_publish_then_show(nats_server: NatsServer, tmp_path: Path) -> None:
    """Published documents are verified, stored and shown; a forged one is refused with exit 2."""
    fed = DevFederation.build(datetime.now(UTC))
    fed.write(tmp_path / "fed")
    docs = sorted((tmp_path / "fed" / "documents").glob("*.json"))
    root = str(tmp_path / "fed" / "root.pub.json")
    url = nats_server.client_url
    done = _run("directory", "publish", *map(str, docs), "--root", root, "--nats", url)
    assert 0 == done.returncode, done.stderr
    shown = _run("directory", "show", "--root", root, "--nats", url, "--json")
    data = json.loads(shown.stdout)
    assert sorted(fed.agencies) == sorted(data["members"])
    assert 4 == data["federation_policy"]
    forged = json.loads(docs[0].read_text())
    forged["document"]["accreditation"] = (
        "secret" if forged["document"]["accreditation"] != "secret" else "restricted"
    )
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))
    refused = _run("directory", "publish", str(bad), "--root", root, "--nats", url)
    assert 2 == refused.returncode
    assert "altered" in refused.stderr


def test_redaction_runs_before_rendering() -> None:
    """Keys, passphrases, bodies and persons never reach a rendered log line; key ids do."""
    event = {"event": "x", "signing_key": "pem", "passphrase": "p", "body": b"report",
             "persons": ["n"], "kid": "0123456789abcdef", "envelope": "id"}  # fmt: skip
    out = redact(None, "info", dict(event))
    assert [REDACTED] * 4 == [out["signing_key"], out["passphrase"], out["body"], out["persons"]]
    assert ("0123456789abcdef", "id") == (out["kid"], out["envelope"])
    with structlog.testing.capture_logs() as logs:
        structlog.get_logger().info("hello", envelope="e1")
    assert "e1" == logs[0]["envelope"]


async def test_a_node_that_may_not_create_the_directory_is_told_the_operators_command(
    tmp_path: Path,
) -> None:
    """Under permissions that deny stream creation (an agency's, in a deployment), a missing
    directory bucket gives an error that says who creates it, not a bare timeout."""
    import nats

    from protocol.directory import Directory
    from schemas.errors import TransportError

    users = {"users": [{"user": "agency", "password": "pw", "permissions": {
        "publish": {"allow": ["$JS.API.INFO", "$JS.API.STREAM.INFO.>"]},
        "subscribe": {"allow": ["_INBOX.>"]},
    }}]}  # fmt: skip
    server = NatsServer(tmp_path / "nats", name="plm-perm", config={"authorization": users})
    fed = DevFederation.build(datetime.now(UTC))
    async with server:
        host, port = server.client_url.removeprefix("nats://").rsplit(":", 1)
        nc = await nats.connect(f"nats://agency:pw@{host}:{port}", error_cb=_ignore)
        try:
            directory = Directory(nc.jetstream(timeout=1), fed.trust_store())
            with pytest.raises(TransportError, match="'palermo broker streams create --config"):
                await directory.load()
        finally:
            await nc.close()


async def _ignore(exc: Exception) -> None:
    """nats-py reports the server's permissions violation here; the request then times out."""


def test_asyncios_harmless_tls_warning_is_dropped_from_cli_output() -> None:
    """'returning true from eof_received() has no effect when using ssl' alarms an operator
    reading stderr for nothing; other asyncio warnings still get through."""
    import logging

    from protocol.logs import quiet_known_noise

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("asyncio")
    handler = Collect()
    logger.addHandler(handler)
    try:
        quiet_known_noise()
        quiet_known_noise()
        logger.warning("returning true from eof_received() has no effect when using ssl")
        logger.warning("Task was destroyed but it is pending!")
    finally:
        logger.removeHandler(handler)
    assert ["Task was destroyed but it is pending!"] == seen


async def test_subscribe_logs_no_refusal_for_the_entry_it_replaced(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """Issue 15 item 10: after 'subscribe' writes seq N+1, the watcher may still hand over
    seq N (its first pass); that is history, not a rollback: no refusal is logged. A lower seq
    written after ours is still refused."""
    from tests.harness import connect_node, wait_for

    async with connect_node(federated_url, fed, "MLT-AFM", tmp_path) as node:
        await node.subscribe(["central-med"])
        await node.subscribe(["central-med", "eastern-med"])
        kv = await node.directory.open()
        key = "subs.MLT-AFM"
        history = [e for e in await kv.history(key) if e.value]
        older, latest = history[-2], history[-1]
        with structlog.testing.capture_logs() as logs:
            node.directory.watched(key, older.value, older.revision)  # late, from the first pass
            node.directory.watched(key, latest.value, latest.revision)  # our own write
        assert [] == [e for e in logs if e["event"] == "directory entry refused"]
        assert key not in node.directory.rejected
        assert ["central-med", "eastern-med"] == [
            f.route for f in node.trust.subscriptions["MLT-AFM"].filters
        ]
        # Someone writes the older document again: a real rollback, refused.
        await kv.put(key, older.value)

        async def refused() -> bool:
            return key in node.directory.rejected

        await wait_for(refused, within=10)
