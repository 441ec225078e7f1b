"""``palermo schema``: the report schema for partners and for checking drafts."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from protocol.commandline import handles_errors, out_console, print_json
from schemas._upgrade import upgrade_data
from schemas.errors import ConfigError
from schemas.export import export_json_schemas, parse_report

schema_app = typer.Typer(
    help="Export and use the IIR schema (iir/1 and iir/1.1).", no_args_is_help=True
)


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
    report: Annotated[Path, typer.Argument(help="A report as JSON (iir/1 or iir/1.1).")],
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
        print_json(
            {
                "valid": True,
                "schema": parsed.schema_,
                "title": parsed.title,
                "originator": parsed.originator,
            }
        )
    else:
        out_console.print(f"{report}: valid {parsed.schema_} report from {parsed.originator}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def _json_text(data: Any) -> str:
    # Not sorted: the author's key order stays, so the upgrade diffs as two changed lines.
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    # Through a temporary file in the same directory and a rename, so an interrupted rewrite
    # never leaves half a report in place of the original.
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc


@schema_app.command("upgrade")
@handles_errors
def upgrade(
    report: Annotated[Path, typer.Argument(help="A report as JSON (iir/1 or iir/1.1).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the iir/1.1 report here.")
    ] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Rewrite REPORT itself.")] = False,
) -> None:
    """Rewrite an iir/1 report as iir/1.1 without changing its meaning.

    Only "schema" and the handling's "action" change: an iir/1 report without an action code
    means A1, an iir/1.1 report without one means none, so the code is written out. The result
    goes to stdout unless -o or --in-place is given; an iir/1.1 report is left as it is.

    Example: palermo schema upgrade report.json -o report-1.1.json
    """
    if out is not None and in_place:
        raise ConfigError("give either -o/--out or --in-place, not both")
    original = _read(report)
    data = upgrade_data(original)
    if in_place:
        # upgrade_data validated the file, so it is JSON; unchanged means already iir/1.1.
        if data == json.loads(original):
            out_console.print(f"{report}: already iir/1.1, left as it is")
            return
        _write_atomically(report, _json_text(data))
        out_console.print(f"wrote {report}")
    elif out is not None:
        _write_atomically(out, _json_text(data))
        out_console.print(f"wrote {out}")
    else:
        sys.stdout.write(_json_text(data))
