"""The handling-code catalogue, its documentation, and the package's public API."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import policies
from policies import CATALOGUE, OBLIGATIONS, AuditFlag, ObligationCode, ReasonCode, Source
from policies._messages import TEMPLATES
from schemas import Handling

DOC = (Path(__file__).resolve().parents[2] / "docs" / "handling-codes.md").read_text()


def test_catalogue_covers_every_code_a_handling_block_can_show() -> None:
    """Every code Handling.codes() can produce is in the catalogue."""
    handling = Handling(tlp="RED", h2=True, h3=[{"code": "x", "text": "y"}])
    shown = set(handling.codes()) | {
        f"TLP:{t}" for t in ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT")
    }
    shown |= {"A2", "A3"}
    assert set() == shown - set(CATALOGUE)


@pytest.mark.parametrize(
    ("prefix", "source"),
    [("TLP:", Source.TLP), ("H", Source.SIENA), ("A", Source.UK_3X5X2)],
)
def test_catalogue_sources(prefix: str, source: Source) -> None:
    """TLP labels come from FIRST, H codes from SIENA, action codes from 3x5x2."""
    assert {source} == {c.source for c in CATALOGUE.values() if c.id.startswith(prefix)}


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_handling_code_is_documented(code: str) -> None:
    """docs/handling-codes.md has a table row for each code, with its source."""
    row = re.search(rf"^\| `{re.escape(code)}` \| ([^|]+) \|", DOC, re.MULTILINE)
    assert row is not None
    assert CATALOGUE[code].source.value == row.group(1).strip()


@pytest.mark.parametrize("code", sorted([*ReasonCode, *ObligationCode, *AuditFlag], key=str))
def test_every_reason_obligation_and_flag_is_documented(code: str) -> None:
    """Every stable code a decision can carry is explained in the docs."""
    assert f"`{code}`" in DOC


def test_every_obligation_has_a_template() -> None:
    """The engine can render every obligation."""
    assert set(ObligationCode) == set(OBLIGATIONS)


def test_every_template_renders() -> None:
    """Reason templates only use the parameters the engine passes (none is left unfilled)."""
    for code, template in TEMPLATES.items():
        fields = set(re.findall(r"{(\w+)}", template))
        rendered = template.format(**{f: "X" for f in fields})
        assert "{" not in rendered, code


def test_all_is_complete() -> None:
    """policies.__all__ lists every public name and only names that exist (as httpx does)."""
    public = {
        name
        for name, value in vars(policies).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("policies._")
    }
    assert set() == public - set(policies.__all__)
    assert set() == {n for n in policies.__all__ if not hasattr(policies, n)}


def test_policies_imports_no_crypto_or_io() -> None:
    """The engine stays pure: importing policies pulls in neither node nor nats."""
    code = (
        "import sys, policies; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('node', 'nats', 'broker')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "" == out


def test_module_docstrings() -> None:
    """Each private module says what it is for."""
    for name in (
        "_catalogue",
        "_federation",
        "_agency_policy",
        "_index",
        "_engine",
        "_decision",
        "_messages",
        "_sections",
    ):
        assert importlib.import_module(f"policies.{name}").__doc__
