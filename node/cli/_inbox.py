"""``palermo inbox list|show``: read the reports this agency received, straight from the
node's inbox file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import err_console, handles_errors, out_console, print_json

from ._common import ConfigOption, _node, _open_inbox

inbox_app = typer.Typer(help="Read the reports this agency received.", no_args_is_help=True)


@inbox_app.command("list")
@handles_errors
def inbox_list(
    config: ConfigOption,
    route: Annotated[str | None, typer.Option(help="Only this route topic.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Received at or after (UTC).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The reports received, newest first, each with its handling codes.

    Example: palermo inbox list --config mlt.node.toml --route central-med
    """
    with _open_inbox(config) as inbox:
        entries = inbox.entries(route=route, since=since.astimezone() if since else None)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    for e in entries:
        state = "purged" if e.purged_ms else " ".join(e.codes)
        out_console.print(f"{e.id}  {e.originator:<10} {e.route:<14} {e.priority:<8} {state}")


def _send_opened(config: Path, report_id: str) -> None:
    """The 'opened' receipt; the report is shown even if NATS cannot be reached right now."""
    from schemas.errors import PalermoError

    async def go() -> None:
        async with _node(config) as node:
            await node.confirm_opened(report_id)

    try:
        asyncio.run(go())
    except PalermoError as exc:
        err_console.print(f"warning: the 'opened' receipt was not sent: {exc.reason}", markup=False)


@inbox_app.command("show")
@handles_errors
def inbox_show(
    report_id: Annotated[str, typer.Argument(help="Report id from 'palermo inbox list'.")],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One report with its handling banner and obligations (H1/H2 always shown).

    Example: palermo inbox show 01a2... --config mlt.node.toml
    """
    with _open_inbox(config) as inbox:
        entry, report = inbox.show(report_id)
    if report is not None:
        _send_opened(config, report_id)
    data = {**entry.to_dict(), "report": report.to_wire() if report else None}
    if as_json:
        print_json(data)
        return
    out_console.print(f"[bold]{' '.join(entry.codes)}[/]  from {entry.originator}", markup=True)
    for ob in entry.obligations:
        out_console.print(f"  {ob['code']}: {ob.get('message', '')}", markup=False)
    if report is None:
        # A tombstone: the content is gone, and an officer asking for it needs to know why.
        when = (
            datetime.fromtimestamp(entry.purged_ms / 1000, UTC).isoformat(timespec="seconds")
            if entry.purged_ms
            else "an unknown time"
        )
        out_console.print(
            f"purged at {when}: {entry.purge_reason or 'no reason recorded'}; only this "
            "record that it was received remains",
            markup=False,
        )
        return
    print_json(data["report"])
