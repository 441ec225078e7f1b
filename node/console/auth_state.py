"""What the console keeps per application: accounts, sessions, limits, templates, clock.

One :class:`Console` per :func:`node.console.app.build_console_app`, stored under
:data:`CONSOLE` in the aiohttp application; handlers reach it as ``request.app[CONSOLE]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import jinja2
from aiohttp import web

from protocol.hashchain import ChainReport

from .auth_limits import LoginLimiter
from .officers import OfficerStore, Role, has_role
from .sessions import Session, SessionStore

if TYPE_CHECKING:
    from ..service import Node


class AccessRecorder(Protocol):
    """What the console needs of :class:`node.console.accesslog.AccessLog` (a protocol, so
    this module does not import the log, which imports this module for ``record_access``)."""

    chain: str

    def record(
        self,
        officer: str,
        action: Any,
        *,
        report_id: str | None = None,
        detail: str | None = None,
        client: str | None = None,
    ) -> dict[str, Any]: ...

    def entries(self) -> Iterator[dict[str, Any]]: ...

    def verify(self) -> ChainReport: ...


__all__ = [
    "CONSOLE",
    "OFFICER",
    "SESSION",
    "AccessRecorder",
    "Console",
    "CurrentOfficer",
    "client_address",
    "ensure_session",
]


@dataclass(frozen=True)
class CurrentOfficer:
    """The logged-in officer of a request: ``request[OFFICER]``."""

    name: str
    roles: frozenset[Role]  # effective: the implied roles included

    def can(self, role: Role) -> bool:
        return has_role(self.roles, role)


@dataclass
class Console:
    node: Node | None
    officers: OfficerStore
    sessions: SessionStore
    limiter: LoginLimiter
    templates: jinja2.Environment
    clock: Callable[[], datetime]
    access: AccessRecorder
    secure_cookies: bool = True
    trust_forwarded_for: bool = False
    # Read at each login: the federation policy can change while the node runs.
    totp_required: Callable[[], frozenset[Role]] = field(default=lambda: frozenset())
    # Password checks running at once (node.console.auth_pages): each argon2id verification
    # takes 64 MiB and a fifth of a second of CPU, so a burst of logins queues here instead of
    # taking the node's memory.
    verify_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))

    @property
    def cookie_name(self) -> str:
        # "__Host-": browsers keep it only if Secure, Path=/ and no Domain (no subdomain or
        # plain-HTTP page can plant or overwrite it). Plain HTTP (dev on loopback) cannot.
        return "__Host-plm_session" if self.secure_cookies else "plm_session"


CONSOLE = web.AppKey("palermo_console", Console)
OFFICER: web.RequestKey[CurrentOfficer | None] = web.RequestKey("palermo_officer")
"""``request[OFFICER]``: the logged-in :class:`CurrentOfficer`, or None."""
SESSION: web.RequestKey[Session | None] = web.RequestKey("palermo_session")


def ensure_session(request: web.Request) -> Session:
    """The request's session, creating an anonymous one (its cookie is set on the response)."""
    session = request.get(SESSION)
    if session is None:
        session = request.app[CONSOLE].sessions.new()
        request[SESSION] = session
    return session


def client_address(request: web.Request) -> str:
    """The address login limits count: the peer, or behind a trusted proxy the address it
    saw (the last X-Forwarded-For entry: the one our proxy appended, not a client's claim)."""
    if request.app[CONSOLE].trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.remote or "unknown"
