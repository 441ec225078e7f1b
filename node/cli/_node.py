"""The node's own commands (``palermo node run``, ``publish``, ``import``, ``subscribe``,
``status``, ``retract``, ``keys rotate``): what agencies touch. :mod:`palermo.cli` puts them
into the ``palermo`` command."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from protocol.commandline import err_console, handles_errors, out_console, print_json
from schemas.errors import ConfigError

from .._publishing import check_publishable
from ._common import ConfigOption, _node

_log = structlog.get_logger("palermo.node")
node_app = typer.Typer(help="Run an agency's node.", no_args_is_help=True)


@node_app.command("run")
@handles_errors
def run(config: ConfigOption, log_format: Annotated[str, typer.Option()] = "json") -> None:
    """Receive deliveries until SIGTERM: verify, open, re-check policy, store, send receipts.

    Example: palermo node run --config /etc/palermo/node.toml
    """
    from protocol.logs import configure_logging

    configure_logging(json_output=log_format == "json")

    from ..config import NodeSettings
    from ..runner import run_node

    settings = NodeSettings.load(config)

    async def go() -> None:
        status = await run_node(
            settings, announce=lambda line: out_console.print(line, markup=False)
        )
        out_console.print(f"node stopped: {status}")

    asyncio.run(go())


def publish(
    report: Annotated[Path, typer.Argument(help="The report (IIR JSON) with its handling.")],
    config: ConfigOption,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            help="Only these partners (repeat), or all-members: every member in good standing "
            "(default: the route's subscribers; every member if rel_to is all-members).",
        ),
    ] = None,
    tear_line: Annotated[
        bool,
        typer.Option(
            "--tear-line",
            help="Also send a version without personal data to the partners refused only "
            "because of it (linked to the report, retracted with it).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Seal a report for the partners that subscribed and that policy allows, and publish it.

    Prints the report id, who it was sealed for, and why anyone else was refused. With
    --tear-line, the partners refused only because the report holds personal data get a version
    without it (its own id, refs the report; 'palermo status' and 'retract' take both together).

    Example: palermo publish alert.json --config ita.node.toml [--to all-members]
    Example: palermo publish alert.json --tear-line --config ita.node.toml
    """
    from schemas.export import parse_report

    try:
        parsed = parse_report(report.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {report}: {exc.strerror}") from exc
    # Before connecting: a request, retraction, ... has its own command (issue 15 item 1).
    check_publishable(parsed.kind)

    if tear_line:
        _publish_tear_line(parsed, config, to, as_json)
        return

    async def go() -> Any:
        async with _node(config) as node:
            return await node.publish(parsed, to=to)

    sealed = asyncio.run(go())
    refused = {
        a: [r.to_dict() for r in d.reasons] for a, d in sealed.decisions.items() if not d.allowed
    }
    until = sealed.header.handling.not_before
    if as_json:
        print_json({"id": sealed.header.id, "recipients": sealed.recipients, "refused": refused}
                   | ({"embargoed_until": until.isoformat()} if until else {}))  # fmt: skip
        return
    out_console.print(f"published {sealed.header.id} to {', '.join(sealed.recipients)}")
    if until is not None:
        out_console.print(
            f"  embargoed: the broker holds it and delivers it at {until.isoformat()} "
            "('palermo status' shows it; 'palermo retract' before then stops it)",
            markup=False,
        )
    for agency, reasons in refused.items():
        out_console.print(f"  not sent to {agency}: {reasons[0]['message']}", markup=False)


def _publish_tear_line(report: Any, config: Path, to: list[str] | None, as_json: bool) -> None:
    """``publish --tear-line``: the report, and its version without personal data."""

    async def go() -> Any:
        async with _node(config) as node:
            return await node.publish_tear_line(report, to=to)

    sent = asyncio.run(go())
    answer = sent.to_dict()
    if as_json:
        print_json(answer)
        return
    below = answer["tear_line"]
    out_console.print(f"published {answer['id']} to {', '.join(answer['recipients'])}")
    if below["id"] is not None:
        out_console.print(
            f"tear-line {below['id']} (without personal data, refs {answer['id']}) to "
            f"{', '.join(below['recipients'])}"
        )
    elif not sent.candidates:
        out_console.print("no tear-line: no partner was refused only because of personal data")
    for agency, reasons in answer["refused"].items():
        if agency in below["recipients"]:
            continue
        why = below["refused"].get(agency, reasons)
        out_console.print(f"  not sent to {agency}: {why[0]['message']}", markup=False)


def status(
    report_id: Annotated[str, typer.Argument(help="The id 'palermo publish' printed.")],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Per recipient: delivered, refused (and why), purged — from signed receipts and notices.

    A receipt counts only on its recipient's own subject and signed by it; a broker's refusal
    only from a notice signed by a key in the node config's broker_keys.

    Example: palermo status 01a2... --config ita.node.toml
    """

    async def go() -> dict[str, dict[str, Any]]:
        async with _node(config) as node:
            if not node.broker_keys:
                err_console.print(
                    "no broker_keys in the node config: the broker's refusals are not shown "
                    "(a notice is believed only when a configured broker key signed it)"
                )
            result: dict[str, dict[str, Any]] = await node.delivery_status(report_id)
            return result

    rows = asyncio.run(go())
    if as_json:
        print_json(rows)
        return
    if not rows:
        out_console.print(f"nothing has come back for {report_id} yet")
    for agency, row in rows.items():
        reasons = "; ".join(str(r.get("message", r.get("code", ""))) for r in row["reasons"])
        if row.get("tear_line"):
            reasons = f"(tear-line {row['tear_line']}) {reasons}".rstrip()
        out_console.print(f"{agency:<12} {row['status']:<18} {reasons}", markup=False)


def retract(
    report_id: Annotated[str, typer.Argument(help="One of this node's reports.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (every recipient sees it).")],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Withdraw a report and its tear-line versions: every recipient's node purges it and
    sends a signed confirmation.

    Example: palermo retract 01a2... --reason "wrong vessel identified" --config ita.node.toml
    """

    async def go() -> Any:
        async with _node(config) as node:
            return await node.retract_all(report_id, reason)

    header, *tear_lines = asyncio.run(go())
    if as_json:
        answer = {"retraction": header.id, "report": report_id, "recipients": header.recipients}
        if tear_lines:
            answer["tear_lines"] = [
                {"retraction": t.id, "report": t.refs[0], "recipients": t.recipients}
                for t in tear_lines
            ]
        print_json(answer)
        return
    out_console.print(
        f"retraction {header.id} sent to {', '.join(header.recipients)}; "
        f"'palermo status {report_id}' shows who has purged it"
    )
    for t in tear_lines:
        out_console.print(
            f"tear-line {t.refs[0]} retracted too: retraction {t.id} sent to "
            f"{', '.join(t.recipients)}"
        )


def subscribe(
    routes: Annotated[list[str], typer.Argument(help="Route topics, e.g. central-med, or '*'.")],
    config: ConfigOption,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Only these art. 10 categories.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Stay and show reports as they arrive.")
    ] = False,
) -> None:
    """Register interest in route topics; with --follow, show arriving reports with their
    handling banner (TLP, H-codes, obligations, expiry) until Ctrl-C.

    Example: palermo subscribe central-med eastern-med --config mlt.node.toml --follow
    """

    def banner(entry: Any, report: Any) -> None:
        expiry = f" expires {entry.expires_ms}" if entry.expires_ms else ""
        out_console.print(
            f"[bold]{' '.join(entry.codes)}[/]{expiry}  {entry.priority.upper()}  "
            f"{entry.originator} / {entry.route} / {entry.category}",
            markup=True,
        )
        out_console.print(f"  {report.title}", markup=False)
        for ob in entry.obligations:
            out_console.print(f"  - {ob.get('message', ob['code'])}", markup=False)

    async def go() -> None:
        async with _node(config) as node:
            subs = await node.subscribe(routes, category or [])
            topics = ", ".join(routes)
            out_console.print(f"{node.identity.agency} subscribed to {topics} (seq {subs.seq})")
            if not follow:
                return
            node.on_stored.append(banner)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, node.stop)
            await node.run()

    asyncio.run(go())


PqOption = Annotated[
    bool,
    typer.Option(
        "--pq",
        help="A hybrid ML-KEM-768 + X25519 key: envelopes to this agency can then be sealed with "
        "the post-quantum suite 2 (docs/decisions/0035-suite-2-hybrid.md).",
    ),
]


def rotate(
    config: ConfigOption,
    overlap_days: Annotated[int, typer.Option(min=0, max=90, help="Keep old keys listed.")] = 7,
    pq: PqOption = False,
) -> None:
    """Rotate the node's encryption key with overlap: publish a new key bundle in which the new
    key comes first and the old ones stay valid for the overlap.

    Writes the new private key (0600) next to the current one; put its path first in
    ``encryption_keys`` of node.toml and keep the old ones until the overlap ends. ``--pq``
    makes the new key hybrid (ML-KEM-768 + X25519); the old X25519 keys stay listed for the
    overlap, so nothing sealed to them is lost.

    Example: palermo keys rotate --config mlt.node.toml --overlap-days 7 --pq
    """
    from protocol.keys import EncryptionKey, save_private_key

    from ..config import NodeSettings

    settings = NodeSettings.load(config)
    new = EncryptionKey.generate(settings.agency, pq=pq)
    secret = (
        settings.key_passphrase.get_secret_value().encode() if settings.key_passphrase else None
    )
    path = settings.encryption_keys[0].parent / f"{settings.agency}.enc.{new.kid}.pem"

    async def go() -> Any:
        async with _node(config) as node:
            return await node.rotate_keys(new, overlap_days=overlap_days)

    save_private_key(path, new.private_key(), secret)  # before publishing: never a bundle w/o key
    bundle = asyncio.run(go())
    kind = "hybrid ML-KEM-768 + X25519 key" if pq else "key"
    out_console.print(f"key bundle {bundle.seq} published: new {kind} {new.kid} at {path}")
    out_console.print(f"add it first in encryption_keys of {config}; keep the old keys for now")


def rotate_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="The node's node.toml.")],
    overlap_days: Annotated[int, typer.Option(min=0, max=90, help="Keep old keys listed.")] = 7,
    pq: PqOption = False,
) -> None:
    """Rotate the node's encryption key with overlap (a new signed key bundle in the directory);
    ``--pq``: to a hybrid post-quantum key.

    Example: palermo keys rotate --config mlt.node.toml --overlap-days 7 --pq
    """
    rotate(config, overlap_days, pq)


def import_reports(
    file: Annotated[Path, typer.Argument(help="One IIR v1 report (JSON) per line.")],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Publish many reports from a JSON-lines file; resumable, each line's outcome recorded.

    Outcomes go to FILE.results.jsonl (line, status, id or errors); a second run skips every
    line already published, so an interrupted import can simply be run again.

    Example: palermo import backlog.jsonl --config ita.node.toml
    """
    import json

    from rich.progress import Progress

    from schemas.errors import PalermoError
    from schemas.export import parse_report

    results_path = file.with_name(file.name + ".results.jsonl")
    done: set[int] = set()
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            row = json.loads(line)
            if row["status"] == "published":
                done.add(int(row["line"]))
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
    counts = {"published": 0, "invalid": 0, "not sent": 0, "skipped": len(done)}

    async def go() -> None:
        async with _node(config) as node:
            with results_path.open("a") as results, Progress(console=err_console) as progress:
                task = progress.add_task(f"importing {file.name}", total=len(lines))
                progress.advance(task, len(done))
                for number, text in enumerate(lines, start=1):
                    if number in done or not text.strip():
                        continue
                    row: dict[str, Any] = {"line": number}
                    try:
                        sealed = await node.publish(parse_report(text))
                        row |= {"status": "published", "id": sealed.header.id,
                                "recipients": sealed.recipients}  # fmt: skip
                    except PalermoError as exc:
                        status = "invalid" if exc.code == "report_invalid" else "not sent"
                        row |= {"status": status, **exc.to_dict()}
                    counts[row["status"]] += 1
                    # Written and flushed per line: the record of what was sent survives a crash.
                    results.write(json.dumps(row) + "\n")
                    results.flush()
                    progress.advance(task)

    asyncio.run(go())
    out_console.print(
        ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; details: {results_path}"
    )
