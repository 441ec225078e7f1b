"""Who is asking: the session middleware, ``require_role`` and rendering pages with the
officer and CSRF token in them.

Every request passes :func:`session_middleware`, which finds the session from its cookie
(dropping it when idle too long or its account was disabled) and sets ``request[OFFICER]``
(a :class:`CurrentOfficer`, or None). Handlers declare the role they need with
:func:`require_role`; nothing else decides access.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from .auth_state import CONSOLE, OFFICER, SESSION, CurrentOfficer, ensure_session
from .csrf import csrf_token
from .officers import Role
from .sessions import Session

if TYPE_CHECKING:
    from ..service import Node

__all__ = [
    "CurrentOfficer",
    "console_node",
    "render",
    "require_role",
    "session_middleware",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOGIN_PATH: Final[str] = "/login"
LIVE_HEADER: Final[str] = "X-Palermo-Live"
"""Sent by ``static/console.js`` when the inbox refreshes itself on a live arrival: such a
request is not the officer at work, so it does not reset the idle timeout (otherwise a busy
inbox left open on an unattended desk would stay logged in for ever)."""


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE]
    incoming = request.cookies.get(console.cookie_name)
    if request.headers.get(LIVE_HEADER) == "1":
        session = console.sessions.alive(incoming)
    else:
        session = console.sessions.get(incoming)
    officer: CurrentOfficer | None = None
    if session is not None and session.officer is not None:
        account = console.officers.get(session.officer)
        if account is None or account.disabled or account.generation != session.generation:
            # Disabled, or its password or second factor replaced since this login.
            console.sessions.drop(session.id)
            session = None
        else:
            officer = CurrentOfficer(account.name, account.effective)
    request[SESSION] = session
    request[OFFICER] = officer
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _set_cookie(request, exc, incoming)
        raise
    _set_cookie(request, response, incoming)
    return response


def _set_cookie(request: web.Request, response: web.StreamResponse, incoming: str | None) -> None:
    """Send the cookie when the session changed (created, or replaced at login/logout)."""
    console = request.app[CONSOLE]
    session: Session | None = request.get(SESSION)
    if session is None or session.id == incoming:
        return
    response.set_cookie(
        console.cookie_name,
        session.id,
        path="/",
        secure=console.secure_cookies,
        httponly=True,
        samesite="Strict",
    )


def require_role(role: Role) -> Callable[[Handler], Handler]:
    """Decorate a handler: anonymous GETs are sent to /login (303), other anonymous requests
    get 401; an officer without ``role`` (or a role implying it) gets 403."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            officer: CurrentOfficer | None = request.get(OFFICER)
            if officer is None:
                if request.method in ("GET", "HEAD"):
                    raise web.HTTPSeeOther(LOGIN_PATH)
                raise web.HTTPUnauthorized(text="401 Unauthorized: log in at /login first.")
            if not officer.can(role):
                raise web.HTTPForbidden(
                    text=f"403 Forbidden: this needs the {role} role; {officer.name} has "
                    f"{', '.join(sorted(officer.roles))}."
                )
            return await handler(request)

        guarded.required_role = role  # type: ignore[attr-defined]  # route tests read it
        return guarded

    return wrap


def console_node(request: web.Request) -> Node:
    """The running :class:`node.service.Node` behind the console; 503 if the console was
    built without one (tests of the accounts pages)."""
    node = request.app[CONSOLE].node
    if node is None:
        raise web.HTTPServiceUnavailable(text="503: this console has no node behind it.")
    return node


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """``template`` rendered (autoescaped) with ``officer`` and ``csrf_token`` added."""
    console = request.app[CONSOLE]
    ensure_session(request)
    values = {
        "officer": request.get(OFFICER),
        "csrf_token": csrf_token(request),
        **(context or {}),
    }
    html = console.templates.get_template(template).render(values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
