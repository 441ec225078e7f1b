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
used are dropped, so a flood of fresh visitors cannot exhaust the node's memory."""


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


class SessionStore:
    """Sessions by id, expiring ``idle`` after their last request (by ``clock``)."""

    def __init__(
        self,
        idle: timedelta = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], datetime] = utc_now,
        limit: int = MAX_SESSIONS,
    ) -> None:
        self.idle, self.clock, self.limit = idle, clock, limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def new(self, officer: str | None = None) -> Session:
        now = self.clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            last_seen=now,
            officer=officer,
            created=now,
        )
        self._sessions[session.id] = session
        while len(self._sessions) > self.limit:
            self._sessions.popitem(last=False)
        return session

    def get(self, sid: str | None) -> Session | None:
        """The live session with this id, touched; None if unknown or idle too long (then
        it is dropped: an expired id never comes back)."""
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_seen > self.idle:
            del self._sessions[sid]
            return None
        session.last_seen = now
        self._sessions.move_to_end(sid)
        return session

    def drop(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def drop_officer(self, name: str) -> int:
        """End every session of ``name`` (an account disabled); returns how many."""
        ended = [s for s, v in self._sessions.items() if v.officer == name]
        for sid in ended:
            del self._sessions[sid]
        return len(ended)

    def __len__(self) -> int:
        return len(self._sessions)
