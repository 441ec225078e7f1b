"""The inbox's two SQLite files: their schema and on-disk format, migration from older
formats, transactions, and the data keys kept in the keys file (created, used, destroyed).
:class:`node.inbox.Inbox` adds the records on top. See :mod:`node.inbox`."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from node._inbox_keys import _BODY_AAD, NONCE_LEN, InboxError, StorageKey, _bind, _seal_body

DB_FILE_MODE: Final[int] = 0o600
# The on-disk format, in PRAGMA user_version. 0: bodies sealed directly under the storage key
# (before issue #12); 2: a data key per body, wrapped by the storage key, in the keys file.
# An older file is re-encrypted when opened; a newer one is refused.
INBOX_FORMAT: Final[int] = 2
# Tables whose rows carry an encrypted body, each body under its own data key.
_SEALED_TABLES: Final[tuple[str, ...]] = ("reports", "sent", "threads")
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


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Freed cells and pages are overwritten with zeros, so a purged body or a destroyed key
    # does not survive in free space inside the file.
    db.execute("PRAGMA secure_delete = ON")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a stored report survives a power cut
    return db


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


class _InboxFiles:
    """The inbox database and its keys file, opened, migrated and kept consistent."""

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
        # The original envelope a sent tear-line version was derived from (issue 15).
        with contextlib.suppress(sqlite3.OperationalError):
            self._db.execute("ALTER TABLE sent ADD COLUMN tear_line_of TEXT")
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
