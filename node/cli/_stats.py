"""``palermo stats return|aggregate|chart``: statistical returns (issue 16; docs/statistics.md).

``return`` turns an agency's spreadsheet into a return report (then ``palermo publish`` sends
it); ``aggregate`` and ``chart`` read the returns in the node's inbox, newest per agency and
period, and need no NATS connection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import err_console, handles_errors, out_console
from schemas.errors import InputError

from ._common import ConfigOption, _open_inbox

stats_app = typer.Typer(
    help="Statistical returns: from a spreadsheet, across the federation, as charts.",
    no_args_is_help=True,
)


@stats_app.command("return")
@handles_errors
def return_cmd(
    source: Annotated[Path, typer.Option("--from", help="The agency's CSV of figures.")],
    agency: Annotated[str, typer.Option(help="The reporting agency (the originator).")],
    period: Annotated[str, typer.Option(help="2026-07 (month), 2026-Q3 or 2026.")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="Write here, not stdout.")] = None,
    route: Annotated[
        str | None, typer.Option(help="The report's route topic (default: the most named).")
    ] = None,
    tlp: Annotated[str, typer.Option(help="TLP of the return.")] = "GREEN",
    rel_to: Annotated[
        list[str] | None, typer.Option("--rel-to", help="Releasable to (repeat): UNODC-STATS.")
    ] = None,
) -> None:
    """A return report (iir/1.1, kind statistics) from a CSV; columns in docs/statistics.md.

    Example: palermo stats return --from q3.csv --agency ITA-GDF --period 2026-Q3
    --rel-to UNODC-STATS -o q3.json && palermo publish q3.json -c ita.node.toml
    """
    from rich.progress import Progress

    from .._stats_csv import cells_from_csv, return_report

    try:
        with source.open("rb") as handle:
            total = sum(1 for _ in handle)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from exc
    with Progress(console=err_console, transient=True, disable=total < 1000) as progress:
        task = progress.add_task(f"reading {source.name}", total=total)
        cells = cells_from_csv(source, lambda line: progress.update(task, completed=line))
    report = return_report(cells, agency, period, route=route, tlp=tlp, rel_to=rel_to)
    text = json.dumps(report.to_wire(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror} (does its directory exist?)") from exc
    err_console.print(f"{len(cells)} cells written to {out}", markup=False)


@stats_app.command("aggregate")
@handles_errors
def aggregate_cmd(
    config: ConfigOption,
    period: Annotated[str, typer.Option(help="The period: 2026-Q3, 2026-07 or 2026.")],
    by: Annotated[str, typer.Option(help="Breakdown, e.g. route,indicator.")] = "route,indicator",
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Sums per cell over the returns in this node's inbox (newest per agency and period).

    A sum that includes a suppressed contribution is shown as a lower bound, never a total.

    Example: palermo stats aggregate --period 2026-Q3 --by route,indicator -c unodc.node.toml
    """
    from schemas._statistics import check_period

    from .._stats_aggregate import aggregate, parse_by, render, returns_in_inbox

    breakdown = parse_by(by)
    try:
        check_period(period)
    except ValueError as exc:
        raise InputError(f"--period: {exc}") from exc
    with _open_inbox(config) as inbox:
        returns = returns_in_inbox(inbox)
    out_console.print(
        render(aggregate(returns, period, breakdown), fmt),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@stats_app.command("chart")
@handles_errors
def chart_cmd(
    config: ConfigOption,
    period: Annotated[str, typer.Option(help="FIRST..LAST, e.g. 2026-Q1..2026-Q4.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="trends.svg or trends.png.")],
    by: Annotated[str, typer.Option(help="Only 'route' for now: one series per route.")] = "route",
    indicator: Annotated[
        str | None, typer.Option(help="One indicator (default: each count indicator).")
    ] = None,
    width: Annotated[int, typer.Option(help="Pixels (PNG).", min=200, max=4000)] = 1000,
    height: Annotated[int, typer.Option(help="Pixels (PNG).", min=150, max=4000)] = 600,
) -> None:
    """Trends per route (and indicator) over periods; suppressed values are gaps, never zero.

    Example: palermo stats chart --period 2026-Q1..2026-Q4 --by route --out trends.svg
    -c unodc.node.toml
    """
    from .._stats_aggregate import returns_in_inbox
    from .._stats_chart import draw, period_range, trend_series

    if by != "route":
        raise InputError(f"--by {by!r}: charts are drawn per route (--by route)")
    periods = period_range(period)
    with _open_inbox(config) as inbox:
        returns = returns_in_inbox(inbox)
    series = trend_series(returns, periods, indicator)
    draw(series, periods, out, title=f"Federation returns {period}", size=(width, height))
    err_console.print(
        f"{len(series)} series over {len(periods)} periods written to {out}", markup=False
    )
