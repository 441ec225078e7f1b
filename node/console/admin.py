"""Administrator pages: the officer accounts (list, add, disable) and the access log.

The same operations as ``palermo officer add/disable/list/access-log``, for administrators
without a shell on the node's host. Every change is recorded in the access log under the
administrator's name; disabling an account ends its sessions at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from schemas.errors import InputError

from .accesslog import record_access
from .auth import render, require_role
from .auth_state import CONSOLE
from .officers import ROLES, Role, otpauth_uri

__all__ = ["ACCESS_LOG_PAGE", "add_admin_routes"]

ACCESS_LOG_PAGE: Final[int] = 500
"""Entries shown, newest first; ``palermo officer access-log`` prints them all."""
WEB_ROLES: Final[tuple[Role, ...]] = ("reader", "officer")
"""The roles an administrator may give on this page. Decision 0026 keeps administrators from
releasing; were they able to add a release authority (or another administrator) here, they
could give one to an account whose password they chose and release under it, and a stolen
administrator session could do the same. Those roles are given on the node's host
(``palermo officer add``)."""


def _officers_context(request: web.Request) -> dict[str, object]:
    console = request.app[CONSOLE]
    return {"officers": console.officers.all(), "roles": WEB_ROLES, "error": None, "created": None}


@require_role("administrator")
async def officers_page(request: web.Request) -> web.StreamResponse:
    return render(request, "admin/officers.html", _officers_context(request))


@require_role("administrator")
async def add_officer(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    form = await request.post()
    name = str(form.get("name", ""))[:64].strip().lower()
    wanted = [str(r) for r in form.getall("role", [])]
    roles: list[Role] = [r for r in ROLES if r in wanted]
    password = str(form.get("password", ""))
    context = _officers_context(request)
    if len(roles) != len(set(wanted)):
        context["error"] = f"roles must be some of {', '.join(WEB_ROLES)}"
        return render(request, "admin/officers.html", context, status=422)
    host_only = [r for r in roles if r not in WEB_ROLES]
    if host_only:
        context["error"] = (
            f"the {', '.join(host_only)} role is given on the node's host, not here: "
            f"palermo officer add {name or '<name>'} --role {host_only[0]} -c <node.toml>"
        )
        return render(request, "admin/officers.html", context, status=403)
    try:
        officer = console.officers.add(name, roles, password, totp=form.get("totp") == "on")
    except InputError as exc:
        context["error"] = exc.reason
        return render(request, "admin/officers.html", context, status=422)
    record_access(request, "officer-add", detail=f"{officer.name} {','.join(officer.roles)}")
    context = _officers_context(request)
    agency = console.access.chain
    context["created"] = {
        "name": officer.name,
        "totp_uri": otpauth_uri(officer, agency) if officer.totp_secret else None,
    }
    return render(request, "admin/officers.html", context, status=201)


@require_role("administrator")
async def disable_officer(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    name = request.match_info["name"]
    try:
        console.officers.disable(name)
    except InputError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    console.sessions.drop_officer(name)
    record_access(request, "officer-disable", detail=name)
    raise web.HTTPSeeOther("/admin/officers")


@require_role("administrator")
async def access_log_page(request: web.Request) -> web.StreamResponse:
    log = request.app[CONSOLE].access
    report = log.verify()
    entries = [
        {**e, "when": datetime.fromtimestamp(e["time"] / 1000, UTC).isoformat(timespec="seconds")}
        for e in (log.entries() if report.ok else ())
    ]
    who = request.query.get("officer", "")[:64]
    if who:
        entries = [e for e in entries if e.get("officer") == who]
    return render(
        request,
        "admin/access_log.html",
        {
            "report": report,
            "entries": entries[::-1][:ACCESS_LOG_PAGE],
            "total": len(entries),
            "who": who,
        },
    )


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/officers", officers_page)
    app.router.add_post("/admin/officers", add_officer)
    app.router.add_post(r"/admin/officers/{name:[a-z][a-z0-9._-]{1,63}}/disable", disable_officer)
    app.router.add_get("/admin/access-log", access_log_page)
