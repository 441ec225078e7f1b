"""parse_report: the untrusted-input boundary accepts mappings, text and UTF-8 bytes."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

from schemas import Report, parse_report
from schemas.errors import InputError, ReportInvalid
from schemas.export import parse_report as parse_report_from_export
from tests.schemas._support import example, minimal


def test_mapping_text_and_bytes_give_the_same_report() -> None:
    """A dict, a read-only mapping, JSON text and UTF-8 bytes all parse to equal reports."""
    data = example("10")
    text = json.dumps(data, ensure_ascii=False)
    reports = [
        parse_report(data),
        parse_report(MappingProxyType(data)),
        parse_report(text),
        parse_report(text.encode("utf-8")),
    ]
    assert all(isinstance(r, Report) for r in reports)
    assert [reports[0]] * 4 == reports


def test_export_module_keeps_parse_report() -> None:
    """schemas.export.parse_report is the same function (existing callers import it there)."""
    assert parse_report is parse_report_from_export


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{nope", "not JSON"),
        (b"", "not JSON"),
        (b"\xef\xbb\xbf{}", "not JSON"),  # a BOM is not part of RFC 8259 JSON text
        (b'{"title": "\xff"}', "not UTF-8"),
        ('{"title": "caf\u00e9"}'.encode("utf-16"), "not UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_input_is_report_invalid(data: Any, message: str) -> None:
    """Broken encodings, broken JSON and stack-exhausting nesting are typed errors."""
    with pytest.raises(ReportInvalid, match=message) as info:
        parse_report(data)
    assert [] == info.value.errors
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize("data", ["[]", "null", "42", '"report"', [], None])
def test_non_object_documents_are_named(data: Any) -> None:
    """A JSON value that is not an object is reported against the whole document."""
    with pytest.raises(ReportInvalid) as info:
        parse_report(data)
    assert ["(document)"] == [e["field"] for e in info.value.errors]


def test_error_entries_and_reason_summary() -> None:
    """Each error has field, message and type; the reason counts them and lists each."""
    data = minimal(
        priority="asap",
        persons=[{"ref": "p1", "role": "driver", "nationality": "XXX"}],
        finance=[{"kind": "fee", "amount": {"amount": "1", "currency": "euro"}}],
    )
    with pytest.raises(ReportInvalid) as info:
        parse_report(data)
    err = info.value
    assert ["priority", "persons.0.nationality", "finance.0.amount.currency"] == [
        e["field"] for e in err.errors
    ]
    assert all({"field", "message", "type"} == set(e) for e in err.errors)
    assert err.reason.startswith("report: 3 fields are invalid: priority: ")
    assert "persons.0.nationality: Value error, 'XXX' is not an ISO 3166-1 alpha-3" in err.reason
    assert "report_invalid" == err.to_dict()["code"]
    assert err.errors == err.to_dict()["errors"]


def test_one_error_reads_singular_and_many_are_truncated() -> None:
    """One error says "1 field is"; more than five list five and count the rest."""
    with pytest.raises(ReportInvalid, match=r"^report: 1 field is invalid: title: "):
        parse_report(minimal(title=""))
    bad = minimal(persons=[{"ref": f"p{i}", "role": "x"} for i in range(8)])
    with pytest.raises(ReportInvalid, match=r"8 fields are invalid: .*\(and 3 more\)$") as info:
        parse_report(bad)
    assert [f"persons.{i}.role" for i in range(8)] == [e["field"] for e in info.value.errors]


def test_error_messages_do_not_echo_input() -> None:
    """Error entries carry no input values: personal data in a bad report is not logged back."""
    data = minimal(persons=[{"ref": "p1", "role": "driver", "names": ["Secret Name" * 50]}])
    with pytest.raises(ReportInvalid) as info:
        parse_report(data)
    assert "Secret Name" not in json.dumps(info.value.to_dict())
