"""The release queue (release authorities grant or deny, with a justification) and the
requests with their deadlines (time left, overdue ones first and highlighted).

A grant re-seals the report for the one target (``Node.decide_release``, decision 0008); the
justification goes into the signed answer to the requester and, as "grant"/"deny", into the
access log with the request id (the justification's text stays out of the log: it may quote
the report).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from schemas.errors import InputError, PalermoError

from ..requests import DocumentVerdict, time_left
from .accesslog import Action, record_access
from .auth import console_node, render, require_role
from .auth_state import CONSOLE
from .views import fmt_ms

__all__ = ["add_queue_routes"]

PROBLEM: Final = web.RequestKey("palermo_console_problem", str)
MIN_JUSTIFICATION: Final[int] = 3
MAX_JUSTIFICATION: Final[int] = 4000


def _release_rows(request: web.Request) -> list[dict[str, Any]]:
    node = console_node(request)
    rows = []
    for r in node.inbox.release_requests():
        title = ""
        try:
            title = node.inbox.sent_report(r["report"]).title
        except (InputError, PalermoError):
            title = "(not held: purged or not ours)"
        rows.append({**r, "title": title, "received": fmt_ms(r["received_ms"])})
    # Pending first (what needs a decision), newest first within.
    rows.sort(key=lambda r: (r["state"] != "pending", -int(r["received_ms"])))
    return rows


@require_role("release-authority")
async def releases_page(request: web.Request) -> web.StreamResponse:
    return render(request, "releases.html", {"rows": _release_rows(request), "problem": None})


@require_role("release-authority")
async def decide(request: web.Request) -> web.StreamResponse:
    node = console_node(request)
    request_id = request.match_info["id"]
    form = await request.post()
    decision = str(form.get("decision", ""))
    justification = str(form.get("justification", "")).strip()
    problem = None
    if decision not in ("grant", "deny"):
        problem = "choose grant or deny"
    elif not MIN_JUSTIFICATION <= len(justification) <= MAX_JUSTIFICATION:
        problem = (
            f"a justification of {MIN_JUSTIFICATION} to {MAX_JUSTIFICATION} characters is "
            "required: it goes to the requester with the decision"
        )
    if problem is None:
        # The report the request is about, for the access log: "who released what" must be
        # answerable by report id like every opening, not only through the request id.
        asked = [r["report"] for r in node.inbox.release_requests() if r["id"] == request_id]
        try:
            release = await node.decide_release(request_id, decision == "grant", justification)
        except PalermoError as exc:
            problem = exc.reason
        else:
            detail = f"request {request_id}" + (f" release {release}" if release else "")
            action: Action = "grant" if decision == "grant" else "deny"
            record_access(request, action, report_id=asked[0] if asked else None, detail=detail)
            raise web.HTTPSeeOther("/releases")
    context = {"rows": _release_rows(request), "problem": problem}
    return render(request, "releases.html", context, status=409)


def _request_row(m: dict[str, Any], now_ms: int, now: Any) -> dict[str, Any]:
    deadline = m.get("deadline_ms")
    answered = m.get("answered_by") is not None
    return {
        "id": m["id"],
        "direction": m["direction"],
        "from": m["from"],
        "to": m["to"],
        "urgent": m["priority"] == "urgent",
        "text": str(m.get("text", "")),
        "subject": str(m.get("subject", "")),
        "needs_verdict": m.get("subject") == "verify-document",
        "about": (m.get("refs") or [""])[0],
        "received": fmt_ms(m["received_ms"]),
        "deadline": fmt_ms(deadline),
        "time_left": "answered" if answered else time_left(deadline, now),
        "overdue": not answered and deadline is not None and deadline < now_ms,
        "answered": answered,
    }


@require_role("reader")
async def requests_page(request: web.Request) -> web.StreamResponse:
    node = console_node(request)
    now = request.app[CONSOLE].clock()
    now_ms = int(now.timestamp() * 1000)
    messages = [
        *node.inbox.messages("request"),
        *node.inbox.messages("request", outgoing=True),
    ]
    rows = [_request_row(m, now_ms, now) for m in messages]
    # Overdue first, then the nearest deadline, answered ones last.
    rows.sort(key=lambda r: (r["answered"], not r["overdue"], r["deadline"] or "~"))
    verdicts = [v.value for v in DocumentVerdict]
    return render(
        request,
        "requests.html",
        {"rows": rows, "verdicts": verdicts, "problem": request.get(PROBLEM)},
    )


@require_role("officer")
async def respond(request: web.Request) -> web.StreamResponse:
    """Answer a request received (with a verdict for a document verification); the answer is
    threaded to it and closes it."""
    node = console_node(request)
    request_id = request.match_info["id"]
    form = await request.post()
    answer = str(form.get("answer", "")).strip()[:MAX_JUSTIFICATION]
    verdict = str(form.get("verdict", "")) or None
    try:
        if not answer:
            raise InputError("write an answer")
        header = await node.respond(request_id, answer, verdict=verdict)
    except (PalermoError, ValueError) as exc:
        request[PROBLEM] = exc.reason if isinstance(exc, PalermoError) else str(exc)
        response = await requests_page(request)
        response.set_status(409)
        return response
    record_access(request, "publish", report_id=header.id, detail=f"response to {request_id}")
    raise web.HTTPSeeOther("/requests")


def add_queue_routes(app: web.Application) -> None:
    app.router.add_get("/releases", releases_page)
    app.router.add_post(r"/releases/{id:[0-9a-f-]{1,64}}", decide)
    app.router.add_get("/requests", requests_page)
    app.router.add_post(r"/requests/{id:[0-9a-f-]{1,64}}/respond", respond)
