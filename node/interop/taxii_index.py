"""The TAXII server's index: which STIX object versions each collection holds, added when.

TAXII clients poll with ``added_after`` and page with ``next``; both only work if an object
added later always sorts after everything already served. The inbox's own times cannot give
that (a report is stamped when its handling starts, and may be committed after a later one), so
the index assigns ``date_added`` itself, at the moment it records an object: strictly increasing
(one microsecond apart at least, whatever the wall clock does), with the row number as the
order. A ``next`` cursor is the last row number served, so a page never shifts when objects
arrive (decision 0030).

The index holds identifiers, types and versions, in ``STATE_DIR/taxii.db`` (0600), and the JSON
of shared definitions only (TLP markings, agencies' identities): never a report's content, which
stays encrypted in the inbox and is exported again for each page. When a
report is withdrawn (expired, purged, retracted), its objects' earlier versions are hidden and a
revoked version of each of its SDOs and SROs is added (an SCO has no revoked form: it is simply
no longer served). Objects the source marks *shared* (definitions every report refers to: TLP
markings, the agencies' identities) are never hidden or revoked with one report.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from schemas.errors import InputError

__all__ = [
    "IndexedObject",
    "Page",
    "TaxiiIndex",
    "from_stix_time",
    "stix_time",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_SCHEMA: Final[str] = """
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    report_id TEXT NOT NULL,
    stix_id TEXT NOT NULL,
    stix_type TEXT NOT NULL,
    created TEXT,
    version TEXT NOT NULL,
    version_us INTEGER NOT NULL,
    added_us INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    shared INTEGER NOT NULL DEFAULT 0,
    body TEXT,
    hidden INTEGER NOT NULL DEFAULT 0,
    UNIQUE (collection, stix_id, version)
);
CREATE INDEX IF NOT EXISTS objects_by_id ON objects (collection, stix_id, seq);
CREATE TABLE IF NOT EXISTS members (
    collection TEXT NOT NULL,
    report_id TEXT NOT NULL,
    stix_id TEXT NOT NULL,
    PRIMARY KEY (collection, report_id, stix_id)
);
CREATE INDEX IF NOT EXISTS members_by_id ON members (collection, stix_id);
CREATE TABLE IF NOT EXISTS holdings (
    collection TEXT NOT NULL,
    report_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (collection, report_id)
);
CREATE TABLE IF NOT EXISTS served (
    client TEXT NOT NULL,
    report_id TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    PRIMARY KEY (client, report_id)
);
"""
LIVE: Final[str] = "live"
WITHDRAWN: Final[str] = "withdrawn"
UNEXPORTABLE: Final[str] = "unexportable"


def stix_time(us: int) -> str:
    """A STIX/TAXII timestamp (UTC, microseconds) from microseconds since the epoch."""
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_stix_time(value: str, what: str) -> int:
    """Microseconds since the epoch from an RFC 3339 timestamp, or an ``InputError`` saying so."""
    text = value.strip()
    try:
        if "." in text:  # fromisoformat takes 3 or 6 fraction digits only: pad or cut to 6
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = f"{head}.{(tail[:digits] + '000000')[:6]}{tail[digits:]}"
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise InputError(
            f"{what} {value[:40]!r} is not a timestamp; use RFC 3339 in UTC, e.g. "
            "2026-12-03T14:00:00.000Z"
        ) from exc
    if moment.tzinfo is None:
        raise InputError(f"{what} {value[:40]!r} has no time zone; end it with Z (UTC)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class IndexedObject:
    """One version of one STIX object in one collection, as the index knows it."""

    seq: int
    report_id: str
    stix_id: str
    stix_type: str
    created: str | None
    version: str
    added_us: int
    revoked: bool
    shared: bool
    body: str | None
    """A shared definition's JSON (no report content): served even when no report that
    brought it is live any more."""

    @property
    def date_added(self) -> str:
        return stix_time(self.added_us)


@dataclass(frozen=True)
class Page:
    rows: list[IndexedObject]
    more: bool

    @property
    def last_added_us(self) -> int | None:
        """The last row's ``date_added``: rows are added in ``date_added`` order, strictly
        increasing across the whole index, so it orders exactly as the row number does."""
        return self.rows[-1].added_us if self.rows else None


def _version_of(obj: dict[str, Any], added_us: int) -> str:
    """TAXII 2.1 §3.4: ``modified``, else ``created``, else the date it was added (SCOs)."""
    return str(obj.get("modified") or obj.get("created") or stix_time(added_us))


class TaxiiIndex:
    """The index file of one node's TAXII server."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # 0600 before SQLite writes a byte
        os.close(fd)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _last_added(self) -> int:
        row = self._db.execute("SELECT MAX(added_us) FROM objects").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def holdings(self, collection: str) -> dict[str, str]:
        """Each report the collection has seen, and its state (live, withdrawn, unexportable)."""
        rows = self._db.execute(
            "SELECT report_id, state FROM holdings WHERE collection = ?", (collection,)
        )
        return {r: s for r, s in rows}

    def add(
        self,
        collection: str,
        report_id: str,
        objects: Sequence[dict[str, Any]],
        now: datetime,
        shared: Collection[str] = (),
    ) -> None:
        """Record a report's objects, each added one microsecond after the one before.

        An object another report of the collection already brought (a marking definition) keeps
        its first row; the report is still recorded as holding it. ``shared``: the ids of
        definitions that outlive any one report (never hidden or revoked with it).
        """
        added = max(_us(now), self._last_added() + 1)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for obj in objects:
                version = _version_of(obj, added)
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO objects (collection, report_id, stix_id, stix_type, "
                    "created, version, version_us, added_us, shared, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (collection, report_id, obj["id"], obj["type"], obj.get("created"),
                     version, from_stix_time(version, "version"), added, obj["id"] in shared,
                     json.dumps(obj, sort_keys=True) if obj["id"] in shared else None),
                )  # fmt: skip
                added += cursor.rowcount
                self._db.execute(
                    "INSERT OR IGNORE INTO members VALUES (?, ?, ?)",
                    (collection, report_id, obj["id"]),
                )
            self._set_state(collection, report_id, LIVE)

    def unexportable(self, collection: str, report_id: str) -> None:
        """A report the exporter refused: remembered, so it is not tried at every request."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._set_state(collection, report_id, UNEXPORTABLE)

    def _set_state(self, collection: str, report_id: str, state: str) -> None:
        self._db.execute(
            "INSERT INTO holdings VALUES (?, ?, ?) ON CONFLICT (collection, report_id) "
            "DO UPDATE SET state = excluded.state",
            (collection, report_id, state),
        )

    def withdraw(self, collection: str, report_id: str, now: datetime) -> None:
        """Stop showing a report: hide every version of the objects no live report still holds,
        and add a revoked version of each such SDO or SRO (later than any version before)."""
        added = max(_us(now), self._last_added() + 1)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._set_state(collection, report_id, WITHDRAWN)
            orphans = [
                r[0]
                for r in self._db.execute(
                    "SELECT m.stix_id FROM members m WHERE m.collection = ? AND m.report_id = ? "
                    "AND NOT EXISTS (SELECT 1 FROM members o JOIN holdings h ON "
                    "h.collection = o.collection AND h.report_id = o.report_id "
                    "WHERE o.collection = m.collection AND o.stix_id = m.stix_id "
                    "AND o.report_id != m.report_id AND h.state = 'live') "
                    "AND NOT EXISTS (SELECT 1 FROM objects s WHERE s.collection = m.collection "
                    "AND s.stix_id = m.stix_id AND s.shared = 1) ORDER BY m.stix_id",
                    (collection, report_id),
                )
            ]
            for stix_id in orphans:
                last = self._db.execute(
                    "SELECT stix_type, created, version, revoked FROM objects "
                    "WHERE collection = ? AND stix_id = ? ORDER BY seq DESC LIMIT 1",
                    (collection, stix_id),
                ).fetchone()
                self._db.execute(
                    "UPDATE objects SET hidden = 1 WHERE collection = ? AND stix_id = ?",
                    (collection, stix_id),
                )
                if last is None or last[1] is None or last[3]:  # an SCO, or revoked already
                    continue
                # A version later than the last one, in milliseconds as stix2 writes them.
                version_us = max(added, from_stix_time(last[2], "version") + 1000) // 1000 * 1000
                self._db.execute(
                    "INSERT OR IGNORE INTO objects (collection, report_id, stix_id, stix_type, "
                    "created, version, version_us, added_us, revoked) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (collection, report_id, stix_id, last[0], last[1],
                     stix_time(version_us), version_us, added),
                )  # fmt: skip
                added += 1

    def page(
        self,
        collection: str,
        *,
        limit: int,
        after_seq: int = 0,
        added_after_us: int | None = None,
        ids: Iterable[str] = (),
        types: Iterable[str] = (),
        versions: Iterable[str] = ("last",),
    ) -> Page:
        """The next ``limit`` rows after ``after_seq`` that the filters match, oldest first.

        ``versions``: ``last`` (the default), ``first``, ``all`` or explicit timestamps, any of
        them (TAXII 2.1 §3.4.1, ``match[version]``).
        """
        query = (
            "SELECT seq, report_id, stix_id, stix_type, created, version, added_us, revoked, "
            "shared, body FROM objects o WHERE collection = ? AND hidden = 0 AND seq > ?"
        )
        params: list[Any] = [collection, after_seq]
        if added_after_us is not None:
            query += " AND added_us > ?"
            params.append(added_after_us)
        for column, values in (("stix_id", list(ids)), ("stix_type", list(types))):
            if values:
                query += f" AND {column} IN ({', '.join('?' * len(values))})"
                params.extend(values)
        wanted = list(versions)
        if "all" not in wanted:
            alternatives = []
            newer = "EXISTS (SELECT 1 FROM objects n WHERE n.collection = o.collection AND "
            newer += "n.stix_id = o.stix_id AND n.hidden = 0 AND n.seq {} o.seq)"
            if "last" in wanted:
                alternatives.append("NOT " + newer.format(">"))
            if "first" in wanted:
                alternatives.append("NOT " + newer.format("<"))
            stamps = [v for v in wanted if v not in ("last", "first")]
            if stamps:
                # Each timestamp in the form this server writes, whatever precision was sent.
                normal = [from_stix_time(v, "match[version]") for v in stamps]
                alternatives.append(f"version_us IN ({', '.join('?' * len(normal))})")
                params.extend(normal)
            query += " AND (" + " OR ".join(alternatives) + ")"
        query += " ORDER BY seq LIMIT ?"
        params.append(limit + 1)
        rows = [
            IndexedObject(s, r, i, t, c, v, a, bool(x), bool(sh), b)
            for s, r, i, t, c, v, a, x, sh, b in self._db.execute(query, params)
        ]
        return Page(rows[:limit], len(rows) > limit)

    def knows(self, collection: str, stix_id: str) -> bool:
        """Whether the collection shows any version of the object (404 otherwise)."""
        row = self._db.execute(
            "SELECT 1 FROM objects WHERE collection = ? AND stix_id = ? AND hidden = 0 LIMIT 1",
            (collection, stix_id),
        ).fetchone()
        return row is not None

    def record_served(self, client: str, report_ids: Iterable[str], now: datetime) -> list[str]:
        """Export is dissemination (issue 18): note the first time each client received each
        report; returns the reports this client had never received before."""
        ms = _us(now) // 1000
        fresh = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for report_id in sorted(set(report_ids)):
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO served VALUES (?, ?, ?)", (client, report_id, ms)
                )
                if cursor.rowcount:
                    fresh.append(report_id)
        return fresh

    def served(self, client: str) -> list[tuple[str, int]]:
        """The reports a client received, with when it first did (ms), oldest first."""
        rows = self._db.execute(
            "SELECT report_id, first_ms FROM served WHERE client = ? ORDER BY first_ms, report_id",
            (client,),
        )
        return [(r, int(ms)) for r, ms in rows]


def _us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
