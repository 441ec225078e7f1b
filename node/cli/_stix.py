"""``palermo stix export|import``: a report as a STIX 2.1 bundle, a bundle as IIR drafts.

An export from the node (a report id from the inbox or the outbox) is dissemination: it is
recorded per officer in the node's export log (``node/interop/exportlog.py``), and the sealed
sections this node could not open (or the officer withholds) are left out. docs/interop.md says
which handling allows which export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from protocol.commandline import err_console, handles_errors, out_console

from ._common import _open_inbox

if TYPE_CHECKING:
    from node.interop import Draft
    from schemas import Report

stix_app = typer.Typer(
    help="STIX 2.1: export a report as a bundle, import a bundle as drafts.", no_args_is_help=True
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="The node's node.toml (for a report id).")
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
]
WithholdOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--withhold", help="Leave out a sealed section: personal-data, protected-persons."
    ),
]
OfficerOpt = Annotated[
    str | None, typer.Option("--officer", help="Who exports (recorded; default: the login name).")
]
IdOpt = Annotated[
    str | None, typer.Option("--id", help="Report id for a FILE (default: from its content).")
]


@dataclass(frozen=True)
class Source:
    """A report to export and what the export must know about it."""

    report: Report
    report_id: str
    created: datetime
    withheld: frozenset[str]
    retracted: bool
    state_dir: Path | None
    agency: str | None = None


def _uuid7_time(report_id: str | None) -> datetime | None:
    """The creation time inside an envelope id (UUIDv7: 48 bits of Unix milliseconds), so a
    file exported again under the same ``--id`` keeps the same STIX ``created``."""
    import uuid

    try:
        parsed = uuid.UUID(report_id or "")
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return datetime.fromtimestamp((parsed.int >> 80) / 1000, UTC)


def load_source(source: str, config: Path | None, report_id: str | None) -> Source:
    """A report from a file, or by id from the node's inbox (received) or outbox (sent)."""
    from node.interop import file_report_id
    from schemas import EnvelopeHeader
    from schemas.errors import ConfigError, InputError
    from schemas.export import parse_report

    from ..config import NodeSettings

    path = Path(source)
    if path.is_file():
        try:
            report = parse_report(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        created = _uuid7_time(report_id) or report.observed or datetime.now(UTC)
        return Source(
            report, report_id or file_report_id(report), created, frozenset(), False, None
        )
    if config is None:
        raise InputError(f"{source} is not a file; for a report id give the node's --config")
    settings = NodeSettings.load(config)
    state = settings.state_dir
    with _open_inbox(config) as inbox:
        try:
            entry, received = inbox.show(source)
        except InputError:
            try:
                sent = inbox.sent_report(source)
            except InputError:
                raise InputError(
                    f"no report {source} in this node's inbox or outbox; see "
                    "'palermo inbox list' and 'palermo status', or give an IIR JSON file"
                ) from None
            header = inbox.sent_header(source)
            retracted = inbox.sent_retracted(source) is not None
            return Source(
                sent, source, header.created, frozenset(), retracted, state, settings.agency
            )
    if received is None:
        raise InputError(
            f"report {source} was purged ({entry.purge_reason or 'no reason recorded'}): there "
            "is no content left to export"
        )
    header = EnvelopeHeader.model_validate(entry.header)
    return Source(
        received, source, header.created, frozenset(entry.withheld), False, state, settings.agency
    )


def check_exportable(src: Source, now: datetime) -> None:
    """A report past its expiry may not leave Palermo (its recipients must purge it); a
    retracted one of ours still exports, as revoked objects, so the retraction reaches the
    tools the earlier export went to."""
    from schemas.errors import InputError

    expires = src.report.handling.expires
    if expires is not None and expires <= now and not src.retracted:
        raise InputError(
            f"report {src.report_id} expired at {expires.isoformat()}: an expired report is "
            "purged, not exported"
        )


def record(
    src: Source, fmt: str, officer: str | None, withheld: set[str], output: Path | None
) -> None:
    """Export is dissemination: a node's report leaves a line in the node's export log."""
    if src.state_dir is None:
        return
    import getpass

    from node.interop.exportlog import EXPORT_LOG, record_export

    record_export(
        src.state_dir / EXPORT_LOG,
        officer=officer or getpass.getuser(),
        report_id=src.report_id,
        originator=src.report.originator,
        fmt=fmt,
        handling=src.report.handling,
        withheld=withheld,
        retracted=src.retracted,
        destination=str(output) if output else "stdout",
        now=datetime.now(UTC),
        agency=src.agency,
    )


def export_report(
    source: str,
    config: Path | None,
    report_id: str | None,
    withhold: list[str] | None,
    officer: str | None,
    output: Path | None,
    fmt: str,
    render: Callable[..., str],
) -> None:
    """What every export command does: load the report, refuse what may not leave, record the
    export, then write what ``render(report, report_id=, created=, modified=, withhold=,
    retracted=)`` made of it."""
    src = load_source(source, config, report_id)
    now = datetime.now(UTC)
    check_exportable(src, now)
    withheld = set(src.withheld) | set(withhold or [])
    text = render(
        src.report,
        report_id=src.report_id,
        created=src.created,
        modified=max(now, src.created),
        withhold=withheld,
        retracted=src.retracted,
    )
    # Recorded first: an export the log could not record does not happen.
    record(src, fmt, officer, withheld, output)
    write(text, output)


def write(text: str, output: Path | None) -> None:
    if output is None:
        out_console.file.write(text + "\n")
    else:
        output.write_text(text + "\n")
        err_console.print(f"wrote {output}", markup=False)


@stix_app.command("export")
@handles_errors
def stix_export(
    source: Annotated[str, typer.Argument(help="REPORT_ID (inbox or outbox) or an IIR JSON FILE.")],
    config: ConfigOpt = None,
    output: OutputOpt = None,
    withhold: WithholdOpt = None,
    officer: OfficerOpt = None,
    report_id: IdOpt = None,
) -> None:
    """A report as a STIX 2.1 bundle (TLP 2.0 markings, the Palermo handling extension).

    A retracted report of ours exports as revoked objects; sections this node could not open
    are never in the bundle.

    Example: palermo stix export 01936f... --config ita.node.toml -o report.stix.json
    """
    from node.interop import export_bundle

    export_report(source, config, report_id, withhold, officer, output, "stix-2.1",
                  lambda *a, **kw: export_bundle(*a, **kw).serialize(pretty=True))  # fmt: skip


@stix_app.command("import")
@handles_errors
def stix_import(
    file: Annotated[Path, typer.Argument(help="A STIX 2.1 bundle (JSON).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for the drafts.")
    ] = Path("."),
    originator: Annotated[str | None, typer.Option(help="For a bundle not from Palermo.")] = None,
    category: Annotated[str | None, typer.Option(help="For a bundle not from Palermo.")] = None,
    route: Annotated[str | None, typer.Option(help="For a bundle not from Palermo.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Each report of a bundle as an IIR draft (JSON file), handling from its markings.

    A bundle whose markings cannot be mapped is refused whole, each object listed with why.

    Example: palermo stix import partner.stix.json -o drafts/
    """
    from node.interop import Defaults, import_bundle
    from protocol.commandline import print_json
    from schemas.errors import ConfigError

    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
    drafts = import_bundle(text, defaults=Defaults(originator, category, route))
    written = write_drafts(drafts, output)
    if as_json:
        print_json([str(p) for p in written])
    for path in written:
        err_console.print(f"draft {path}", markup=False)


def write_drafts(drafts: list[Draft], directory: Path) -> list[Path]:
    """One JSON file per draft, named after its source id (a UUID: never a path elsewhere)."""
    import uuid

    from schemas.errors import InputError

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for draft in drafts:
        try:
            name = str(uuid.UUID(draft.source_id.split("--")[-1]))
        except ValueError:
            raise InputError(
                f"the imported report's id {draft.source_id[:60]!r} is not a UUID, so it cannot "
                "name a draft file"
            ) from None
        path = directory / f"{name}.iir.json"
        path.write_text(json.dumps(draft.report.to_wire(), indent=2, sort_keys=True) + "\n")
        out.append(path)
    return out
