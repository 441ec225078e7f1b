"""Compose, preview and publish a report or alert; send a request.

One form, posted to ``/compose/preview`` (validate, then show who receives it and who does not
and why) or ``/compose/publish`` (validate again, publish, record it, go to its delivery
status). The preview calls the same functions publishing does (``Node.prepared``, then
``decide_report``, which is ``palermo policy check``'s decision per candidate), so what it
shows is what sealing will decide. Nothing of the report goes into a URL: the form is POSTed,
and the redirect after publishing carries only the new envelope id.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from schemas.errors import InputError, PalermoError, ReportInvalid

from ..reports import decide_report
from ..service import Node
from .accesslog import record_access
from .auth import console_node, render, require_role
from .views_compose import ComposeForm, choices, field_errors, recipient_preview

__all__ = ["add_compose_routes"]


def _context(node: Node, form: ComposeForm | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "agency": node.identity.agency,
        "choices": choices(),
        "values": form.values if form else {},
        "tear_line": form.tear_line if form else False,
        "errors": {},
        "other_errors": [],
        "preview": None,
        "problem": None,
        "request_values": {},
        "request_problem": None,
        **extra,
    }


@require_role("officer")
async def compose_page(request: web.Request) -> web.StreamResponse:
    node = console_node(request)
    return render(request, "compose.html", _context(node))


def _preview(node: Node, form: ComposeForm) -> dict[str, Any]:
    """Validation errors, or the recipient preview; raises InputError for a report nobody
    could publish (wrong originator, embargo too far, no federation policy yet)."""
    try:
        report = form.report(node.identity.agency)
    except ReportInvalid as exc:
        by_field, other = field_errors(exc)
        return {"errors": by_field, "other_errors": other}
    report, candidates, now = node.prepared(report, None, None)
    members = node.members_in_good_standing(now)
    wanted = sorted(set(members) | set(candidates))
    decisions = decide_report(report, node.identity.signing, wanted, node.policy, now)
    return {"preview": recipient_preview(decisions, candidates, members)}


@require_role("officer")
async def preview(request: web.Request) -> web.StreamResponse:
    node = console_node(request)
    form = ComposeForm(await request.post())
    try:
        shown = _preview(node, form)
    except InputError as exc:
        return render(request, "compose.html", _context(node, form, problem=exc.reason), status=409)
    status = 422 if "errors" in shown else 200
    return render(request, "compose.html", _context(node, form, **shown), status=status)


@require_role("officer")
async def publish(request: web.Request) -> web.StreamResponse:
    node = console_node(request)
    form = ComposeForm(await request.post())
    try:
        report = form.report(node.identity.agency)
        if form.tear_line:
            both = await node.publish_tear_line(report)
            rid, tear = both.original.header.id, both.tear_line
            detail = f"{report.kind.value} tear-line {tear.header.id if tear else 'none'}"
        else:
            sealed = await node.publish(report)
            rid, detail = sealed.header.id, report.kind.value
    except ReportInvalid as exc:
        by_field, other = field_errors(exc)
        context = _context(node, form, errors=by_field, other_errors=other)
        return render(request, "compose.html", context, status=422)
    except PalermoError as exc:  # nobody may receive it, no key, NATS down: nothing sent
        context = _context(node, form, problem=exc.reason)
        return render(request, "compose.html", context, status=409)
    record_access(request, "publish", report_id=rid, detail=detail)
    raise web.HTTPSeeOther(f"/sent/{rid}")


@require_role("officer")
async def send_request(request: web.Request) -> web.StreamResponse:
    """A request to a partner (or to a report's originator), with its deadline."""
    node = console_node(request)
    form = await request.post()
    values = {
        k: str(form.get(k, "")).strip()[:4000] for k in ("to", "about", "question", "deadline")
    }
    urgent = str(form.get("urgent", "")) == "on"
    try:
        header = await node.request(
            values["question"],
            to=values["to"] or None,
            about=values["about"] or None,
            urgent=urgent,
            deadline=values["deadline"][:40] or None,
        )
    except PalermoError as exc:
        context = _context(node, request_values=values, request_problem=exc.reason)
        return render(request, "compose.html", context, status=409)
    record_access(request, "publish", report_id=header.id, detail="request")
    raise web.HTTPSeeOther("/requests")


def add_compose_routes(app: web.Application) -> None:
    app.router.add_get("/compose", compose_page)
    app.router.add_post("/compose/preview", preview)
    app.router.add_post("/compose/publish", publish)
    app.router.add_post("/compose/request", send_request)
