"""The signed envelope header: consistency rules, canonical order, wire form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import EnvelopeHeader, SectionInfo, SectionKind, new_uuid7

ID = new_uuid7(1_794_528_000_000, bytes(10))


def _header(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": ID,
        "originator": "ITA-GDF",
        "kid": "0123456789abcdef",
        "created": 1_794_528_000_000,
        "kind": "report",
        "route": "central-med",
        "category": "routes",
        "handling": {"tlp": "AMBER"},
        "recipients": ["MLT-AFM"],
    }
    return base | overrides


def test_minimal_header_and_defaults() -> None:
    """A minimal header validates, with routine priority, schema iir/1 and no sections."""
    h = EnvelopeHeader.model_validate(_header())
    assert ("routine", "iir/1", [], []) == (h.priority, h.schema_, h.refs, h.sections)
    assert not h.contains_personal_data
    assert ("ITA-GDF", "report", "central-med", "routes") == h.subject_tokens()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"created": datetime(2026, 11, 13)}, "created", "timezone"),
        ({"created": "2026-11-13T00:00:00"}, "created", "timezone"),
        ({"recipients": ["ITA-GDF", "MLT-AFM"]}, "", "own recipients"),
        ({"recipients": []}, "recipients", "at least 1"),
        ({"recipients": [f"A{i:03d}" for i in range(257)]}, "recipients", "at most 256"),
        ({"id": "not-a-uuid"}, "id", "UUIDv7"),
        ({"id": "01234567-89ab-4001-8203-040506070809"}, "id", "UUIDv7"),
        ({"kid": "xyz"}, "kid", "pattern"),
        ({"schema": "iir/2"}, "schema", "iir/1"),
        ({"kind": "gossip"}, "kind", "alert"),
        ({"refs": ["\u00e9"]}, "refs.0", "pattern"),
        ({"extra": 1}, "extra", "not permitted"),
    ],
)
def test_invalid_header(overrides: dict[str, Any], field: str, message: str) -> None:
    """Each broken header is refused at the named field (or the model, for cross-field rules)."""
    with pytest.raises(ValidationError, match=message) as info:
        EnvelopeHeader.model_validate(_header(**overrides))
    assert field in [".".join(map(str, e["loc"])) for e in info.value.errors()]


def test_duplicate_section_ids_refused() -> None:
    """Two sections with one id would make key wrapping ambiguous."""
    section = {"id": "personal-data", "kind": "personal-data"}
    with pytest.raises(ValidationError, match="section ids must be unique"):
        EnvelopeHeader.model_validate(_header(sections=[section, section]))


def test_canonical_order() -> None:
    """Recipients, refs, sections and nationalities are sorted so the signature is stable."""
    h = EnvelopeHeader.model_validate(
        _header(
            recipients=["MLT-AFM", "GRC-HCG", "MLT-AFM"],
            refs=["case-2", "case-1", "case-2"],
            sections=[
                {"id": "protected-persons", "kind": "protected-persons"},
                {
                    "id": "personal-data",
                    "kind": "personal-data",
                    "protected_nationalities": ["SDN", "ERI", "SDN"],
                },
            ],
        )
    )
    assert ["GRC-HCG", "MLT-AFM"] == h.recipients
    assert ["case-1", "case-2"] == h.refs
    assert ["personal-data", "protected-persons"] == [s.id for s in h.sections]
    assert ["ERI", "SDN"] == h.sections[0].protected_nationalities
    assert h.contains_personal_data


def test_protected_persons_section_alone_is_not_personal_data_section() -> None:
    """contains_personal_data looks for a personal-data section only."""
    h = EnvelopeHeader.model_validate(
        _header(sections=[{"id": "protected-persons", "kind": "protected-persons"}])
    )
    assert not h.contains_personal_data


def test_section_nationalities_are_checked() -> None:
    """A protected nationality must be an ISO 3166-1 alpha-3 code."""
    with pytest.raises(ValidationError, match="ISO 3166-1") as info:
        SectionInfo(id="pd", kind=SectionKind.PERSONAL_DATA, protected_nationalities=["XXX"])
    assert ("protected_nationalities", 0) == info.value.errors()[0]["loc"]


def test_wire_round_trip() -> None:
    """to_wire gives plain data with epoch-ms times, no defaults; it reads back equal."""
    created = datetime(2026, 11, 13, 1, tzinfo=timezone(timedelta(hours=1)))
    h = EnvelopeHeader.model_validate(_header(created=created, priority="urgent"))
    wire = h.to_wire()
    assert 1_794_528_000_000 == wire["created"]
    assert "urgent" == wire["priority"]
    assert {"schema", "schema_", "refs", "sections"}.isdisjoint(wire)
    assert "tlp" in wire["handling"]
    assert "h0" not in wire["handling"]
    assert h == EnvelopeHeader.model_validate(wire)
    assert datetime(2026, 11, 13, tzinfo=UTC) == h.created
