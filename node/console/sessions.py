"""Console sessions: random ids kept server-side, an idle timeout read from an injected clock.

A session id is 32 random bytes (``secrets.token_urlsafe``); the cookie carries only that id,
so nothing an attacker could forge or read (roles, names) ever sits in the browser. Every
visitor gets a session, anonymous until login, because the login form needs a CSRF token
too; login replaces the anonymous session with a fresh id (no session fixation). Sessions
live in memory: a node restart logs every officer out, which is the safe failure.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["DEFAULT_IDLE_TIMEOUT", "MAX_SESSIONS", "Session", "SessionStore", "utc_now"]

DEFAULT_IDLE_TIMEOUT: Final[timedelta] = timedelta(minutes=15)
MAX_SESSIONS: Final[int] = 10_000
"""Anonymous sessions cost a visitor nothing to create: past this many the least recently
used are dropped, so a flood of fresh visitors cannot exhaust the node's memory. Logged-in
sessions are counted apart (with the same limit), so such a flood never logs an officer out."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Session:
    """One browser's session; ``officer`` is None until a login succeeds."""

    id: str
    csrf: str
    last_seen: datetime
    officer: str | None = None
    created: datetime = field(default_factory=utc_now)
    generation: int = 0  # the account's credentials generation at login (node.console.officers)


class SessionStore:
    """Sessions by id, expiring ``idle`` after their last request (by ``clock``)."""

    def __init__(
        self,
        idle: timedelta = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], datetime] = utc_now,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self.idle, self.clock, self.limit = idle, clock, limit
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._officers: OrderedDict[str, Session] = OrderedDict()

    def new(self, officer: str | None = None, generation: int = 0) -> Session:
        now = self.clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            last_seen=now,
            officer=officer,
            created=now,
            generation=generation,
        )
        kept = self._pool(session)
        kept[session.id] = session
        while len(kept) > self.limit:
            kept.popitem(last=False)
        return session

    def _pool(self, session: Session) -> OrderedDict[str, Session]:
        return self._anonymous if session.officer is None else self._officers

    def get(self, sid: str | None) -> Session | None:
        """The live session with this id, touched; None if unknown or idle too long (then
        it is dropped: an expired id never comes back)."""
        if not sid:
            return None
        session = self._officers.get(sid) or self._anonymous.get(sid)
        if session is None:
            return None
        pool = self._pool(session)
        now = self.clock()
        if now - session.last_seen > self.idle:
            del pool[sid]
            return None
        session.last_seen = now
        pool.move_to_end(sid)
        return session

    def alive(self, sid: str | None) -> Session | None:
        """The session with this id if it still exists and is not idle too long, *without*
        touching it: for a long-lived stream, which must end with its session but must not
        keep an unattended page logged in."""
        if not sid:
            return None
        session = self._officers.get(sid) or self._anonymous.get(sid)
        if session is None or self.clock() - session.last_seen > self.idle:
            return None
        return session

    def drop(self, sid: str) -> None:
        self._anonymous.pop(sid, None)
        self._officers.pop(sid, None)

    def drop_officer(self, name: str) -> int:
        """End every session of ``name`` (an account disabled); returns how many."""
        ended = [s for s, v in self._officers.items() if v.officer == name]
        for sid in ended:
            del self._officers[sid]
        return len(ended)

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._officers)
