"""``palermo schema``: the report schema for partners and for checking drafts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import handles_errors, out_console, print_json
from schemas.errors import ConfigError
from schemas.export import export_json_schemas, parse_report

schema_app = typer.Typer(help="Export and use the IIR v1 schema.", no_args_is_help=True)


@schema_app.command("export")
@handles_errors
def export(
    out: Annotated[Path, typer.Argument(help="Directory to write *.schema.json into.")],
) -> None:
    """Write the JSON Schemas of the report, the handling block and the envelope header.

    Example: palermo schema export ./schemas-json
    """
    for path in export_json_schemas(out):
        out_console.print(f"wrote {path}")


@schema_app.command("validate")
@handles_errors
def validate(
    report: Annotated[Path, typer.Argument(help="A report as JSON (IIR v1).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Validate a report; every invalid field is named with what is wrong.

    Example: palermo schema validate schemas/examples/01-routes-central-med-departure.json
    """
    try:
        text = report.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {report}: {exc.strerror}") from exc
    parsed = parse_report(text)
    if as_json:
        print_json({"valid": True, "title": parsed.title, "originator": parsed.originator})
    else:
        out_console.print(f"{report}: valid IIR v1 report from {parsed.originator}")
