"""``palermo misp export|import``: a report as a MISP event (offline), an event as a draft.

Exports from the node are recorded per officer, as for STIX (``_stix.py``); the event's
distribution and sharing group follow the rule in ``node.interop.misp.distribution``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import err_console, handles_errors

from ._stix import (
    ConfigOpt,
    IdOpt,
    OfficerOpt,
    OutputOpt,
    WithholdOpt,
    export_report,
    write_drafts,
)

misp_app = typer.Typer(
    help="MISP (offline): export a report as an event, import an event as a draft.",
    no_args_is_help=True,
)


@misp_app.command("export")
@handles_errors
def misp_export(
    source: Annotated[str, typer.Argument(help="REPORT_ID (inbox or outbox) or an IIR JSON FILE.")],
    config: ConfigOpt = None,
    output: OutputOpt = None,
    withhold: WithholdOpt = None,
    officer: OfficerOpt = None,
    report_id: IdOpt = None,
) -> None:
    """A report as a MISP event (MISP core format): one tlp: and one PAP: tag, distribution
    and sharing group from rel_to.

    Example: palermo misp export 01936f... --config ita.node.toml -o event.misp.json
    """
    from node.interop import export_event

    export_report(source, config, report_id, withhold, officer, output, "misp",
                  lambda *a, **kw: export_event(*a, **kw).to_json(indent=2))  # fmt: skip


@misp_app.command("import")
@handles_errors
def misp_import(
    file: Annotated[Path, typer.Argument(help="A MISP event (JSON).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the draft.")] = Path(
        "."
    ),
    originator: Annotated[str | None, typer.Option(help="For an event not from Palermo.")] = None,
    category: Annotated[str | None, typer.Option(help="For an event not from Palermo.")] = None,
    route: Annotated[str | None, typer.Option(help="For an event not from Palermo.")] = None,
) -> None:
    """A MISP event as an IIR draft; an unmappable distribution or tag is refused.

    Example: palermo misp import event.json -o drafts/
    """
    from node.interop import Defaults, import_event
    from schemas.errors import ConfigError

    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
    draft = import_event(text, defaults=Defaults(originator, category, route))
    for path in write_drafts([draft], output):
        err_console.print(f"draft {path}", markup=False)
