"""Onward dissemination and questions between agencies: ``palermo release
request|pending|grant|deny|status``, ``request``, ``requests`` and ``respond``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from protocol.commandline import handles_errors, out_console, print_json
from schemas.errors import InputError

from ..requests import Access, DocumentVerdict, RequestSubject, time_left
from ._common import ConfigOption, _node, _open_inbox

release_app = typer.Typer(
    help="Ask for, and decide on, onward dissemination.", no_args_is_help=True
)


@release_app.command("request")
@handles_errors
def release_request(
    report_id: Annotated[str, typer.Argument(help="A report in this node's inbox.")],
    to: Annotated[str, typer.Option("--to", help="The agency to share it with.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why (the originator decides).")],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ask the report's originator to let this agency pass it on.

    Example: palermo release request 01a2... --to AUS-ABF --purpose "joint op" -c mlt.node.toml
    """

    async def go() -> Any:
        async with _node(config) as node:
            return await node.request_release(report_id, to, purpose)

    header = asyncio.run(go())
    if as_json:
        print_json({"request": header.id, "report": report_id, "to": header.recipients[0]})
        return
    out_console.print(f"release request {header.id} sent to {header.recipients[0]}")


@release_app.command("pending")
@handles_errors
def release_pending(
    config: ConfigOption, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Release requests waiting for an officer's decision (requests policy forbids are refused
    automatically and not listed).

    Example: palermo release pending --config ita.node.toml
    """
    with _open_inbox(config) as inbox:
        rows = inbox.release_requests("pending")
    if as_json:
        print_json(rows)
        return
    for r in rows:
        out_console.print(
            f"{r['id']}  {r['requester']} → {r['target']}  report {r['report']}: {r['purpose']}",
            markup=False,
        )


def _decide(request_id: str, config: Path, grant: bool, reason: str) -> None:
    async def go() -> Any:
        async with _node(config) as node:
            return await node.decide_release(request_id, grant, reason)

    release = asyncio.run(go())
    verb = f"granted: release {release} sent" if grant else "denied; the requester is told"
    out_console.print(f"request {request_id} {verb}")


@release_app.command("grant")
@handles_errors
def release_grant(
    request_id: Annotated[str, typer.Argument(help="From 'palermo release pending'.")],
    config: ConfigOption,
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """Grant: seal the report for the new partner (a release envelope) and tell the requester.

    Example: palermo release grant 01a2... --config ita.node.toml
    """
    _decide(request_id, config, True, reason)


@release_app.command("deny")
@handles_errors
def release_deny(
    request_id: Annotated[str, typer.Argument(help="From 'palermo release pending'.")],
    reason: Annotated[str, typer.Option("--reason", help="Shown to the requester.")],
    config: ConfigOption,
) -> None:
    """Deny, with a reason the requester sees.

    Example: palermo release deny 01a2... --reason "ongoing operation" --config ita.node.toml
    """
    _decide(request_id, config, False, reason)


@release_app.command("status")
@handles_errors
def release_status(
    config: ConfigOption, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The release requests this agency sent and the originator's signed decision on each
    (pending, granted with the release's id, or denied with the reason).

    Example: palermo release status --config mlt.node.toml
    """

    async def go() -> Any:
        async with _node(config) as node:
            return await node.release_status()

    rows = asyncio.run(go())
    if as_json:
        print_json(rows)
        return
    if not rows:
        out_console.print("no release requests sent")
    for r in rows:
        how = {"granted": f" (release {r['release']})", "denied": f": {r['reason']}"}
        out_console.print(
            f"{r['request']}  report {r['report']} → {r['target']}, asked of "
            f"{r['originator']}: {r['decision']}{how.get(r['decision'], '')}",
            markup=False,
        )


def request_cmd(
    question: Annotated[str, typer.Option("--question", help="What you ask.")],
    config: ConfigOption,
    report_id: Annotated[
        str | None, typer.Argument(help="A report in this node's inbox (same as --about).")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="The member asked (default: the report's originator)."),
    ] = None,
    about: Annotated[
        str | None, typer.Option("--about", help="A report in this node's inbox it is about.")
    ] = None,
    subject: Annotated[
        RequestSubject, typer.Option("--subject", help="What is asked for.")
    ] = RequestSubject.INFORMATION,
    identifier: Annotated[
        str | None,
        typer.Option("--identifier", help="The document number, name, vessel, phone or wallet."),
    ] = None,
    urgent: Annotated[
        bool, typer.Option("--urgent", help="Surfaced first; shorter deadline.")
    ] = False,
    access: Annotated[
        Access,
        typer.Option("--access", help="Whether the partner holds the data itself (direct)."),
    ] = Access.INDIRECT,
    deadline: Annotated[
        str | None,
        typer.Option("--deadline", help="Overrides art. 5(1): 90m, 12h, 2d or an RFC 3339 time."),
    ] = None,
    route: Annotated[str | None, typer.Option("--route", help="Topic (default: other).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ask a member for information, cold (--to) or about a report (--about). Deadlines follow
    Directive (EU) 2023/977 art. 5(1) unless --deadline: 8 hours for urgent requests on
    directly accessible data, 3 days for urgent ones on indirectly accessible data, 7 days
    otherwise.

    Example: palermo request --to ITA-GDF --subject verify-document --identifier YA1234567
    --question "Is this passport genuine?" --urgent --access direct -c mlt.node.toml
    """

    about = about or report_id

    async def go() -> Any:
        async with _node(config) as node:
            return await node.request(
                question, to=to, about=about, subject=subject, identifier=identifier,
                urgent=urgent, access=access, deadline=deadline, route=route,
            )  # fmt: skip

    header = asyncio.run(go())
    with _open_inbox(config) as inbox:
        row = inbox.thread(header.id)
    if as_json:
        print_json({"request": header.id, "about": about, "to": header.recipients[0],
                    "deadline_ms": row["deadline_ms"]})  # fmt: skip
        return
    due = time_left(row["deadline_ms"], datetime.now(UTC))
    out_console.print(f"request {header.id} sent to {header.recipients[0]}; {due}")


def respond_cmd(
    request_id: Annotated[str, typer.Argument(help="From 'palermo requests'.")],
    answer: Annotated[str, typer.Option("--answer", help="Your answer.")],
    config: ConfigOption,
    verdict: Annotated[
        DocumentVerdict | None,
        typer.Option("--verdict", help="The result of a document verification (required there)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Answer a request; the response is threaded to the request (and the report). The
    requester's signed receipt of it ('palermo status RESPONSE') proves when it was given.

    Example: palermo respond 01a2... --answer "Issued 2024" --verdict genuine -c ita.node.toml
    """

    async def go() -> Any:
        async with _node(config) as node:
            return await node.respond(request_id, answer, verdict=verdict)

    header = asyncio.run(go())
    if as_json:
        print_json({"response": header.id, "request": request_id, "to": header.recipients[0]})
        return
    out_console.print(f"response {header.id} sent to {header.recipients[0]}")


def messages_cmd(
    config: ConfigOption,
    responses: Annotated[bool, typer.Option("--responses", help="Show answers received.")] = False,
    sent: Annotated[bool, typer.Option("--sent", help="Requests this agency sent.")] = False,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Unanswered past their deadline, both directions.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Judge deadlines at this RFC 3339 time instead of now."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Requests received (urgent first) with the time left to answer; --sent for those sent,
    --responses for the answers received, --overdue for late ones on both sides (--at: as
    they will stand then, e.g. before a weekend).

    Example: palermo requests --overdue --at 2026-05-04T08:00:00Z --config ita.node.toml
    """
    now = _when(at)
    with _open_inbox(config) as inbox:
        if overdue:
            rows = inbox.overdue(now)
        elif responses:
            rows = inbox.messages("response")
        else:
            rows = inbox.messages("request", outgoing=sent)
    for m in rows:
        if m["kind"] == "request":
            m["time_left"] = time_left(m["deadline_ms"], now)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out_console.print("nothing overdue" if overdue else "none")
    for m in rows:
        peer = f"to {m['to']}" if m["direction"] == "sent" else f"from {m['from']}"
        if m["kind"] == "response":
            verdict = f" [{m['verdict']}]" if m.get("verdict") else ""
            line = f"{m['id']}  {peer} re {', '.join(m['refs'])}{verdict}: {m['text']}"
        else:
            what = m.get("subject", "information")
            what += f" {m['identifier']}" if m.get("identifier") else ""
            state = f"answered by {m['answered_by']}" if m["answered_by"] else m["time_left"]
            line = f"{m['id']}  {m['priority']:<8} {peer} {what} ({state}): {m['text']}"
        out_console.print(line, markup=False)


def _when(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InputError(f"--at {at!r} is not an RFC 3339 time with a zone (2026-05-04T08:00Z)")
    return when
