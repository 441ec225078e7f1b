"""The officer access log: hash-chained per node, verifiable, tampering found; the chain code
is protocol.hashchain, shared with the broker's audit log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from broker.audit import AuditChain, entry_hash, verify_entries
from node.console.accesslog import AccessLog
from protocol import hashchain
from protocol.keys import SigningKey
from protocol.trust import canonical_json
from tests.console._consoleapp import Clock, add, console_client, login


def _log(tmp_path: Path) -> AccessLog:
    log = AccessLog.in_state_dir(tmp_path, "AT-BMI", Clock())
    log.record("anna", "login", client="127.0.0.1")
    log.record("anna", "open", report_id="01J0000000000000000000000A")
    log.record("anna", "publish", report_id="01J0000000000000000000000B", detail="alert")
    log.record("anna", "logout")
    return log


def _rewrite(log: AccessLog, entries: list[dict[str, object]]) -> None:
    log.path.write_text("".join(json.dumps(e) + "\n" for e in entries))


def test_an_untouched_log_verifies_and_is_0600(tmp_path: Path) -> None:
    """Four entries linked 1..4 from the genesis hash; the file is the owner's only."""
    log = _log(tmp_path)
    report = log.verify()
    assert (True, 4) == (report.ok, report.entries)
    entries = list(log.entries())
    assert hashchain.GENESIS == entries[0]["prev"]
    assert [e["hash"] for e in entries[:-1]] == [e["prev"] for e in entries[1:]]
    assert 0o600 == log.path.stat().st_mode & 0o777


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (lambda es: [*es[:1], {**es[1], "report": "01J0000000000000000000000Z"}, *es[2:]],
         "entry 2 was modified"),
        (lambda es: [es[0], *es[2:]], "entry seq 3 where 2 was expected"),
        (lambda es: [es[0], es[2], es[1], es[3]], "entry seq 3 where 2 was expected"),
        (lambda es: [*es[:-1], {**es[-1], "officer": "mallory"}], "entry 4 was modified"),
    ],
    ids=["changed", "removed", "reordered", "last-changed"],
)  # fmt: skip
def test_tampering_is_found_and_named(tmp_path: Path, tamper: object, found: str) -> None:
    """A changed, removed or reordered entry breaks the chain at that entry."""
    log = _log(tmp_path)
    _rewrite(log, tamper(list(log.entries())))  # type: ignore[operator]
    report = log.verify()
    assert not report.ok
    assert found in (report.broken or "")


def test_a_rehashed_edit_still_breaks_the_link_to_the_next_entry(tmp_path: Path) -> None:
    """Editing an entry and recomputing its hash leaves the next entry's prev pointing at the
    old one."""
    log = _log(tmp_path)
    entries = list(log.entries())
    forged = {**entries[1], "officer": "mallory"}
    forged["hash"] = hashchain.entry_hash(b"palermo/v1/access-log-entry\x00", forged)
    _rewrite(log, [entries[0], forged, *entries[2:]])
    assert "entry 3 does not link to entry 2" in (log.verify().broken or "")


def test_a_damaged_line_is_reported_not_skipped(tmp_path: Path) -> None:
    """A line that is not JSON: verification fails naming the line; appends refuse."""
    log = _log(tmp_path)
    with log.path.open("a") as f:
        f.write("{not json\n")
    assert "line 5 is not a JSON entry" in (log.verify().broken or "")
    with pytest.raises(Exception, match="damaged or edited"):
        log.record("anna", "login")


def test_two_writers_extend_one_chain(tmp_path: Path) -> None:
    """The node's log object and a second one (the CLI) append in turn: one chain, 1..4."""
    node, cli = (
        AccessLog.in_state_dir(tmp_path, "AT-BMI"),
        AccessLog.in_state_dir(tmp_path, "AT-BMI"),
    )
    node.record("anna", "login")
    cli.record("host:root", "officer-add", detail="bob reader")
    node.record("anna", "open", report_id="01J0000000000000000000000A")
    cli.record("host:root", "officer-disable", detail="bob")
    assert [1, 2, 3, 4] == [e["seq"] for e in node.entries()]
    assert node.verify().ok


def test_access_entries_never_verify_as_broker_audit_entries(tmp_path: Path) -> None:
    """Domain separation: the same body hashes differently in the two logs."""
    entry = next(iter(_log(tmp_path).entries()))
    assert entry["hash"] != entry_hash(entry)
    assert not verify_entries([entry], {})[0].ok


def test_the_broker_audit_chain_on_the_shared_primitive_is_unchanged() -> None:
    """A broker entry is hashed exactly as before the move to protocol.hashchain (SHA-256 over
    the audit domain and the canonical JSON without the hash), and checkpoints verify."""
    chain = AuditChain("broker-1", SigningKey.generate("BROKER"))
    entry = chain.append({"type": "decisions", "records": []}, Clock().now)
    body = {k: v for k, v in entry.items() if k != "hash"}
    expected = hashlib.sha256(b"palermo/v1/audit-entry\x00" + canonical_json(body)).hexdigest()
    assert expected == entry["hash"]
    assert ["chain", "prev", "records", "seq", "time", "type"] == sorted(body)
    checkpoint = chain.checkpoint(Clock().now)
    assert chain.key is not None
    keys = {chain.key.kid: chain.key.private.public_key()}
    report = verify_entries([entry, checkpoint], keys)[0]
    assert (True, 1) == (report.ok, report.checkpoints)


async def test_logins_are_recorded_and_the_admin_page_shows_the_chain(tmp_path: Path) -> None:
    """An administrator sees every entry newest first with the chain verified; after an edit
    the page says the chain is broken and shows no entries."""
    add(tmp_path, "anna", "administrator")
    async with console_client(tmp_path, Clock()) as client:
        await login(client, "anna", "wrong password!!")
        await login(client, "anna")
        page = await (await client.get("/admin/access-log")).text()
        assert "Chain intact: 2 entries verified." in page
        assert page.index("login-failed") > page.index("<td>login</td>")
        log = AccessLog.in_state_dir(tmp_path, "AT-BMI")
        entries = list(log.entries())
        _rewrite(log, [{**entries[0], "officer": "mallory"}, *entries[1:]])
        broken = await (await client.get("/admin/access-log")).text()
        assert "The chain is broken: entry 1 was modified" in broken
        assert "mallory" not in broken
