"""Live arrival for the inbox page, and the Content-Security-Policy violation reports.

``GET /events`` is a server-sent-events stream (``text/event-stream``): when the node stores a
report (``Node.on_stored``), every open inbox page gets an ``arrival`` event and reloads its rows
(``static/console.js``), so an urgent alert shows without a reload. The event carries the
report id and whether it is urgent, nothing of its content: the page fetches the rows through
the normal, role-checked handler.

``POST /csp-report`` takes the reports a browser sends when the page's CSP blocks something
(``report-uri``). A violation on the console means either a bug in our markup or an injection
attempt in partner content that the policy stopped; the reports are kept (bounded) for the
browser tests and counted in the log by directive only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter, deque
from typing import Any, Final

import structlog
from aiohttp import web

from schemas import Report

from ..inbox import InboxEntry
from .auth import require_role
from .auth_state import CONSOLE, OFFICER, SESSION
from .officers import has_role

__all__ = ["CSP_REPORTS", "EVENTS", "Arrivals", "add_event_routes"]

_log = structlog.get_logger("palermo.console")
HEARTBEAT_S: Final[float] = 15.0
"""A comment line this often: a proxy keeps the stream open, a dead client is noticed."""
MAX_STREAMS: Final[int] = 200
MAX_STREAMS_PER_OFFICER: Final[int] = 8
"""A few tabs' worth: without it one officer (or a stolen session) could hold all
``MAX_STREAMS`` and leave every other officer's inbox without live arrival."""
MAX_CSP_REPORTS: Final[int] = 200
MAX_CSP_BODY: Final[int] = 16 * 1024
_CLOSE: Final = None


class Arrivals:
    """The open event streams, each an asyncio queue fed by the node's ``on_stored`` hook."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.per_officer: Counter[str] = Counter()

    def stored(self, entry: InboxEntry, _report: Report) -> None:
        """``Node.on_stored``: tell every open page (called on the node's loop)."""
        event = {"id": entry.id, "urgent": entry.priority == "urgent"}
        for queue in list(self.queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    def close_all(self) -> None:
        for queue in list(self.queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(_CLOSE)


EVENTS: Final = web.AppKey("palermo_console_events", Arrivals)
CSP_REPORTS: Final = web.AppKey("palermo_console_csp_reports", deque[dict[str, Any]])


def _still_allowed(request: web.Request) -> bool:
    """Whether the stream's officer may still see arrivals: the session was not logged out,
    ended by disabling the account or replacing its password or second factor, or left idle
    past the timeout (the stream itself is not activity), and the account still has the
    reader role. Checked before every write."""
    console = request.app[CONSOLE]
    opened = request[SESSION]
    session = console.sessions.alive(opened.id) if opened is not None else None
    if session is None or session.officer is None:
        return False
    account = console.officers.get(session.officer)
    return (
        account is not None
        and not account.disabled
        and account.generation == session.generation
        and has_role(account.roles, "reader")
    )


@require_role("reader")
async def events(request: web.Request) -> web.StreamResponse:
    arrivals = request.app[EVENTS]
    if len(arrivals.queues) >= MAX_STREAMS:
        raise web.HTTPServiceUnavailable(text="503: too many open event streams; reload later")
    officer = request[OFFICER]
    who = officer.name if officer is not None else "-"
    if arrivals.per_officer[who] >= MAX_STREAMS_PER_OFFICER:
        raise web.HTTPTooManyRequests(
            text=f"429: {who} has {MAX_STREAMS_PER_OFFICER} live inbox pages open already; "
            "close some tabs and reload"
        )
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    # Counted before the first await, so streams opened at once cannot all pass the checks.
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=100)
    arrivals.queues.add(queue)
    arrivals.per_officer[who] += 1
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                event = {}
            if event is _CLOSE or not _still_allowed(request):
                break
            if not event:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"event: arrival\ndata: {json.dumps(event)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the page went away, or the server is stopping
    finally:
        arrivals.queues.discard(queue)
        arrivals.per_officer[who] -= 1
        if arrivals.per_officer[who] <= 0:
            del arrivals.per_officer[who]
    return response


async def csp_report(request: web.Request) -> web.Response:
    """Record one violation report (``report-uri`` format, or a Reporting API list)."""
    body = await request.content.read(MAX_CSP_BODY + 1)
    if len(body) > MAX_CSP_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_CSP_BODY, actual_size=len(body))
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise web.HTTPBadRequest(text="400: a CSP report is JSON") from exc
    items = parsed if isinstance(parsed, list) else [parsed]
    for item in items:
        if not isinstance(item, dict):
            continue
        report = item.get("csp-report", item.get("body", item))
        if isinstance(report, dict):
            request.app[CSP_REPORTS].append(report)
            directive = str(report.get("violated-directive", report.get("effectiveDirective")))
            _log.warning("console CSP violation", directive=directive[:80])
    return web.Response(status=204)


def add_event_routes(app: web.Application) -> None:
    """``/events`` fed by the node's stored reports, and ``/csp-report``."""
    arrivals = Arrivals()
    app[EVENTS] = arrivals
    app[CSP_REPORTS] = deque(maxlen=MAX_CSP_REPORTS)
    node = app[CONSOLE].node
    if node is not None:
        node.on_stored.append(arrivals.stored)

    async def on_shutdown(_app: web.Application) -> None:
        # Open streams would hold the runner's cleanup for its whole shutdown timeout.
        arrivals.close_all()
        if node is not None and arrivals.stored in node.on_stored:
            node.on_stored.remove(arrivals.stored)

    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/events", events)
    app.router.add_post("/csp-report", csp_report)
