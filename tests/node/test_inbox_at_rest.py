"""The inbox at rest: per-report data keys destroyed on purge, no leftovers, 0600, migration."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import node._inbox_files as inbox_files
from node.inbox import Inbox, InboxError, StorageKey
from tests.node.test_inbox import NOW, _delivered

REPORT = "02-groups-network-western-balkans.json"
CHUNK = 32  # any 32 bytes of ciphertext found in a file means the ciphertext is still there


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which a plain sqlite3.connect creates 0644 files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _open(directory: Path) -> Inbox:
    return Inbox(directory / "inbox.db", StorageKey.load_or_create(directory / "storage.key"))


def _read(db: Path, query: str, *args: str) -> bytes | None:
    """One value read by a separate, read-only, short-lived connection (closed at once)."""
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute(query, args).fetchone()
    except sqlite3.OperationalError:  # no such table: the file is not what this test expects
        row = None
    finally:
        con.close()
    return None if row is None else bytes(row[0])


def _files(directory: Path) -> bytes:
    """Every byte of every inbox file (database, keys, -wal, -shm), as a thief would copy."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob("inbox*")))


def _found(secret: bytes, raw: bytes) -> list[int]:
    return [i for i in range(0, len(secret) - CHUNK + 1, CHUNK) if secret[i : i + CHUNK] in raw]


def test_purge_leaves_no_ciphertext_in_any_file_while_running(tmp_path: Path) -> None:
    """After a purge, with the inbox still open, no file holds any 32 bytes of the body."""
    box = _open(tmp_path)
    header, report, withheld = _delivered(REPORT, "ESP-GC")
    box.store(header, report, [], withheld, NOW)
    body = _read(tmp_path / "inbox.db", "SELECT body FROM reports WHERE id = ?", header.id)
    assert body is not None
    assert len(body) > 1024
    assert [] != _found(body, _files(tmp_path))  # the probe sees it before the purge
    assert box.purge(header.id, "retracted by originator", NOW)
    assert [] == _found(body, _files(tmp_path))
    box.close()


def test_destroyed_data_key_is_in_no_file_after_purge(tmp_path: Path) -> None:
    """The wrapped data key is 60 bytes in the keys file, and gone from every file on purge."""
    box = _open(tmp_path)
    header, report, withheld = _delivered(REPORT, "ESP-GC")
    box.store(header, report, [], withheld, NOW)
    query = "SELECT wrapped FROM data_keys WHERE tbl = 'reports' AND id = ?"
    wrapped = _read(tmp_path / "inbox.keys.db", query, header.id)
    assert 12 + 32 + 16 == len(wrapped or b"")  # nonce, AES-256 key, GCM tag
    assert wrapped is not None
    assert wrapped in _files(tmp_path)
    box.purge(header.id, "retracted by originator", NOW)
    assert wrapped not in _files(tmp_path)
    box.close()


@pytest.mark.parametrize("how", ["retraction", "expiry"])
def test_copy_taken_before_purge_does_not_open_after_it(tmp_path: Path, how: str) -> None:
    """A copy of inbox.db made before a purge does not open with what the node holds after."""
    live, stolen = tmp_path / "live", tmp_path / "stolen"
    live.mkdir()
    stolen.mkdir()
    box = _open(live)
    header, report, withheld = _delivered(
        REPORT, "ESP-GC", expires=(NOW + timedelta(hours=1)).isoformat()
    )
    box.store(header, report, [], withheld, NOW)
    for name in ("inbox.db", "inbox.db-wal"):  # a backup, or a disk image, of the database
        shutil.copy(live / name, stolen / name)
    if how == "retraction":
        assert box.purge(header.id, "retracted by originator", NOW)
    else:
        assert [header.id] == box.purge_expired(NOW + timedelta(hours=2))
    box.close()
    # The thief also gets everything the node holds now: its storage key and its keys file.
    for held in live.glob("inbox.keys.db*"):
        shutil.copy(held, stolen / held.name)
    old = Inbox(stolen / "inbox.db", StorageKey.load_or_create(live / "storage.key"))
    try:
        with pytest.raises(InboxError, match="has no data key"):
            old.show(header.id)
    finally:
        old.close()


def test_inbox_files_are_0600_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    """inbox.db, its -wal and -shm, and the keys files are created 0600 under umask 022."""
    box = _open(tmp_path)
    header, report, withheld = _delivered(REPORT, "ESP-GC")
    box.store(header, report, [], withheld, NOW)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("inbox*")}
    box.close()
    assert {"inbox.db", "inbox.db-wal", "inbox.db-shm"} <= set(modes)
    assert {name: 0o600 for name in modes} == modes


def test_existing_0644_inbox_is_tightened(tmp_path: Path, umask_022: None) -> None:
    """An inbox left 0644 by an older node is made 0600 when opened."""
    sqlite3.connect(tmp_path / "inbox.db").close()
    assert 0o644 == stat.S_IMODE((tmp_path / "inbox.db").stat().st_mode)
    _open(tmp_path).close()
    assert 0o600 == stat.S_IMODE((tmp_path / "inbox.db").stat().st_mode)


# --- migration from the format before per-report data keys -------------------------------------


def _legacy_seal(key: bytes, row_id: str, plaintext: bytes) -> bytes:
    """A body as d68e6da sealed it: directly under the storage key, the id as AAD."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, row_id.encode())


def _legacy_inbox(directory: Path) -> tuple[str, object, dict[str, str]]:
    """An inbox.db written the old way: one report, one sent report, one request thread."""
    key = os.urandom(32)
    (directory / "storage.key").write_bytes(key)
    (directory / "storage.key").chmod(0o600)
    header, report, _ = _delivered(REPORT, "ESP-GC")
    plaintext = json.dumps(report.to_wire(), sort_keys=True).encode()
    question = {"question": "Which port?"}
    db = sqlite3.connect(directory / "inbox.db")
    db.executescript(inbox_files._SCHEMA)
    db.execute("ALTER TABLE reports ADD COLUMN opened_ms INTEGER")
    db.execute(
        "INSERT INTO reports (id, originator, kind, route, category, priority, received_ms, "
        "header, obligations, withheld, body) VALUES (?, ?, ?, ?, ?, ?, 0, ?, '[]', '[]', ?)",
        (header.id, header.originator, header.kind.value, header.route.value,
         header.category.value, header.priority.value,
         json.dumps(header.to_wire(), sort_keys=True), _legacy_seal(key, header.id, plaintext)),
    )  # fmt: skip
    db.execute(
        "INSERT INTO sent (id, header, sent_ms, body) VALUES (?, ?, 0, ?)",
        ("sent-1", json.dumps(header.to_wire()), _legacy_seal(key, "sent-1", plaintext)),
    )
    db.execute(
        "INSERT INTO threads (id, kind, refs, sender, priority, received_ms, body) "
        "VALUES ('req-1', 'request', '[]', 'ITA-GDF', 'routine', 0, ?)",
        (_legacy_seal(key, "req-1", json.dumps(question).encode()),),
    )
    db.commit()
    db.close()
    return header.id, report, question


def test_old_format_inbox_is_read_and_reencrypted_under_data_keys(tmp_path: Path) -> None:
    """An inbox written before data keys opens, reads the same, and is migrated to format 2."""
    report_id, report, question = _legacy_inbox(tmp_path)
    box = _open(tmp_path)
    assert report == box.show(report_id)[1]
    assert report == box.sent_report("sent-1")
    assert question["question"] == box.messages("request")[0]["question"]
    box.close()
    version = sqlite3.connect(tmp_path / "inbox.db")
    assert (2,) == version.execute("PRAGMA user_version").fetchone()
    version.close()
    legacy_key = StorageKey.load_or_create(tmp_path / "storage.key")
    body = _read(tmp_path / "inbox.db", "SELECT body FROM reports WHERE id = ?", report_id)
    with pytest.raises(InboxError, match="does not decrypt"):
        legacy_key.open_legacy(report_id, body or b"")  # no longer under the storage key


def test_migrated_report_is_shredded_on_purge(tmp_path: Path) -> None:
    """After migration a purge destroys the report's data key like any other."""
    report_id, _, _ = _legacy_inbox(tmp_path)
    live, stolen = tmp_path, tmp_path / "stolen"
    stolen.mkdir()
    _open(live).close()
    shutil.copy(live / "inbox.db", stolen / "inbox.db")
    box = _open(live)
    assert box.purge(report_id, "retracted by originator", NOW)
    box.close()
    for held in live.glob("inbox.keys.db*"):
        shutil.copy(held, stolen / held.name)
    old = Inbox(stolen / "inbox.db", StorageKey.load_or_create(live / "storage.key"))
    with pytest.raises(InboxError, match="has no data key"):
        old.show(report_id)
    old.close()


def test_newer_format_is_refused(tmp_path: Path) -> None:
    """An inbox written by a newer Palermo is refused with what to do, not misread."""
    _open(tmp_path).close()
    db = sqlite3.connect(tmp_path / "inbox.db")
    db.execute("PRAGMA user_version = 3")
    db.close()
    with pytest.raises(InboxError) as err:
        _open(tmp_path)
    assert (
        f"{tmp_path / 'inbox.db'} has inbox format 3, newer than this Palermo reads (2); "
        + ("upgrade Palermo")
        == err.value.reason
    )


def test_key_of_a_purge_interrupted_by_a_crash_is_destroyed_on_open(tmp_path: Path) -> None:
    """A crash after the body was deleted but before its key was: the next open destroys it."""
    box = _open(tmp_path)
    header, report, withheld = _delivered(REPORT, "ESP-GC")
    box.store(header, report, [], withheld, NOW)
    box.close()
    db = sqlite3.connect(tmp_path / "inbox.db")  # what purge() commits before the keys file
    db.execute("UPDATE reports SET body = NULL, purged_ms = 1, purge_reason = 'x'")
    db.commit()
    db.close()
    query = "SELECT wrapped FROM data_keys WHERE id = ?"
    assert _read(tmp_path / "inbox.keys.db", query, header.id) is not None
    _open(tmp_path).close()
    assert _read(tmp_path / "inbox.keys.db", query, header.id) is None


def test_second_record_of_the_same_row_keeps_the_first_readable(tmp_path: Path) -> None:
    """INSERT OR IGNORE rows (sent, threads) keep their data key when written twice."""
    box = _open(tmp_path)
    header, report, _ = _delivered(REPORT, "ESP-GC")
    box.record_sent(header, report, NOW)
    box.record_sent(header, report, NOW)
    assert report == box.sent_report(header.id)
    box.close()
