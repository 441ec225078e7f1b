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

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from node._inbox_keys import InboxError, StorageKey
from node._inbox_threads import _Threads
from schemas import EnvelopeHeader, Report, StatisticalReturn, to_epoch_ms
from schemas.errors import InputError

__all__ = ["Inbox", "InboxEntry", "InboxError", "StorageKey"]


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


class Inbox(_Threads):
    """One agency's received reports."""

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

    def record_sent(
        self, header: EnvelopeHeader, report: Report, now: datetime, tear_line_of: str | None = None
    ) -> None:
        """The originator's own record of what it sent, to whom, and the report itself
        (encrypted at rest): status, retraction and release grants need them.
        ``tear_line_of``: the original envelope this one is the tear-line version of."""
        plaintext = json.dumps(report.to_wire(), sort_keys=True).encode()
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sent (id, header, sent_ms, body, tear_line_of) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    header.id,
                    json.dumps(header.to_wire(), sort_keys=True),
                    to_epoch_ms(now),
                    self._seal("sent", header.id, plaintext),
                    tear_line_of,
                ),
            )

    def tear_lines(self, report_id: str) -> list[str]:
        """The tear-line versions sent of one of our reports, oldest first."""
        rows = self._db.execute(
            "SELECT id FROM sent WHERE tear_line_of = ? ORDER BY sent_ms, id", (report_id,)
        )
        return [r[0] for r in rows]

    def releases(self, report_id: str) -> list[str]:
        """The release envelopes sent of one of our reports (each refs it), oldest first."""
        rows = self._db.execute(
            "SELECT id, header FROM sent WHERE json_extract(header, '$.kind') = 'release' "
            "ORDER BY sent_ms, id"
        )
        return [i for i, header in rows if report_id in json.loads(header).get("refs", [])]

    def sent_report(self, report_id: str) -> Report:
        row = self._db.execute("SELECT body FROM sent WHERE id = ?", (report_id,)).fetchone()
        if row is None or row[0] is None:
            raise InputError(f"this node did not send report {report_id}")
        return Report.from_wire(json.loads(self._open("sent", report_id, row[0])))

    def sent_statistics(self) -> list[StatisticalReturn]:
        """Every statistical return this node has sent, oldest first, retracted ones included
        (a recipient may have kept them): a new return is suppressed linked to them
        (policies.suppress_linked, decision 0025)."""
        rows = self._db.execute(
            "SELECT id, body FROM sent WHERE json_extract(header, '$.kind') = 'statistics' "
            "AND body IS NOT NULL ORDER BY sent_ms, id"
        )
        reports = [Report.from_wire(json.loads(self._open("sent", i, b))) for i, b in rows]
        return [r.statistics for r in reports if r.statistics is not None]

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

    def retracted(self, report_id: str) -> bool:
        """Whether we withdrew one of our reports (a retracted report is never released)."""
        row = self._db.execute("SELECT retracted_ms FROM sent WHERE id = ?", (report_id,))
        found = row.fetchone()
        return found is not None and found[0] is not None

    def sent_retracted(self, report_id: str) -> datetime | None:
        """When this node retracted one of its reports (None: it did not)."""
        row = self._db.execute(
            "SELECT retracted_ms FROM sent WHERE id = ?", (report_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return datetime.fromtimestamp(row[0] / 1000, UTC)

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
