"""Fuzzing the report validator: any input is a Report or a typed ReportInvalid/PalermoError.

Covers parse_report (JSON bytes, text and parsed data: HTTP ingest, the CLI, files) and
open_report (the msgpack body and sections a node decrypts), on random input, on byte mutations
of every example report and on tree mutations of them. A report that validates must read back
equal from its wire form (fuzz/harness.py).
"""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime, timedelta, timezone
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


def test_time_before_1970_as_text_is_report_invalid() -> None:
    """Regression (found by make fuzz, fixed in e42808d): accepted as text, refused on the wire."""
    data = seeds.report_regressions()["regression-observed-1013.json"]
    with pytest.raises(ReportInvalid) as info:
        parse_report(data)
    assert ["observed"] == [e["field"] for e in info.value.errors]
    assert "1013-11-21T02:02:00+00:00 is outside 1970-01-01 to 9999-12-31" in info.value.reason


def test_every_regression_input_gives_a_typed_error() -> None:
    """Each input that once crashed a target now ends in ReportInvalid."""
    for name, data in seeds.report_regressions().items():
        with pytest.raises(ReportInvalid):
            parse_report(data)
        harness.report_input(data)
        assert name.startswith("regression-")


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


TIME_FIELDS = [("observed",), ("handling", "not_before"), ("handling", "expires")]
ZONES = [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))]


@settings(FUZZ, max_examples=300)
@given(
    st.sampled_from(EXAMPLES),
    st.sampled_from(TIME_FIELDS),
    st.datetimes(timezones=st.sampled_from(ZONES)).map(datetime.isoformat)
    | st.integers(-(2**63), 2**63),
)
def test_any_time_in_every_time_field(
    example: dict[str, Any], path: tuple[str, ...], when: Any
) -> None:
    """Any RFC 3339 time (years 1 to 9999, any offset) or integer in each time field."""
    doc = copy.deepcopy(example)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = when
    harness.report_structure(doc)


@settings(FUZZ, max_examples=500)
@given(json_values | msgpack_values)
def test_any_structure(value: Any) -> None:
    """Any JSON- or msgpack-able value as report data, JSON text and a msgpack body."""
    harness.report_structure(value)
