"""The exported JSON Schema, run by a third-party validator, agrees with pydantic on the examples
and on broken reports, down to the path of the field at fault."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from typer.testing import CliRunner

from palermo.cli import app
from schemas import parse_report
from schemas.errors import ReportInvalid
from tests.schemas._support import EXAMPLES, example, minimal, set_path

REPORT_SCHEMA = "iir-v1.1.report.schema.json"
# RFC 3339 section 5.6 date-time, with its mandatory offset. jsonschema checks "date-time" only
# when rfc3339-validator is installed; this test does not depend on that being so.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats constrain strings only (JSON Schema 2020-12, 7.1)
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper())  # raises on 2026-02-30T..., 25:00 and the like
    return True


def _format_checker() -> FormatChecker:
    checker = FormatChecker(Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checks("date-time", raises=ValueError)(_date_time)
    return checker


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Draft202012Validator:
    """The report schema as `palermo schema export` writes it, in a draft 2020-12 validator."""
    out = tmp_path_factory.mktemp("schemas-json")
    result = CliRunner().invoke(app, ["schema", "export", str(out)])
    assert 0 == result.exit_code, result.output
    schema = json.loads((out / REPORT_SCHEMA).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker())


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(document)"


def _schema_fields(error: ValidationError) -> list[str]:
    """The fields an error is about, named as pydantic names them.

    jsonschema reports a missing or unknown property against the object that should (not) have
    it; pydantic against the property itself. A fault inside an optional object (``anyOf``: the
    object or null) is reported against the field holding it, with the real fault in its
    context, which best_match picks out. Everything else is at the same place.
    """
    error = best_match([error])
    where = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        return [_dotted([*where, name]) for name in missing]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        return [_dotted([*where, name]) for name in instance if name not in known]
    return [_dotted(where)]


def _jsonschema_fields(validator: Draft202012Validator, report: dict[str, Any]) -> set[str]:
    return {f for error in validator.iter_errors(report) for f in _schema_fields(error)}


def _pydantic_fields(report: dict[str, Any]) -> set[str]:
    with pytest.raises(ReportInvalid) as caught:
        parse_report(report)
    return {e["field"] for e in caught.value.errors}


def test_every_example_is_checked() -> None:
    """The eleven iir/1 examples and the iir/1.1 ones are all found (a wrong glob finds none)."""
    names = [p.name for p in EXAMPLES]
    assert [f"{n:02d}" for n in range(1, 12)] == [n[:2] for n in names][:11]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_valid_for_jsonschema(validator: Draft202012Validator, path: Path) -> None:
    """Every example that pydantic accepts, the exported schema accepts too."""
    report = json.loads(path.read_text())
    parse_report(report)
    assert [] == [f"{_dotted(e.absolute_path)}: {e.message}" for e in validator.iter_errors(report)]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_wire_form_valid_for_jsonschema(
    validator: Draft202012Validator, path: Path
) -> None:
    """What a node writes (times as epoch ms, amounts as decimal strings) validates as well."""
    wire = parse_report(json.loads(path.read_text())).to_wire()
    assert [] == [f"{_dotted(e.absolute_path)}: {e.message}" for e in validator.iter_errors(wire)]


@pytest.mark.parametrize(
    "observed",
    ["2026-11-22T10:00:00Z", "2026-11-22T10:00:00.250+01:00", 0, 1_794_528_000_000],
)
def test_times_in_both_forms_are_valid(validator: Draft202012Validator, observed: Any) -> None:
    """A time is RFC 3339 text with an offset or epoch milliseconds, for both validators."""
    report = minimal(observed=observed)
    parse_report(report)
    assert [] == list(validator.iter_errors(report))


V11 = {"schema": "iir/1.1"}
EVENT = {"kind": "interception", "counts": [{"of": "aboard", "count": 41}]}

BROKEN: dict[str, tuple[dict[str, Any], tuple[Any, ...], Any]] = {
    # id: (report, path to change, bad value); the expected field is that path, dotted.
    "nationality-not-a-country": (example("07"), ("persons", 0, "nationality"), "XXX"),
    "lower-case-country": (example("09"), ("transport", 0, "vessel", "flag"), "mlt"),
    "negative-count": (minimal(**V11, events=[EVENT]), ("events", 0, "counts", 0, "count"), -1),
    "count-of-unknown": (minimal(**V11, events=[EVENT]), ("events", 0, "counts", 0, "of"), "seen"),
    "unknown-detection-method": (
        minimal(**V11, events=[EVENT | {"detection_methods": ["x-ray-scanner", "x"]}]),
        ("events", 0, "detection_methods", 1),
        "telepathy",
    ),
    "unknown-event-status": (minimal(**V11, events=[EVENT]), ("events", 0, "status"), "rumoured"),
    "event-time-before-1970": (minimal(**V11, events=[EVENT]), ("events", 0, "earliest"), -1),
    "event-time-without-offset": (
        minimal(**V11, events=[EVENT]),
        ("events", 0, "at"),
        "2026-11-22T10:00:00",
    ),
    "unknown-border-type": (
        minimal(
            **V11, events=[EVENT | {"border_crossing_point": {"type": "sea", "country": "ITA"}}]
        ),
        ("events", 0, "border_crossing_point", "type"),
        "river",
    ),
    "unknown-source-type": (minimal(**V11, sources=["informant"]), ("sources", 0), "gossip"),
    "unknown-loss-kind": (
        minimal(
            **V11,
            category="documents",
            documents=[
                {
                    "type": "passport",
                    "issuing_state": "ITA",
                    "fraud": "stolen-blank",
                    "loss": {"kind": "theft", "quantity": 120},
                }
            ],
        ),
        ("documents", 0, "loss", "kind"),
        "borrowed",
    ),
    "unknown-offence-in-proceedings": (
        minimal(
            **V11,
            persons=[
                {
                    "ref": "p1",
                    "role": "organiser",
                    "proceedings": [{"stage": "charged", "jurisdiction": "ITA"}],
                }
            ],
        ),
        ("persons", 0, "proceedings", 0, "offences"),
        ["smuggling-of-migrants", "jaywalking"],
    ),
    "unknown-penalty-offence": (
        minimal(
            **V11,
            category="legislation",
            legislation=[
                {
                    "jurisdiction": "ITA",
                    "title": "Testo unico",
                    "summary": "Art. 12.",
                    "penalties": [{"offence": "smuggling-of-migrants", "aggravated": True}],
                }
            ],
        ),
        ("legislation", 0, "penalties", 0, "offence"),
        "speeding",
    ),
    "unknown-second-role": (
        minimal(persons=[{"ref": "p1", "role": "smuggled-migrant"}], **V11),
        ("persons", 0, "roles"),
        ["boat-pilot", "captain"],
    ),
    "impossible-date": (example("08"), ("incidents", 0, "occurred_on"), "2026-02-30"),
    "negative-amount": (example("07"), ("finance", 0, "amount", "amount"), -5),
    "unknown-action-code": (minimal(), ("handling", "action"), "A9"),
    "misspelt-field": (minimal(**V11, events=[EVENT]), ("events", 0, "kinds"), "departure"),
}
# Where the bad value sits below the changed path (a list whose second entry is wrong).
AT: dict[str, tuple[Any, ...]] = {
    "unknown-offence-in-proceedings": (1,),
    "unknown-second-role": (1,),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_report_same_field(validator: Draft202012Validator, case: str) -> None:
    """pydantic and the exported schema both refuse it, and name the same one field."""
    report, path, bad = BROKEN[case]
    broken = set_path(json.loads(json.dumps(report)), path, bad)
    expected = {_dotted(path + AT.get(case, ()))}
    assert expected == _pydantic_fields(broken)
    assert expected == _jsonschema_fields(validator, broken)


def test_missing_field_same_path(validator: Draft202012Validator) -> None:
    """A missing required field is named the same way (events.0.kind), not by its parent."""
    broken = minimal(**V11, events=[{"status": "expected"}])
    assert {"events.0.kind"} == _pydantic_fields(broken)
    assert {"events.0.kind"} == _jsonschema_fields(validator, broken)


def test_several_faults_all_named(validator: Draft202012Validator) -> None:
    """With several faults in one report, both list the same set of fields."""
    broken = example("07")
    broken["persons"][0]["nationality"] = "XXX"
    broken["finance"][0]["amount"]["currency"] = "eur"
    broken["priority"] = "whenever"
    fields = _pydantic_fields(broken)
    assert {"persons.0.nationality", "finance.0.amount.currency", "priority"} == fields
    assert fields == _jsonschema_fields(validator, broken)
