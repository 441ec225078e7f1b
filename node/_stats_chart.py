"""Trend charts of the federation's returns (issue 16 item 4): one line per route (and
indicator), periods on the x axis, drawn with matplotlib's Agg backend (no display needed).

A value withheld by disclosure control, or a period with no return, is a gap (NaN), never a
zero: a zero would read as "none detected". Each line carries ``gid`` ``series-<route>-<indicator>``
so the SVG can be checked, and an officer console can style or pick series.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from schemas import Indicator, StatisticalReturn
from schemas.errors import InputError

from ._stats_aggregate import aggregate

__all__ = ["FORMATS", "Series", "draw", "period_range", "trend_series"]

FORMATS: Final = ("svg", "png")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^(\d{4})$")
MAX_PERIODS: Final[int] = 120
"""At most this many periods on one chart (ten years of months)."""


def period_range(text: str) -> list[str]:
    """``2026-Q1..2026-Q4`` (or months, or years; one period alone) as the list of periods."""
    first, _, last = text.partition("..")
    last = last or first
    for pattern, per_year in ((_QUARTER, 4), (_MONTH, 12), (_YEAR, 1)):
        a, b = pattern.fullmatch(first), pattern.fullmatch(last)
        if a and b:
            start = int(a[1]) * per_year + (int(a[2]) - 1 if per_year > 1 else 0)
            end = int(b[1]) * per_year + (int(b[2]) - 1 if per_year > 1 else 0)
            if end < start or end - start >= MAX_PERIODS:
                raise InputError(
                    f"--period {text!r}: the last period must not come before the first, and a "
                    f"chart shows at most {MAX_PERIODS} periods"
                )
            return [_label(i, per_year) for i in range(start, end + 1)]
    raise InputError(
        f"--period {text!r}: write FIRST..LAST with both quarters (2026-Q1..2026-Q4), months "
        "(2026-01..2026-06) or years (2024..2026)"
    )


def _label(index: int, per_year: int) -> str:
    year, part = divmod(index, per_year)
    return {4: f"{year}-Q{part + 1}", 12: f"{year}-{part + 1:02d}"}.get(per_year, str(year))


@dataclass(frozen=True)
class Series:
    """One line: a route and indicator, a value (or NaN for a gap) per period."""

    route: str
    indicator: str
    values: tuple[float, ...]

    @property
    def gid(self) -> str:
        return f"series-{self.route}-{self.indicator}"


def trend_series(
    returns: Sequence[StatisticalReturn], periods: Sequence[str], indicator: str | None = None
) -> list[Series]:
    """One series per route and indicator over ``periods``; suppressed or missing: NaN."""
    if indicator == Indicator.FEE_PER_PERSON.value:
        raise InputError("fees are not summed across agencies: chart a count indicator")
    if indicator is not None and indicator not in {i.value for i in Indicator}:
        raise InputError(
            f"--indicator {indicator!r}: choose from {', '.join(i.value for i in Indicator)}"
        )
    table: dict[tuple[str, str], dict[str, float]] = {}
    for period in periods:
        for row in aggregate(returns, period, ("route", "indicator")).rows:
            route, ind = row.key
            if indicator is not None and ind != indicator:
                continue
            table.setdefault((route, ind), {})[period] = (
                math.nan if row.suppressed else float(row.total)
            )
    return [
        Series(route, ind, tuple(values.get(p, math.nan) for p in periods))
        for (route, ind), values in sorted(table.items())
    ]


def draw(
    series: Iterable[Series],
    periods: Sequence[str],
    out: Path,
    *,
    title: str = "",
    size: tuple[int, int] = (1000, 600),
    dpi: int = 100,
) -> Path:
    """Write the chart to ``out`` (.svg or .png), ``size`` in pixels (PNG) at ``dpi``."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"--out {out}: write a .svg or .png file")
    import matplotlib

    matplotlib.use("Agg")  # no display: a node, a CI runner or a console back end draws it
    from matplotlib.figure import Figure

    # A Figure of its own (not pyplot's global state): safe inside a long-running process.
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax = fig.add_subplot()
    x = list(range(len(periods)))
    drawn = 0
    for s in series:
        ax.plot(x, s.values, marker="o", label=f"{s.route} · {s.indicator}", gid=s.gid)
        drawn += 1
    ax.set_xticks(x, list(periods))
    ax.set_ylim(bottom=0)  # counts start at zero: a trend is not exaggerated by the axis
    ax.set_xlabel("period")
    ax.set_ylabel("count (gaps: suppressed or not reported)")
    if title:
        ax.set_title(title)
    if drawn:
        ax.legend(fontsize="small")
    ax.grid(visible=True, alpha=0.3)
    # A fixed svg.hashsalt and no date: the same data draws the same file (docs/img is checked);
    # rc_context, so a long-running process's matplotlib settings are left as they were.
    metadata = {"Date": None} if fmt == "svg" else {}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context({"svg.hashsalt": "palermo"}):
            fig.savefig(out, format=fmt, dpi=dpi, metadata=metadata)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write the chart: {exc.strerror or exc}") from exc
    return out


DOCS_PERIODS: Final = "2026-Q1..2026-Q4"
DOCS_INDICATOR: Final = Indicator.IRREGULAR_CROSSING_BETWEEN_BCPS.value


def docs_chart(returns: Sequence[StatisticalReturn], out: Path) -> Path:
    """The chart of docs/statistics.md: detections between BCPs per route, 2026, from the
    example returns (Q1 and Q4 have none: gaps)."""
    periods = period_range(DOCS_PERIODS)
    series = trend_series(returns, periods, DOCS_INDICATOR)
    title = "Detections between BCPs per route (example returns)"
    return draw(series, periods, out, title=title, size=(800, 450))


if __name__ == "__main__":  # python -m node._stats_chart docs/img/statistics-trends.svg
    import sys

    from schemas import parse_report

    examples = Path(__file__).resolve().parents[1] / "schemas" / "examples"
    found = [
        parse_report(p.read_bytes()).statistics
        for p in sorted(examples.glob("*-statistics-*.json"))
    ]
    docs_chart([r for r in found if r is not None], Path(sys.argv[1]))
