"""GET/POST /login and POST /logout.

A login is refused, with the same message whatever was wrong (no telling which names
exist), for a wrong name or password, a disabled account or a wrong second-factor code; it
is refused with 429 and Retry-After once the account or the client address has had too many
failures (:mod:`node.console.auth_limits`). An officer whose role the federation policy
requires TOTP for, but who has none enrolled, is told so after a correct password.
Success replaces the session (a new id: no fixation) and is recorded in the access log.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final

from aiohttp import web

from .accesslog import record_access
from .auth import render
from .auth_state import CONSOLE, OFFICER, SESSION, Console, client_address
from .officers import Officer

__all__ = ["add_auth_routes"]

WRONG: Final[str] = "Wrong name, password or code."
MAX_FIELD: Final[int] = 1100
# A local path of URL characters only. Not merely "starts with one slash": browsers and yarl
# drop tabs and newlines from a URL, so "/\t/evil.example" would become the Location
# "//evil.example", another site; and a backslash reads as a slash to browsers.
_LOCAL_PATH: Final = re.compile(r"/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@/?%-]{0,499}")


def _next_path(value: object) -> str:
    """Where to go after login: a local path only (never another site: no open redirect)."""
    if isinstance(value, str) and _LOCAL_PATH.fullmatch(value):
        return value
    return "/"


async def login_page(request: web.Request) -> web.StreamResponse:
    if request.get(OFFICER) is not None:
        raise web.HTTPSeeOther("/")
    nxt = _next_path(request.query.get("next"))
    return render(request, "login.html", {"error": None, "next": nxt})


def _field(form: object, name: str) -> str:
    value = form.get(name) if hasattr(form, "get") else None
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def _refuse(request: web.Request, message: str, status: int, nxt: str) -> web.Response:
    return render(request, "login.html", {"error": message, "next": nxt}, status=status)


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    name = _field(form, "name").strip().lower()
    password, code = _field(form, "password"), _field(form, "code").strip()
    nxt = _next_path(_field(form, "next"))
    keys = [f"account:{name}", f"client:{client_address(request)}"]
    wait = console.limiter.retry_after(keys)
    if wait is not None:
        response = _refuse(
            request, f"Too many failed logins. Try again in {wait} seconds.", 429, nxt
        )
        response.headers["Retry-After"] = str(wait)
        return response
    # Counted as a failure before the check, which awaits a worker thread: otherwise a burst
    # of concurrent attempts would all pass retry_after before any failure was counted.
    console.limiter.failed(keys)
    officer = await _verified(console, name, password, code) if name and password else None
    if officer is None:
        record_access(request, "login-failed", officer=name[:64] or "-")
        return _refuse(request, WRONG, 401, nxt)
    missing = _totp_missing(officer, console.totp_required())
    if missing:
        record_access(request, "login-failed", officer=name, detail="totp-required")
        return _refuse(
            request,
            f"The federation requires a second factor (TOTP) for the {missing} role. Ask an "
            f"administrator to enrol one: palermo officer totp {officer.name}",
            403,
            nxt,
        )
    console.limiter.clear(keys[0])
    console.limiter.forgive(keys[1])
    old = request.get(SESSION)
    if old is not None:
        console.sessions.drop(old.id)
    request[SESSION] = console.sessions.new(officer.name, officer.generation)
    request[OFFICER] = None  # this response is the redirect; the next request is logged in
    record_access(request, "login", officer=officer.name)
    raise web.HTTPSeeOther(nxt)


async def _verified(console: Console, name: str, password: str, code: str) -> Officer | None:
    """The officer if the password (and second-factor code, when enrolled) are right, checked
    in a worker thread: argon2id is slow on purpose, and on the event loop every login attempt
    would stall the whole node (its ingest and every other officer's page) for its duration."""
    now = console.clock()

    def check() -> Officer | None:
        officer = console.officers.verify_password(name, password)
        if officer is None or officer.totp_secret is None:
            return officer
        return officer if console.officers.verify_totp(officer, code, now) else None

    async with console.verify_slots:
        return await asyncio.to_thread(check)


def _totp_missing(officer: Officer, required: frozenset[str]) -> str | None:
    if officer.totp_secret is not None:
        return None
    roles = sorted(officer.effective & required)
    return roles[0] if roles else None


async def logout(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    session = request.get(SESSION)
    if request.get(OFFICER) is not None:
        record_access(request, "logout")
    if session is not None:
        console.sessions.drop(session.id)
    request[SESSION] = console.sessions.new()
    request[OFFICER] = None
    raise web.HTTPSeeOther("/login")


def add_auth_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
