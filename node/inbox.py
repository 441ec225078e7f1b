"""The node's local inbox: SQLite (no server), report bodies encrypted at rest.

Each report is stored in one transaction: its verified header (cleartext, so the inbox can be
listed without the key), the obligations the policy attached, and the opened report encrypted
with AES-256-GCM under a data key of its own. The data key is wrapped by the node's storage key
(a 32-byte key file, 0600) and kept in a second database file beside the inbox
(``inbox.keys.db``), never in ``inbox.db`` itself.

Purging (at expiry, or on a retraction) deletes the ciphertext and then destroys the wrapped
data key (crypto-shredding), keeping a tombstone so the node can still answer "did you receive
it, and did you purge it?". Any copy of the ciphertext that outlives the purge (a backup or an
old copy of ``inbox.db``, free pages, a WAL frame) no longer decrypts with anything the node
holds. ``secure_delete`` zeroes freed cells and pages, and a WAL checkpoint (TRUNCATE) after each
purge moves the zeroed pages into the database and empties the WAL, so the bytes do not linger
in the files either. Both files (and their ``-wal``/``-shm``) are created 0600 whatever the umask.
See docs/decisions/0017-inbox-crypto-shredding.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas import EnvelopeHeader, Report, to_epoch_ms
from schemas.errors import InputError, KeyFileError, PalermoError

__all__ = ["Inbox", "InboxEntry", "InboxError", "StorageKey"]

KEY_LEN: Final[int] = 32
NONCE_LEN: Final[int] = 12
DB_FILE_MODE: Final[int] = 0o600
# The on-disk format, in PRAGMA user_version. 0: bodies sealed directly under the storage key
# (before issue #12); 2: a data key per body, wrapped by the storage key, in the keys file.
# An older file is re-encrypted when opened; a newer one is refused.
INBOX_FORMAT: Final[int] = 2
# Tables whose rows carry an encrypted body, each body under its own data key.
_SEALED_TABLES: Final[tuple[str, ...]] = ("reports", "sent", "threads")
# Domain separation: a wrapped data key or a body cannot be moved to another row or table.
_DEK_AAD: Final[bytes] = b"palermo/v1/inbox-dek\x00"
_BODY_AAD: Final[bytes] = b"palermo/v1/inbox-body\x00"
_KEYS_SCHEMA: Final[str] = """
CREATE TABLE IF NOT EXISTS data_keys (
    tbl TEXT NOT NULL,
    id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (tbl, id)
);
"""
_SCHEMA: Final[str] = """
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY,
    originator TEXT NOT NULL,
    kind TEXT NOT NULL,
    route TEXT NOT NULL,
    category TEXT NOT NULL,
    priority TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    header TEXT NOT NULL,
    obligations TEXT NOT NULL,
    withheld TEXT NOT NULL,
    body BLOB,
    purged_ms INTEGER,
    purge_reason TEXT
);
CREATE TABLE IF NOT EXISTS sent (
    id TEXT PRIMARY KEY,
    header TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    retracted_ms INTEGER,
    body BLOB
);
CREATE TABLE IF NOT EXISTS threads (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    refs TEXT NOT NULL,
    sender TEXT NOT NULL,
    priority TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    answered_by TEXT
);
CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY,
    report TEXT NOT NULL,
    requester TEXT NOT NULL,
    target TEXT NOT NULL,
    purpose TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS reports_route ON reports (route, received_ms);
CREATE INDEX IF NOT EXISTS reports_expiry ON reports (expires_ms) WHERE body IS NOT NULL;
"""


class InboxError(PalermoError):
    code = "inbox_error"


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Freed cells and pages are overwritten with zeros, so a purged body or a destroyed key
    # does not survive in free space inside the file.
    db.execute("PRAGMA secure_delete = ON")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a stored report survives a power cut
    return db


class StorageKey:
    """The node's at-rest key: a 32-byte file with mode 0600, created on first use."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise KeyFileError(f"a storage key is {KEY_LEN} bytes, this one is {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "StorageKey(<hidden>)"

    @classmethod
    def load_or_create(cls, path: Path) -> StorageKey:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise KeyFileError(
                    f"storage key {path} is readable by others (mode {mode:04o}); "
                    f"run: chmod 600 {path}"
                ) from None
            return cls(path.read_bytes())
        key = os.urandom(KEY_LEN)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return cls(key)

    def wrap(self, table: str, row_id: str, data_key: bytes) -> bytes:
        """Seal a row's data key under the storage key, bound to its table and id."""
        nonce = os.urandom(NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, data_key, _bind(_DEK_AAD, table, row_id))

    def unwrap(self, table: str, row_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:NONCE_LEN], wrapped[NONCE_LEN:], _bind(_DEK_AAD, table, row_id)
            )
        except InvalidTag as exc:
            raise InboxError(
                f"stored report {row_id} does not decrypt: wrong storage key or a tampered database"
            ) from exc

    def open_legacy(self, report_id: str, sealed: bytes) -> bytes:
        """Read a body of format 0 (sealed directly under this key), to re-encrypt it."""
        try:
            return self._aead.decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], report_id.encode())
        except InvalidTag as exc:
            raise InboxError(
                f"stored report {report_id} does not decrypt: wrong storage key or a "
                "tampered database"
            ) from exc


def _bind(label: bytes, table: str, row_id: str) -> bytes:
    return label + table.encode() + b"\x00" + row_id.encode()


def _seal_body(data_key: bytes, table: str, row_id: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_LEN)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, _bind(_BODY_AAD, table, row_id))


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 before SQLite opens it, or tighten an existing one to 0600.

    SQLite creates ``-wal``, ``-shm`` and journals with the database file's mode, so this one
    decision covers them; an inbox written before issue #12 (0644 under umask 022) is tightened.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, DB_FILE_MODE)
    except OSError as exc:
        raise InboxError(f"cannot create or open {path}: {exc.strerror}") from exc
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != DB_FILE_MODE:
            os.fchmod(fd, DB_FILE_MODE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", DB_FILE_MODE)


@dataclass(frozen=True)
class InboxEntry:
    id: str
    originator: str
    kind: str
    route: str
    category: str
    priority: str
    received_ms: int
    expires_ms: int | None
    header: dict[str, Any]
    obligations: list[dict[str, Any]]
    withheld: list[str]
    purged_ms: int | None
    purge_reason: str | None

    @property
    def codes(self) -> list[str]:
        """Handling codes for a banner (TLP, H-codes, action), from the signed header."""
        handling = EnvelopeHeader.model_validate(self.header).handling
        return handling.codes()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "originator": self.originator,
            "kind": self.kind,
            "route": self.route,
            "category": self.category,
            "priority": self.priority,
            "received_ms": self.received_ms,
            "expires_ms": self.expires_ms,
            "codes": self.codes,
            "obligations": self.obligations,
            "withheld_sections": self.withheld,
            "purged_ms": self.purged_ms,
            "purge_reason": self.purge_reason,
        }


class Inbox:
    """One agency's received reports."""

    def __init__(self, path: Path, key: StorageKey) -> None:
        self.path = path
        self.keys_path = path.with_name(path.name.removesuffix(".db") + ".keys.db")
        self.key = key
        self._closed = False
        _private_file(path)
        _private_file(self.keys_path)
        self._db = _connect(path)
        self._keys = _connect(self.keys_path)
        try:
            self._open_files()
        except BaseException:
            self._db.close()
            self._keys.close()
            raise

    def _open_files(self) -> None:
        """Create or check the schema; migrate an older format; finish an interrupted purge."""
        self._keys.executescript(_KEYS_SCHEMA)
        with self._transaction() as db:
            fresh = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'reports'").fetchone()
            version = db.execute("PRAGMA user_version").fetchone()[0]
            # One statement at a time: executescript would commit this transaction first.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            if fresh is None:
                db.execute(f"PRAGMA user_version = {INBOX_FORMAT}")
            elif version > INBOX_FORMAT:
                raise InboxError(
                    f"{self.path} has inbox format {version}, newer than this Palermo reads "
                    f"({INBOX_FORMAT}); upgrade Palermo"
                )
            elif version < INBOX_FORMAT:
                self._migrate(db)
        # Added after the first release: bring older inbox files up to date.
        with contextlib.suppress(sqlite3.OperationalError):
            self._db.execute("ALTER TABLE reports ADD COLUMN opened_ms INTEGER")
        self._shred_purged()
        if fresh is not None and version < INBOX_FORMAT:
            self._checkpoint()  # the bodies under the storage key leave the WAL too

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Format 0 to 2: give every stored body a data key (inside the caller's transaction).

        The data keys are committed first: a crash before the inbox commits leaves unused keys
        and the old bodies, and the next open migrates again. The old ciphertext's pages are
        zeroed (secure_delete) and the WAL emptied afterwards; a copy of the file taken before
        the migration still opens with the storage key (see the decision record).
        """
        updates = []
        with self._keys_transaction() as keys:
            for table in _SEALED_TABLES:
                rows = db.execute(f"SELECT id, body FROM {table} WHERE body IS NOT NULL")  # noqa: S608 - fixed names
                for row_id, body in rows.fetchall():
                    plaintext = self.key.open_legacy(row_id, body)
                    data_key = self._data_key(keys, table, row_id)
                    sealed = _seal_body(data_key, table, row_id, plaintext)
                    updates.append((table, row_id, sealed))
        for table, row_id, sealed in updates:
            db.execute(f"UPDATE {table} SET body = ? WHERE id = ?", (sealed, row_id))  # noqa: S608
        db.execute(f"PRAGMA user_version = {INBOX_FORMAT}")

    def _shred_purged(self) -> None:
        """Destroy data keys whose report was purged but whose key outlived a crash."""
        purged = {
            ("reports", r[0])
            for r in self._db.execute("SELECT id FROM reports WHERE purged_ms IS NOT NULL")
        }
        # Only keys of purged rows: a key without a row may belong to a store in progress in
        # another process (the CLI and the node open the same inbox), so it is left alone.
        stale = [k for k in self._keys.execute("SELECT tbl, id FROM data_keys") if k in purged]
        if stale:
            self._destroy_keys(stale)

    def close(self) -> None:
        """Checkpoint and close both files; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._checkpoint()
        self._db.close()
        self._keys.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _keys_transaction(self) -> Iterator[sqlite3.Connection]:
        self._keys.execute("BEGIN IMMEDIATE")
        try:
            yield self._keys
        except BaseException:
            self._keys.execute("ROLLBACK")
            raise
        self._keys.execute("COMMIT")

    def _data_key(self, keys: sqlite3.Connection, table: str, row_id: str) -> bytes:
        """The row's data key, created (random, stored wrapped) if it has none yet.

        Reused rather than replaced: a second INSERT OR IGNORE of a row, or a store retried
        after a crash, must not orphan the body already sealed under the existing key.
        """
        keys.execute(
            "INSERT OR IGNORE INTO data_keys (tbl, id, wrapped) VALUES (?, ?, ?)",
            (table, row_id, self.key.wrap(table, row_id, AESGCM.generate_key(bit_length=256))),
        )
        (wrapped,) = keys.execute(
            "SELECT wrapped FROM data_keys WHERE tbl = ? AND id = ?", (table, row_id)
        ).fetchone()
        return self.key.unwrap(table, row_id, wrapped)

    def _seal(self, table: str, row_id: str, plaintext: bytes) -> bytes:
        """Commit the row's data key before the caller commits the row: never a body without
        its key after a crash (the reverse, an unused key, is harmless)."""
        with self._keys_transaction() as keys:
            data_key = self._data_key(keys, table, row_id)
        return _seal_body(data_key, table, row_id, plaintext)

    def _open(self, table: str, row_id: str, body: bytes) -> bytes:
        row = self._keys.execute(
            "SELECT wrapped FROM data_keys WHERE tbl = ? AND id = ?", (table, row_id)
        ).fetchone()
        if row is None:
            raise InboxError(
                f"stored report {row_id} has no data key in {self.keys_path}: it was purged "
                "(its key destroyed), or the keys file is not this inbox's"
            )
        data_key = self.key.unwrap(table, row_id, row[0])
        try:
            return AESGCM(data_key).decrypt(
                body[:NONCE_LEN], body[NONCE_LEN:], _bind(_BODY_AAD, table, row_id)
            )
        except InvalidTag as exc:
            raise InboxError(
                f"stored report {row_id} does not decrypt: a tampered database"
            ) from exc

    def _destroy_keys(self, rows: Sequence[tuple[str, str]]) -> None:
        """Crypto-shredding: overwrite each wrapped key with zeros, then delete the row.

        secure_delete zeroes the freed cell too; the explicit overwrite keeps the key out of
        the file even where SQLite reuses the cell in place instead of freeing it.
        """
        with self._keys_transaction() as keys:
            for table, row_id in rows:
                keys.execute(
                    "UPDATE data_keys SET wrapped = zeroblob(length(wrapped)) "
                    "WHERE tbl = ? AND id = ?",
                    (table, row_id),
                )
                keys.execute("DELETE FROM data_keys WHERE tbl = ? AND id = ?", (table, row_id))
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Write WAL frames into the databases and truncate the WALs to zero bytes.

        After a purge the WAL still holds the pages as they were before it (the ciphertext,
        the wrapped key). A reader in another process (the CLI) can make this partial; the
        next purge or close tries again, and the destroyed data key already makes whatever
        is left undecryptable.
        """
        for con in (self._db, self._keys):
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def seen(self, report_id: str) -> bool:
        """Whether this id was ever stored (replay protection for the node)."""
        row = self._db.execute("SELECT 1 FROM reports WHERE id = ?", (report_id,)).fetchone()
        return row is not None

    def store(
        self,
        header: EnvelopeHeader,
        report: Report,
        obligations: Sequence[dict[str, Any]],
        withheld: Sequence[str],
        now: datetime,
    ) -> None:
        """Keep a report, all or nothing; a second copy of the same id is refused."""
        if self.seen(header.id):
            raise InputError(f"report {header.id} is already in the inbox")
        plaintext = json.dumps(report.to_wire(), sort_keys=True).encode()
        expires = header.handling.expires
        with self._transaction() as db:
            db.execute(
                "INSERT INTO reports (id, originator, kind, route, category, priority, "
                "received_ms, expires_ms, header, obligations, withheld, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    header.id,
                    header.originator,
                    header.kind.value,
                    header.route.value,
                    header.category.value,
                    header.priority.value,
                    to_epoch_ms(now),
                    to_epoch_ms(expires) if expires is not None else None,
                    json.dumps(header.to_wire(), sort_keys=True),
                    json.dumps(list(obligations), sort_keys=True),
                    json.dumps(list(withheld)),
                    self._seal("reports", header.id, plaintext),
                ),
            )

    def _entry(self, row: tuple[Any, ...]) -> InboxEntry:
        (rid, originator, kind, route, category, priority, received, expires, header,
         obligations, withheld, purged, reason) = row  # fmt: skip
        return InboxEntry(
            rid, originator, kind, route, category, priority, received, expires,
            json.loads(header), json.loads(obligations), json.loads(withheld), purged, reason,
        )  # fmt: skip

    _COLUMNS: Final = (
        "id, originator, kind, route, category, priority, received_ms, expires_ms, header, "
        "obligations, withheld, purged_ms, purge_reason"
    )

    def entries(
        self, *, route: str | None = None, since: datetime | None = None
    ) -> list[InboxEntry]:
        """Newest first; urgent before routine among reports received at the same time."""
        query = f"SELECT {self._COLUMNS} FROM reports WHERE 1 = 1"  # noqa: S608 - fixed columns
        params: list[Any] = []
        if route is not None:
            query += " AND route = ?"
            params.append(route)
        if since is not None:
            query += " AND received_ms >= ?"
            params.append(to_epoch_ms(since))
        query += " ORDER BY received_ms DESC, priority = 'urgent' DESC, id"
        return [self._entry(r) for r in self._db.execute(query, params)]

    def show(self, report_id: str) -> tuple[InboxEntry, Report | None]:
        """The entry and its report, or None for the report if it was purged."""
        row = self._db.execute(
            f"SELECT {self._COLUMNS}, body FROM reports WHERE id = ?",  # noqa: S608
            (report_id,),
        ).fetchone()
        if row is None:
            raise InputError(f"no report {report_id} in the inbox; see 'palermo inbox list'")
        entry, body = self._entry(row[:-1]), row[-1]
        if body is None:
            return entry, None
        return entry, Report.from_wire(json.loads(self._open("reports", report_id, body)))

    def mark_opened(self, report_id: str, now: datetime) -> bool:
        """Record the first time a person opened the report; True only that first time."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE reports SET opened_ms = ? WHERE id = ? AND opened_ms IS NULL",
                (to_epoch_ms(now), report_id),
            )
        return cursor.rowcount == 1

    def purge(self, report_id: str, reason: str, now: datetime) -> bool:
        """Delete one report's ciphertext and destroy its data key; keep a tombstone.

        True if purged (False if it was purged already or is not here).
        """
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE reports SET body = NULL, purged_ms = ?, purge_reason = ? "
                "WHERE id = ? AND body IS NOT NULL",
                (to_epoch_ms(now), reason, report_id),
            )
        # After the body: a crash in between leaves a key of a purged row, which the next open
        # destroys (_shred_purged); never a body whose key is gone.
        self._destroy_keys([("reports", report_id)])
        return cursor.rowcount == 1

    def record_sent(self, header: EnvelopeHeader, report: Report, now: datetime) -> None:
        """The originator's own record of what it sent, to whom, and the report itself
        (encrypted at rest): status, retraction and release grants need them."""
        plaintext = json.dumps(report.to_wire(), sort_keys=True).encode()
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sent (id, header, sent_ms, body) VALUES (?, ?, ?, ?)",
                (
                    header.id,
                    json.dumps(header.to_wire(), sort_keys=True),
                    to_epoch_ms(now),
                    self._seal("sent", header.id, plaintext),
                ),
            )

    def sent_report(self, report_id: str) -> Report:
        row = self._db.execute("SELECT body FROM sent WHERE id = ?", (report_id,)).fetchone()
        if row is None or row[0] is None:
            raise InputError(f"this node did not send report {report_id}")
        return Report.from_wire(json.loads(self._open("sent", report_id, row[0])))

    def add_message(self, header: EnvelopeHeader, content: dict[str, Any], now: datetime) -> None:
        """A request or response (SIENA-style thread messages), body encrypted at rest."""
        plaintext = json.dumps(content, sort_keys=True).encode()
        sealed = self._seal("threads", header.id, plaintext)
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO threads (id, kind, refs, sender, priority, received_ms, "
                "body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (header.id, header.kind.value, json.dumps(header.refs), header.originator,
                 header.priority.value, to_epoch_ms(now), sealed),
            )  # fmt: skip

    def mark_answered(self, request_id: str, response_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE threads SET answered_by = ? WHERE id = ? AND kind = 'request'",
                (response_id, request_id),
            )

    def messages(self, kind: str) -> list[dict[str, Any]]:
        """Requests or responses, urgent first, then newest first, with their text."""
        rows = self._db.execute(
            "SELECT id, refs, sender, priority, received_ms, body, answered_by FROM threads "
            "WHERE kind = ? ORDER BY priority = 'urgent' DESC, received_ms DESC",
            (kind,),
        )
        out = []
        for rid, refs, sender, priority, received, body, answered in rows:
            out.append(
                {
                    "id": rid,
                    "refs": json.loads(refs),
                    "from": sender,
                    "priority": priority,
                    "received_ms": received,
                    "answered_by": answered,
                    **json.loads(self._open("threads", rid, body)),
                }
            )
        return out

    def add_release_request(
        self, request_id: str, report: str, requester: str, target: str, purpose: str,
        now: datetime, state: str = "pending", reason: str | None = None,
    ) -> None:  # fmt: skip
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO releases (id, report, requester, target, purpose, "
                "received_ms, state, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (request_id, report, requester, target, purpose, to_epoch_ms(now), state, reason),
            )

    def release_requests(self, state: str | None = None) -> list[dict[str, Any]]:
        keys = ("id", "report", "requester", "target", "purpose", "received_ms", "state", "reason")
        query = f"SELECT {', '.join(keys)} FROM releases"  # noqa: S608 - fixed column names
        rows = self._db.execute(
            query + (" WHERE state = ?" if state else ""), (state,) if state else ()
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def decide_release(self, request_id: str, state: str, reason: str | None) -> dict[str, Any]:
        """Move a pending request to granted or denied; refuses a request decided already."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE releases SET state = ?, reason = ? WHERE id = ? AND state = 'pending'",
                (state, reason, request_id),
            )
        if cursor.rowcount != 1:
            raise InputError(
                f"no pending release request {request_id}; see 'palermo release pending'"
            )
        [row] = [r for r in self.release_requests() if r["id"] == request_id]
        return row

    def sent_header(self, report_id: str) -> EnvelopeHeader:
        row = self._db.execute("SELECT header FROM sent WHERE id = ?", (report_id,)).fetchone()
        if row is None:
            raise InputError(f"this node did not send report {report_id}")
        return EnvelopeHeader.model_validate(json.loads(row[0]))

    def mark_retracted(self, report_id: str, now: datetime) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE sent SET retracted_ms = ? WHERE id = ?", (to_epoch_ms(now), report_id)
            )

    def purge_expired(self, now: datetime) -> list[str]:
        """Obligation "purge at T": every report past its expiry loses its content."""
        ms = to_epoch_ms(now)
        with self._transaction() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM reports WHERE body IS NOT NULL AND expires_ms <= ?", (ms,)
                )
            ]
            db.execute(
                "UPDATE reports SET body = NULL, purged_ms = ?, purge_reason = 'expired' "
                "WHERE body IS NOT NULL AND expires_ms <= ?",
                (ms, ms),
            )
        if ids:
            self._destroy_keys([("reports", i) for i in ids])
        return ids
