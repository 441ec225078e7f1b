"""``palermo schema upgrade``: an iir/1 report file rewritten as iir/1.1, meaning the same."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from palermo.cli import app
from schemas import parse_report, upgrade

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
DEPARTURE = EXAMPLES / "01-routes-central-med-departure.json"  # no action code: A1
MOTHERSHIP = EXAMPLES / "09-vessel-mothership.json"  # A3 with its text


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    dst.write_bytes(src.read_bytes())
    return dst


def test_stdout_changes_only_schema_and_action() -> None:
    """The 1.1 JSON on stdout differs from the file by the schema line and an explicit A1."""
    result = runner.invoke(app, ["schema", "upgrade", str(DEPARTURE)])
    assert 0 == result.exit_code, result.output
    before = DEPARTURE.read_text().splitlines()
    diff = difflib.ndiff(before, result.stdout.splitlines())
    changed = [line for line in diff if line.startswith(("- ", "+ "))]
    # The rel_to list gains a comma because "action" now follows it.
    assert [
        '-   "schema": "iir/1",',
        '+   "schema": "iir/1.1",',
        "-     ]",
        "+     ],",
        '+     "action": "A1"',
    ] == changed
    assert result.stdout.endswith("}\n")
    upgraded = parse_report(result.stdout)
    assert upgrade(parse_report(DEPARTURE.read_bytes())) == upgraded
    assert ["TLP:AMBER", "H0", "H1", "A1"] == upgraded.handling.codes()


def test_output_file_keeps_the_original(tmp_path: Path) -> None:
    """-o writes the upgraded report there and leaves the input as it was."""
    src = _copy(MOTHERSHIP, tmp_path)
    out = tmp_path / "upgraded.json"
    result = runner.invoke(app, ["schema", "upgrade", str(src), "-o", str(out)])
    assert 0 == result.exit_code, result.output
    assert MOTHERSHIP.read_bytes() == src.read_bytes()
    data = json.loads(out.read_text())
    assert "iir/1.1" == data["schema"]
    assert "A3" == data["handling"]["action"]
    assert upgrade(parse_report(MOTHERSHIP.read_bytes())) == parse_report(out.read_bytes())


def test_in_place_then_again_is_a_no_op(tmp_path: Path) -> None:
    """--in-place rewrites the file once; a second run finds it already 1.1 and keeps its bytes."""
    path = _copy(DEPARTURE, tmp_path)
    first = runner.invoke(app, ["schema", "upgrade", str(path), "--in-place"])
    assert 0 == first.exit_code, first.output
    upgraded = path.read_bytes()
    assert "iir/1.1" == parse_report(upgraded).schema_
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    second = runner.invoke(app, ["schema", "upgrade", str(path), "--in-place"])
    assert 0 == second.exit_code, second.output
    assert "already iir/1.1" in second.stdout
    assert upgraded == path.read_bytes()


def test_a_11_report_is_printed_unchanged(tmp_path: Path) -> None:
    """Upgrading what is already iir/1.1 (here, without an action code) gives the same report."""
    data = json.loads(DEPARTURE.read_text())
    data["schema"] = "iir/1.1"
    path = tmp_path / "v11.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    result = runner.invoke(app, ["schema", "upgrade", str(path)])
    assert 0 == result.exit_code, result.output
    assert path.read_text() == result.stdout
    assert ["TLP:AMBER", "H0", "H1"] == parse_report(result.stdout).handling.codes()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["persons"][0].update(nationality="XX"), "  - persons.0.nationality: "),
        (lambda d: d["handling"].update(tlp="PURPLE"), "  - handling.tlp: "),
        (
            lambda d: d["handling"].update(h0=False),
            "h0: false (no H0 restriction) needs schema iir/1.1",
        ),
    ],
    ids=["bad-nationality", "bad-tlp", "iir1-without-h0"],
)
def test_invalid_report_names_the_field(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], expected: str
) -> None:
    """An invalid report exits 2 with report_invalid and what to fix; nothing is written."""
    data = json.loads((EXAMPLES / "07-persons-migrants-and-fees.json").read_text())
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["schema", "upgrade", str(path), "-o", str(out)])
    assert 2 == result.exit_code
    assert "[report_invalid]" in result.stderr
    assert expected in result.stderr
    assert not out.exists()


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    """Text that is not JSON is report_invalid; a missing file is a config_error."""
    path = tmp_path / "notes.txt"
    path.write_text("boat left at 02:00")
    result = runner.invoke(app, ["schema", "upgrade", str(path)])
    assert 2 == result.exit_code
    assert "[report_invalid]: report is not JSON" in result.stderr
    missing = runner.invoke(app, ["schema", "upgrade", str(tmp_path / "absent.json")])
    assert 2 == missing.exit_code
    assert "[config_error]: cannot read" in missing.stderr


def test_out_and_in_place_together_are_refused(tmp_path: Path) -> None:
    """-o and --in-place contradict each other: exit 2, and the file is untouched."""
    path = _copy(DEPARTURE, tmp_path)
    result = runner.invoke(
        app, ["schema", "upgrade", str(path), "--in-place", "-o", str(tmp_path / "x.json")]
    )
    assert 2 == result.exit_code
    assert "either -o/--out or --in-place" in result.stderr
    assert DEPARTURE.read_bytes() == path.read_bytes()
