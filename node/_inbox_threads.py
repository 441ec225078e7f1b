"""The inbox's thread messages: requests and responses received, and the requests and release
requests this node sent, with their deadlines and when they were answered.

One table for both directions (``outgoing``): "what is overdue" is then one query over what we
owe and what is owed to us (``palermo requests --overdue``). Bodies are encrypted at rest like
every other body (:mod:`node.inbox`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime
from typing import Any, Final

from node._inbox_files import _InboxFiles
from schemas import EnvelopeHeader, to_epoch_ms
from schemas.errors import InputError

# Added with deadlines (issue 15): older inbox files gain them when opened.
_THREAD_COLUMNS: Final[tuple[str, ...]] = (
    "deadline_ms INTEGER",
    "answered_ms INTEGER",
    "overdue_ms INTEGER",
    "outgoing INTEGER NOT NULL DEFAULT 0",
    "recipient TEXT",
)
_COLUMNS: Final[str] = (
    "id, kind, refs, sender, recipient, priority, received_ms, body, answered_by, answered_ms, "
    "deadline_ms, overdue_ms, outgoing"
)


class _Threads(_InboxFiles):
    """Requests, responses and release requests, in and out."""

    def _open_files(self) -> None:
        super()._open_files()
        for column in _THREAD_COLUMNS:
            with contextlib.suppress(sqlite3.OperationalError):  # already there
                self._db.execute(f"ALTER TABLE threads ADD COLUMN {column}")

    def add_message(self, header: EnvelopeHeader, content: dict[str, Any], now: datetime) -> None:
        """A request or response received (SIENA-style thread messages)."""
        self._add_thread(header, content, now, outgoing=False)

    def record_asked(self, header: EnvelopeHeader, content: dict[str, Any], now: datetime) -> None:
        """A request or release request this node sent: kept to follow its deadline and its
        answer (``palermo requests --sent``, ``palermo release status``)."""
        self._add_thread(header, content, now, outgoing=True)

    def _add_thread(
        self, header: EnvelopeHeader, content: dict[str, Any], now: datetime, *, outgoing: bool
    ) -> None:
        plaintext = json.dumps(content, sort_keys=True).encode()
        sealed = self._seal("threads", header.id, plaintext)
        deadline = content.get("deadline")
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO threads (id, kind, refs, sender, recipient, priority, "
                "received_ms, body, deadline_ms, outgoing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (header.id, header.kind.value, json.dumps(header.refs), header.originator,
                 header.recipients[0], header.priority.value, to_epoch_ms(now), sealed,
                 deadline if isinstance(deadline, int) else None, int(outgoing)),
            )  # fmt: skip

    def mark_answered(self, request_id: str, response_id: str, when: datetime) -> bool:
        """Record the answer to a request (ours or theirs) and its signed time; the first
        answer counts. False if there is no such unanswered request."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE threads SET answered_by = ?, answered_ms = ? "
                "WHERE id = ? AND kind = 'request' AND answered_by IS NULL",
                (response_id, to_epoch_ms(when), request_id),
            )
        return cursor.rowcount == 1

    def thread(self, message_id: str) -> dict[str, Any]:
        """One thread message, either direction."""
        rows = self._threads("WHERE id = ?", (message_id,))
        if not rows:
            raise InputError(f"no request or response {message_id}; see 'palermo requests'")
        return rows[0]

    def messages(self, kind: str, *, outgoing: bool = False) -> list[dict[str, Any]]:
        """Requests or responses received (or, with ``outgoing``, sent), urgent first, then
        newest first, with their text and deadline."""
        return self._threads(
            "WHERE kind = ? AND outgoing = ? ORDER BY priority = 'urgent' DESC, received_ms DESC",
            (kind, int(outgoing)),
        )

    def overdue(self, now: datetime) -> list[dict[str, Any]]:
        """Unanswered requests past their deadline, both those we owe and those owed to us,
        earliest deadline first."""
        return self._threads(
            "WHERE kind = 'request' AND answered_by IS NULL AND deadline_ms IS NOT NULL "
            "AND deadline_ms < ? ORDER BY deadline_ms",
            (to_epoch_ms(now),),
        )

    def flag_overdue(self, message_id: str, now: datetime) -> bool:
        """Mark a request seen overdue; True only the first time (one log event per request)."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE threads SET overdue_ms = ? WHERE id = ? AND overdue_ms IS NULL",
                (to_epoch_ms(now), message_id),
            )
        return cursor.rowcount == 1

    def _threads(self, where: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM threads {where}", args)  # noqa: S608 - fixed columns, our clauses
        out = []
        for (rid, kind, refs, sender, recipient, priority, received, body, answered_by,
             answered_ms, deadline, overdue_ms, outgoing) in rows.fetchall():  # fmt: skip
            out.append(
                {
                    **json.loads(self._open("threads", rid, body)),
                    "id": rid,
                    "kind": kind,
                    "direction": "sent" if outgoing else "received",
                    "refs": json.loads(refs),
                    "from": sender,
                    "to": recipient,
                    "priority": priority,
                    "received_ms": received,
                    "deadline_ms": deadline,
                    "answered_by": answered_by,
                    "answered_ms": answered_ms,
                    "overdue_ms": overdue_ms,
                }
            )
        return out
