"""A spreadsheet as a return (issue 16 item 3): the column mapping, a typed error per bad row
naming its line and column, the cell limit, and the command writing a publishable report."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from node._stats_csv import COLUMNS, CsvRowError, cells_from_csv, return_report
from palermo.cli import app
from schemas import Kind, parse_report

HEADER = "indicator,border_type,route,nationality,nationality_band,count,amount,currency,statistic"
GOOD = [
    "irregular-crossing-between-bcps,sea,central-med,,,120,,,",
    "irregular-crossing-between-bcps,sea,central-med,ERI,,80,,,",
    "irregular-crossing-between-bcps,sea,central-med,,stateless,40,,,",
    "fee-per-person,,central-med,,,,3000.00,EUR,median",
]


def _csv(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "figures.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_rows_become_cells_with_the_documented_columns(tmp_path: Path) -> None:
    """Empty dimensions are absent; a fee row has an amount and a statistic."""
    cells = cells_from_csv(_csv(tmp_path, *GOOD))
    assert [120, 80, 40, None] == [c.count for c in cells]
    assert ("ERI", "stateless") == (
        cells[1].dimensions.nationality,
        cells[2].dimensions.nationality_band,
    )
    assert cells[3].amount is not None
    assert "3000.00" == str(cells[3].amount.amount)
    assert {"indicator", "count", "amount", "route", "place_unlocode"} <= set(COLUMNS)


@pytest.mark.parametrize(
    ("row", "line", "column"),
    [
        ("deaths,sea,central-med,,,-1,,,", 3, "count"),
        ("deaths,sea,central-med,,,5.0,,,", 3, "count"),
        ("deaths,sea,central-med,,,1e3,,,", 3, "count"),
        ("deaths,sea,moon-route,,,3,,,", 3, "route"),
        ("arrivals,sea,central-med,,,3,,,", 3, "indicator"),
        ("deaths,ocean,central-med,,,3,,,", 3, "border_type"),
        ("deaths,sea,central-med,,,,,,", 3, None),
        ("fee-per-person,,central-med,,,,3000,EURO,median", 3, "currency"),
    ],
)
def test_a_bad_row_is_a_typed_error_naming_line_and_column(
    tmp_path: Path, row: str, line: int, column: str | None
) -> None:
    """The first good row passes; the bad second row is reported at its line and column."""
    with pytest.raises(CsvRowError) as caught:
        cells_from_csv(_csv(tmp_path, GOOD[0], row))
    assert (line, column) == (caught.value.line, caught.value.column)
    assert f"figures.csv:{line}" in caught.value.reason


def test_a_count_with_a_decimal_point_is_refused(tmp_path: Path) -> None:
    """ "5.0" is a spreadsheet formatting slip, not 5 detections: refused, not rounded."""
    with pytest.raises(CsvRowError, match=r"figures.csv:3, column count: '5.0' is not a whole"):
        cells_from_csv(_csv(tmp_path, GOOD[0], "deaths,sea,central-med,,,5.0,,,"))


def test_a_repeated_cell_names_both_lines(tmp_path: Path) -> None:
    """The same indicator and dimensions twice: the error names the second line and the first."""
    with pytest.raises(CsvRowError) as caught:
        cells_from_csv(_csv(tmp_path, *GOOD[:3], GOOD[1]))
    assert 5 == caught.value.line
    assert "figures.csv:5: the same indicator and dimensions as line 3" in caught.value.reason


def test_an_unknown_column_is_refused(tmp_path: Path) -> None:
    """A misspelt dimension is not silently dropped."""
    with pytest.raises(CsvRowError, match="unknown: nationalty") as caught:
        cells_from_csv(_csv(tmp_path, "deaths,3,ERI", header="indicator,count,nationalty"))
    assert (1, "nationalty") == (caught.value.line, caught.value.column)


def test_too_many_cells_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More rows than MAX_CELLS: refused at the first row over the limit."""
    monkeypatch.setattr("node._stats_csv.MAX_CELLS", 2)
    rows = [f"deaths,sea,{r},,,3,,," for r in ("central-med", "eastern-med", "western-med")]
    with pytest.raises(CsvRowError, match="at most 2 cells") as caught:
        cells_from_csv(_csv(tmp_path, *rows))
    assert 4 == caught.value.line


def test_the_return_is_a_statistics_report_of_the_agency(tmp_path: Path) -> None:
    """iir/1.1, kind statistics, originator = reporting agency, route the cells name."""
    report = return_report(
        cells_from_csv(_csv(tmp_path, *GOOD)), "MLT-AFM", "2026-Q3", rel_to=["UNODC-STATS"]
    )
    assert report.statistics is not None
    ret = report.statistics
    assert (Kind.STATISTICS, "MLT-AFM", "2026-Q3", "central-med") == (
        report.kind, ret.reporting_agency, ret.period, report.route.value,
    )  # fmt: skip


def test_the_command_writes_a_report_palermo_publish_reads(tmp_path: Path) -> None:
    """palermo stats return -o OUT.json; a bad period is a clear error, exit 2."""
    out = tmp_path / "q3.json"
    src = _csv(tmp_path, *GOOD)
    args = ["stats", "return", "--from", str(src), "--agency", "MLT-AFM", "--rel-to", "UNODC-STATS"]
    result = CliRunner().invoke(app, [*args, "--period", "2026-Q3", "-o", str(out)])
    assert 0 == result.exit_code, result.output
    assert 4 == len(parse_report(out.read_bytes()).statistics.cells)  # type: ignore[union-attr]
    bad = CliRunner().invoke(app, [*args, "--period", "2026-13"])
    assert 2 == bad.exit_code
    assert "period" in bad.output


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        (b"indicator,count\ndeaths,\xff\xfe\n", 2, "not UTF-8"),
        (b"indicator,count\ndeaths,3\ndeaths,\xe9\n", 3, "not UTF-8"),
        (b'indicator,count\ndeaths,"5\n', 2, "never closed"),
        (b"indicator,count\ndeaths," + b"x" * 200_000 + b"\n", 2, "field larger"),
        (b"indicator,count,count\ndeaths,5,x\n", 1, "count is named twice"),
    ],
)
def test_an_unreadable_file_is_a_typed_error_naming_its_line(
    tmp_path: Path, content: bytes, line: int, problem: str
) -> None:
    """Bytes that are not UTF-8, CSV the reader refuses and a column named twice (DictReader
    would keep the last silently) are CsvRowErrors with the line, not tracebacks."""
    path = tmp_path / "figures.csv"
    path.write_bytes(content)
    with pytest.raises(CsvRowError, match=problem) as caught:
        cells_from_csv(path)
    assert line == caught.value.line


def test_writing_into_a_missing_directory_is_a_typed_error(tmp_path: Path) -> None:
    """-o into a directory that does not exist: a clear error (exit 2), not a traceback."""
    src = _csv(tmp_path, *GOOD)
    out = tmp_path / "no" / "such" / "q3.json"
    args = ["stats", "return", "--from", str(src), "--agency", "MLT-AFM", "--period", "2026-Q3"]
    result = CliRunner().invoke(app, [*args, "-o", str(out)])
    assert 2 == result.exit_code, result.output
    assert "cannot write" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_aggregate_checks_the_period(tmp_path: Path) -> None:
    """--period is a month, quarter or year, checked before the inbox is opened."""
    config = tmp_path / "node.toml"
    result = CliRunner().invoke(
        app, ["stats", "aggregate", "--period", "2026-Q5", "-c", str(config)]
    )
    assert 2 == result.exit_code, result.output
    assert "is not a period" in result.output
