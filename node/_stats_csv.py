"""An agency's spreadsheet of figures as a statistical return (issue 16 item 3).

The CSV has a header row; the columns are ``indicator``, any of the dimension columns
(``border_type``, ``route``, ``nationality``, ``nationality_band``, ``sex``, ``age_band``,
``transport_mode``, ``fraud``, ``place_country``, ``place_unlocode``), and ``count`` (or, for
``fee-per-person``, ``amount``, ``currency`` and ``statistic``). An empty dimension means "all
values". Column order is free; an unknown column is refused, so a misspelt dimension is not
silently dropped. Each bad row is a typed error naming its line and column. See
docs/statistics.md ("The CSV column mapping").
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from schemas import Cell, Dimensions, Report, StatisticalReturn
from schemas._statistics import MAX_CELLS
from schemas.errors import InputError

__all__ = ["COLUMNS", "CsvRowError", "cells_from_csv", "return_report"]

DIMENSION_COLUMNS: Final[tuple[str, ...]] = tuple(Dimensions.model_fields)
VALUE_COLUMNS: Final[tuple[str, ...]] = ("count", "amount", "currency", "statistic")
COLUMNS: Final[tuple[str, ...]] = ("indicator", *DIMENSION_COLUMNS, *VALUE_COLUMNS)
_WHOLE: Final = re.compile(r"[0-9]+")


class CsvRowError(InputError):
    """A row of the spreadsheet that is not a valid cell: the line and column say where."""

    def __init__(self, path: Path, line: int, column: str | None, problem: str) -> None:
        self.path, self.line, self.column = path, line, column
        where = f"{path}:{line}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "line": self.line, "column": self.column}


def _cell(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"indicator": row.get("indicator", "").strip()}
    dims = {n: row[n].strip() for n in DIMENSION_COLUMNS if (row.get(n) or "").strip()}
    if dims:
        data["dimensions"] = dims
    count = (row.get("count") or "").strip()
    if count:
        data["count"] = count
    amount = (row.get("amount") or "").strip()
    if amount or (row.get("currency") or "").strip():
        data["amount"] = {"amount": amount, "currency": (row.get("currency") or "").strip()}
    statistic = (row.get("statistic") or "").strip()
    if statistic:
        data["statistic"] = statistic
    return data


def _column(loc: tuple[int | str, ...]) -> str | None:
    """The CSV column a validation error points at."""
    names = [str(p) for p in loc if isinstance(p, str)]
    for name in reversed(names):
        if name in COLUMNS:
            return name
    return names[0] if names else None


def cells_from_csv(path: Path, progress: Callable[[int], None] | None = None) -> list[Cell]:
    """The cells of ``path``; ``progress`` is called with the line number after each row."""
    cells: list[Cell] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle, strict=True)
        try:
            _read(path, reader, cells, progress)
        except UnicodeDecodeError as exc:
            raise CsvRowError(
                path, _undecodable_line(path), None,
                "not UTF-8: save the spreadsheet as CSV UTF-8",
            ) from exc  # fmt: skip
        except csv.Error as exc:
            # The underlying reader's count: DictReader's own is only updated after a good row.
            line = max(reader.reader.line_num, 1)
            hint = " (a quote opened and never closed?)" if "end of data" in str(exc) else ""
            raise CsvRowError(path, line, None, f"not valid CSV: {exc}{hint}") from exc
    if not cells:
        raise CsvRowError(path, 2, None, "no rows: a return needs at least one cell")
    return cells


def _undecodable_line(path: Path) -> int:
    """The line holding the first byte that is not UTF-8 (the decoder reads ahead in chunks, so
    the reader's line count says nothing about where it is)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return raw.count(b"\n", 0, exc.start) + 1
    return 1


def _read(
    path: Path,
    reader: csv.DictReader[str],
    cells: list[Cell],
    progress: Callable[[int], None] | None,
) -> None:
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown or "indicator" not in header:
        raise CsvRowError(
            path, 1, unknown[0] if unknown else "indicator",
            f"the header must name an indicator column and only these: {', '.join(COLUMNS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
        )  # fmt: skip
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        # DictReader keeps the last of two same-named columns: the first would be dropped silently.
        raise CsvRowError(path, 1, repeated[0], f"column {repeated[0]} is named twice")
    lines: dict[tuple[object, ...], int] = {}
    for row in reader:
        line = reader.line_num
        if None in row:
            raise CsvRowError(path, line, None, "more fields than the header has columns")
        if len(cells) >= MAX_CELLS:
            raise CsvRowError(
                path, line, None, f"a return holds at most {MAX_CELLS} cells; split it"
            )
        count = (row.get("count") or "").strip()
        if count and not _WHOLE.fullmatch(count):
            # The model would read "5.0" as 5: a count with a decimal point is a spreadsheet
            # formatting slip (or an average), never a number of detections.
            raise CsvRowError(
                path, line, "count", f"{count!r} is not a whole number: write counts as 0, 1, 2"
            )
        try:
            cell = Cell.model_validate(_cell(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise CsvRowError(path, line, _column(first["loc"]), first["msg"]) from exc
        key = (cell.indicator, cell.statistic, cell.dimensions.key())
        if key in lines:
            raise CsvRowError(
                path, line, None,
                f"the same indicator and dimensions as line {lines[key]}: give each cell once",
            )  # fmt: skip
        lines[key] = line
        cells.append(cell)
        if progress is not None:
            progress(line)


def return_report(
    cells: Iterable[Cell],
    agency: str,
    period: str,
    *,
    route: str | None = None,
    tlp: str = "GREEN",
    rel_to: list[str] | None = None,
    unit: str = "statistics office",
) -> Report:
    """The ``iir/1.1`` report of kind statistics holding these cells, ready for publishing."""
    cells = list(cells)
    routes = [c.dimensions.route.value for c in cells if c.dimensions.route is not None]
    route = route or (max(set(routes), key=routes.count) if routes else "other")
    handling: dict[str, Any] = {"tlp": tlp}
    if rel_to:
        handling["rel_to"] = rel_to
    try:
        statistics = StatisticalReturn(reporting_agency=agency, period=period, cells=cells)
        return Report.model_validate(
            {
                "schema": "iir/1.1",
                "originator": agency,
                "kind": "statistics",
                "category": "routes",
                "route": route,
                "title": f"Statistical return of {agency}",
                "handling": handling,
                "narrative": {"language": "en", "text": "Figures in the statistics block."},
                "contact": {"unit": unit, "channel": "palermo"},
                "statistics": statistics,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"the return is not valid: {where}: {first['msg']}") from exc
