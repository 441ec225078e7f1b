"""docs/security.md names a regression test for every trust-plane attack: each one must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Trust-plane attacks: defence and test for each"


def _table_rows() -> list[str]:
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if re.match(r"\| (\d+|R) \|", line)]


def _named_tests(row: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) for every `tests/...py[::name]` reference of a row; a bare
    `::name` continues the file named before it in the same cell."""
    named: list[tuple[str, str | None]] = []
    current = ""
    for ref in re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?)(?:\[[^`]*\])?`", row):
        path, _, name = ref.partition("::")
        current = path or current
        named.append((current, name or None))
    return named


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_attack_row_names_tests_that_exist() -> None:
    """Each row of the attack table names at least one test file, and every test it names is
    defined in that file (a renamed or deleted test breaks the document, and this test)."""
    rows = _table_rows()
    assert 18 <= len(rows)
    missing = []
    for row in rows:
        refs = _named_tests(row)
        assert refs, f"no test named in: {row[:80]}"
        for file, name in refs:
            path = ROOT / file
            if not path.is_file() or (name is not None and name not in _functions(path)):
                missing.append(f"{file}::{name}")
    assert [] == missing
