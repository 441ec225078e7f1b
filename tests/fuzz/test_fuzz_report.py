"""Fuzzing the report validator: any input is a Report or a typed ReportInvalid/PalermoError.

Covers parse_report (JSON bytes, text and parsed data: HTTP ingest, the CLI, files) and
open_report (the msgpack body and sections a node decrypts), on random input, on byte mutations
of every example report and on tree mutations of them. A report that validates must read back
equal from its wire form (fuzz/harness.py).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import harness, seeds
from schemas import parse_report
from schemas.errors import PalermoError, ReportInvalid
from tests.fuzz._strategies import FUZZ, json_values, msgpack_values, mutated, tree_mutated

SEEDS = list(seeds.report_seeds().values())
EXAMPLES = [json.loads(p.read_text()) for p in sorted(seeds.EXAMPLES.glob("*.json"))]


def test_every_example_seed_is_a_valid_report() -> None:
    """Not vacuous: the unmutated JSON seeds all validate."""
    assert 11 <= len(EXAMPLES)
    assert len(EXAMPLES) == len([parse_report(e) for e in EXAMPLES])


def test_integer_of_5000_digits_is_report_invalid() -> None:
    """Regression (fixed in 5597f50): Python's 4300-digit int limit raised a bare ValueError."""
    with pytest.raises(ReportInvalid) as info:
        parse_report(b'{"title": ' + b"1" * 5000 + b"}")
    assert "report_invalid" == info.value.code
    assert info.value.reason.startswith("report is not JSON this schema can hold")


@settings(FUZZ, max_examples=800)
@given(st.binary(max_size=2048))
def test_any_bytes(data: bytes) -> None:
    """Random bytes as JSON ingest and as an opened body or section: typed errors only."""
    harness.report_input(data)


@settings(FUZZ, max_examples=300)
@given(st.text(max_size=2048))
def test_any_text(text: str) -> None:
    """Any str, lone surrogates included, given to parse_report: a Report or ReportInvalid."""
    with contextlib.suppress(PalermoError):
        parse_report(text)


@settings(FUZZ, max_examples=1500)
@given(mutated(SEEDS))
def test_mutated_examples_bytes(data: bytes) -> None:
    """Bit flips, truncations, splices, bombs in example JSON and msgpack bodies."""
    harness.report_input(data)


@settings(FUZZ, max_examples=1200)
@given(st.sampled_from(EXAMPLES).flatmap(lambda e: tree_mutated(e, json_values)))
def test_mutated_examples_trees(value: Any) -> None:
    """Any field of an example replaced, deleted, type-swapped or repeated 300 times."""
    harness.report_structure(value)


@settings(FUZZ, max_examples=500)
@given(json_values | msgpack_values)
def test_any_structure(value: Any) -> None:
    """Any JSON- or msgpack-able value as report data, JSON text and a msgpack body."""
    harness.report_structure(value)
