"""Onward dissemination and questions between agencies: ``palermo release
request|pending|grant|deny``, ``request``, ``requests`` and ``respond``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from protocol.commandline import handles_errors, out_console, print_json

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


def request_cmd(
    report_id: Annotated[str, typer.Argument(help="A report in this node's inbox.")],
    question: Annotated[str, typer.Option("--question", help="What you ask the originator.")],
    config: ConfigOption,
    verify_document: Annotated[
        bool, typer.Option("--document-verification", help="A document check (003 p.49).")
    ] = False,
    urgent: Annotated[bool, typer.Option("--urgent", help="Surfaced first.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ask a report's originator for information or a document verification.

    Example: palermo request 01a2... --question "Is the passport genuine?" --urgent -c mlt.node.toml
    """
    subject = "document-verification" if verify_document else "information"

    async def go() -> Any:
        async with _node(config) as node:
            return await node.request(report_id, question, subject=subject, urgent=urgent)

    header = asyncio.run(go())
    if as_json:
        print_json({"request": header.id, "report": report_id, "to": header.recipients[0]})
        return
    out_console.print(f"request {header.id} sent to {header.recipients[0]}")


def respond_cmd(
    request_id: Annotated[str, typer.Argument(help="From 'palermo requests'.")],
    answer: Annotated[str, typer.Option("--answer", help="Your answer.")],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Answer a request; the response is threaded to the request and the report.

    Example: palermo respond 01a2... --answer "Genuine, issued 2024" --config ita.node.toml
    """

    async def go() -> Any:
        async with _node(config) as node:
            return await node.respond(request_id, answer)

    header = asyncio.run(go())
    if as_json:
        print_json({"response": header.id, "request": request_id, "to": header.recipients[0]})
        return
    out_console.print(f"response {header.id} sent to {header.recipients[0]}")


def messages_cmd(
    config: ConfigOption,
    responses: Annotated[bool, typer.Option("--responses", help="Show answers received.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Requests received (urgent first), or with --responses the answers received.

    Example: palermo requests --config ita.node.toml
    """
    with _open_inbox(config) as inbox:
        rows = inbox.messages("response" if responses else "request")
    if as_json:
        print_json(rows)
        return
    for m in rows:
        done = f" answered by {m['answered_by']}" if m.get("answered_by") else ""
        about = m["refs"][0] if m["refs"] else "-"
        line = f"{m['id']}  {m['priority']:<8} from {m['from']} about {about}{done}: {m['text']}"
        out_console.print(line, markup=False)
