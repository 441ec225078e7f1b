"""CSRF protection: every request that is not GET, HEAD or OPTIONS must carry the session's
token, in the form field ``csrf_token`` or the ``X-CSRF-Token`` header (htmx).

The token is random per session (never derived from anything a page shows) and compared in
constant time. SameSite=Strict cookies already keep other sites' forms from arriving
logged in; the token also covers a browser without SameSite and the login form itself (login
CSRF: being logged in as the attacker). A refusal is a 403 saying what happened.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from .auth_state import SESSION, ensure_session

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "csrf_middleware", "csrf_token"]

CSRF_FIELD: Final[str] = "csrf_token"
CSRF_HEADER: Final[str] = "X-CSRF-Token"
SAFE_METHODS: Final[frozenset[str]] = frozenset({"GET", "HEAD", "OPTIONS"})
# Browsers send CSP violation reports without our token; the one endpoint that takes them only
# appends to a bounded list (node.console.pages). Nothing else is exempt.
CSP_REPORT: Final[tuple[str, frozenset[str]]] = (
    "/csp-report",
    frozenset({"application/csp-report", "application/reports+json"}),
)
REFUSAL: Final[str] = (
    "403 Forbidden: this form did not carry a valid CSRF token (it was sent from another "
    "page, or your session expired). Reload the page and submit it again."
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def csrf_token(request: web.Request) -> str:
    """The token to put in every form (``<input type="hidden" name="csrf_token" ...>``)."""
    return ensure_session(request).csrf


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS:
        return await handler(request)
    if request.path == CSP_REPORT[0] and request.content_type in CSP_REPORT[1]:
        return await handler(request)
    session = request.get(SESSION)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        # aiohttp caches the parsed form: the handler's own request.post() reads it again free.
        value = (await request.post()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    # Compared as bytes: compare_digest raises TypeError (a 500) on a non-ASCII str, and the
    # sender chooses what it sends.
    if session is None or not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise web.HTTPForbidden(text=REFUSAL)
    return await handler(request)
