"""The officers' pages: inbox, report view, delivery status (and, from the sibling modules,
compose and publish, the release queue and the requests).

:func:`add_routes` is the hook :func:`node.console.app.build_console_app` calls. Each handler
checks its role with ``require_role`` (nothing else decides access), builds its view-model with
:mod:`node.console.views` and renders a template that extends ``layout.html``. Report ids are
the only report-derived values in URLs; filters and search terms are POSTed (a search term may
be a name from a report: a URL would keep it in the browser's history and proxy logs), and the
console's runner writes no access log (decision 0026).
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from aiohttp import web

from schemas.errors import InputError, PalermoError

from .accesslog import record_access
from .app import STATIC_DIR
from .auth import console_node, render, require_role
from .auth_state import CONSOLE
from .events import add_event_routes
from .pages_compose import add_compose_routes
from .pages_queues import add_queue_routes
from .routemap import route_map
from .views import (
    PERIODS,
    InboxFilter,
    check_report_id,
    fmt_ms,
    inbox_rows,
    report_view,
    thread_view,
)
from .views_compose import choices

__all__ = ["add_routes"]

_log = structlog.get_logger("palermo.console")
MAX_ROWS = 500
"""Rows the inbox page lists (newest first after the urgent ones); filters narrow further."""


async def _inbox_context(request: web.Request) -> dict[str, Any]:
    node = console_node(request)
    console = request.app[CONSOLE]
    # The filters come as a POSTed form: a search term may be a name from a report, and a URL
    # would keep it in the browser's history and in any proxy's log.
    form = await request.post() if request.method == "POST" else {}
    flt = InboxFilter.parse({k: v for k, v in form.items() if isinstance(v, str)})
    pairs = []
    for entry in node.inbox.entries()[:MAX_ROWS]:
        report = None
        if entry.purged_ms is None:
            with contextlib.suppress(InputError, PalermoError):
                _, report = node.inbox.show(entry.id)
        pairs.append((entry, report))
    return {
        "rows": inbox_rows(pairs, flt, console.clock()),
        "filter": flt,
        "choices": choices(),
        "periods": list(PERIODS),
        "agency": node.identity.agency,
    }


@require_role("reader")
async def inbox_page(request: web.Request) -> web.StreamResponse:
    return render(request, "inbox.html", await _inbox_context(request))


@require_role("reader")
async def inbox_rows_partial(request: web.Request) -> web.StreamResponse:
    """The table body alone: htmx swaps it in on a filter change or a live arrival."""
    return render(request, "_inbox_rows.html", await _inbox_context(request))


def _report_id(request: web.Request) -> str:
    try:
        return check_report_id(request.match_info["id"])
    except InputError as exc:
        raise web.HTTPNotFound(text="404: no such report") from exc


@require_role("reader")
async def report_page(request: web.Request) -> web.StreamResponse:
    node = console_node(request)
    rid = _report_id(request)
    try:
        entry, report = node.inbox.show(rid)
    except InputError as exc:
        raise web.HTTPNotFound(text="404: no such report in this inbox") from exc
    now = request.app[CONSOLE].clock()
    # Every opening, by whom: before the page is sent, so a failure to record shows no report.
    record_access(request, "open", report_id=rid)
    try:
        # The originator hears (signed) the first time a person opens it.
        await node.confirm_opened(rid)
    except PalermoError as exc:
        _log.warning("opened receipt not sent; the next opening retries", code=exc.code)
    view = report_view(entry, report, now)
    messages = [*node.inbox.messages("request"), *node.inbox.messages("response")]
    messages += node.inbox.messages("request", outgoing=True)
    retraction = entry.purge_reason if (entry.purge_reason or "").startswith("retracted") else None
    view["thread"] = thread_view(rid, messages, [], [], retraction, now)
    view["map"] = route_map(report) if report is not None else None
    return render(request, "report.html", {"r": view})


@require_role("officer")
async def status_page(request: web.Request) -> web.StreamResponse:
    """Delivery status of one of our reports: each recipient's signed receipt (verified
    against its certificate) or the broker's signed refusal."""
    node = console_node(request)
    rid = _report_id(request)
    try:
        header = node.inbox.sent_header(rid)
        sent = node.inbox.sent_report(rid)
    except InputError as exc:
        raise web.HTTPNotFound(text="404: this node did not send that report") from exc
    problem: str | None = None
    status: dict[str, dict[str, Any]] = {}
    try:
        status = await node.delivery_status(rid)
    except PalermoError as exc:
        problem = exc.reason
    now = request.app[CONSOLE].clock()
    rows = [
        {
            "agency": agency,
            "status": str(row.get("status", "")),
            "signed": row.get("status") in ("delivered", "opened", "refused", "purged"),
            "reasons": [str(r.get("message", "")) for r in row.get("reasons", [])],
            "tear_line": row.get("tear_line"),
        }
        for agency, row in status.items()
    ]
    waiting = sorted(set(header.recipients) - set(status))
    releases = node.inbox.releases(rid)
    thread = thread_view(
        rid,
        [*node.inbox.messages("request"), *node.inbox.messages("response")],
        node.inbox.release_requests(),
        releases,
        "retracted" if node.inbox.retracted(rid) else None,
        now,
    )
    return render(
        request,
        "status.html",
        {
            "id": rid,
            "title": sent.title,
            "sent_banner": header.handling.codes(),
            "created": fmt_ms(int(header.created.timestamp() * 1000)),
            "rows": rows,
            "waiting": waiting,
            "problem": problem,
            "thread": thread,
            "tear_lines": node.inbox.tear_lines(rid),
        },
    )


@require_role("officer")
async def sent_page(request: web.Request) -> web.StreamResponse:
    """The reports published from this console, newest first (from the access log: each
    publish is recorded there with its envelope id)."""
    node = console_node(request)
    console = request.app[CONSOLE]
    rows = []
    for e in reversed(list(console.access.entries())):
        rid = e.get("report")
        if e.get("action") != "publish" or not isinstance(rid, str):
            continue
        with contextlib.suppress(InputError, PalermoError):
            rows.append(
                {
                    "id": rid,
                    "title": node.inbox.sent_report(rid).title,
                    "by": e.get("officer", ""),
                    "when": fmt_ms(e.get("time")),
                }
            )
    return render(request, "sent.html", {"rows": rows[:MAX_ROWS]})


async def favicon(_request: web.Request) -> web.StreamResponse:
    """The browser asks every page's origin for one; without it each page logs a 404."""
    return web.FileResponse(STATIC_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", inbox_page)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_post("/", inbox_page)
    app.router.add_post("/inbox/rows", inbox_rows_partial)
    app.router.add_get(r"/reports/{id:[0-9a-f-]{1,64}}", report_page)
    app.router.add_get(r"/sent/{id:[0-9a-f-]{1,64}}", status_page)
    app.router.add_get("/sent", sent_page)
    add_event_routes(app)
    add_compose_routes(app)
    add_queue_routes(app)
