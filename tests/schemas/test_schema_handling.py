"""The handling block: canonical lists, consistency rules and the codes it shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import ActionCode, Classification, Handling, NonRefoulementOverride, Tlp
from schemas.errors import ReportInvalid

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_defaults_are_the_cautious_ones() -> None:
    """Unless set: H0, H1 (not for judicial use), A1, unclassified, no onward restriction."""
    h = Handling(tlp=Tlp.GREEN)
    assert (True, True, False, ActionCode.A1) == (h.h0, h.h1, h.h2, h.action)
    assert Classification.UNCLASSIFIED == h.classification
    assert ["TLP:GREEN", "H0", "H1", "A1"] == h.codes()


def test_a3_needs_action_text() -> None:
    """Overt action (A3) must say which action; with the text it is accepted."""
    with pytest.raises(ValidationError, match="A3 needs action_text"):
        Handling(tlp=Tlp.AMBER, action=ActionCode.A3)
    with pytest.raises(ValidationError, match="A3 needs action_text"):
        Handling(tlp=Tlp.AMBER, action=ActionCode.A3, action_text="")
    h = Handling(tlp=Tlp.AMBER, action=ActionCode.A3, action_text="Stop and search the lorry.")
    assert ["TLP:AMBER", "H0", "H1", "A3"] == h.codes()


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=-1)])
def test_expiry_must_follow_embargo(delta: timedelta) -> None:
    """expires <= not_before is refused."""
    with pytest.raises(ValidationError, match="expires must be after not_before"):
        Handling(tlp=Tlp.AMBER, not_before=NOW, expires=NOW + delta)


def test_embargo_and_expiry_in_order_or_alone() -> None:
    """An embargo before the expiry, or either alone, is accepted."""
    later = NOW + timedelta(days=30)
    assert later == Handling(tlp=Tlp.AMBER, not_before=NOW, expires=later).expires
    assert NOW == Handling(tlp=Tlp.AMBER, not_before=NOW).not_before
    assert NOW == Handling(tlp=Tlp.AMBER, expires=NOW).expires


def test_naive_times_refused_with_the_field_named() -> None:
    """A naive embargo is refused, and the error names not_before."""
    with pytest.raises(ValidationError) as info:
        Handling(tlp=Tlp.AMBER, not_before=datetime(2026, 11, 20))
    assert [("not_before",)] == [e["loc"] for e in info.value.errors()]


def test_lists_are_sorted_and_unique() -> None:
    """rel_to, protected_released_to and h3 have one canonical order, duplicates dropped."""
    h = Handling(
        tlp=Tlp.RED,
        rel_to=["MLT-AFM", "group:bali-process", "ITA-GDF", "MLT-AFM"],
        protected_released_to=["MLT-AFM", "ITA-GDF", "ITA-GDF"],
        h3=[
            {"code": "b", "text": "second"},
            {"code": "a", "text": "first"},
            {"code": "b", "text": "second"},
        ],
    )
    assert ["ITA-GDF", "MLT-AFM", "group:bali-process"] == h.rel_to
    assert ["ITA-GDF", "MLT-AFM"] == h.protected_released_to
    assert [("a", "first"), ("b", "second")] == [(r.code, r.text) for r in h.h3]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tlp": "CLEAR"}, False),
        ({"tlp": "GREEN"}, False),
        ({"tlp": "AMBER"}, False),
        ({"tlp": "AMBER+STRICT"}, True),
        ({"tlp": "RED"}, True),
        ({"tlp": "GREEN", "h2": True}, True),
    ],
)
def test_onward_forbidden(fields: dict[str, Any], expected: bool) -> None:
    """Onward sharing needs a release under H2, AMBER+STRICT and RED only."""
    assert expected == Handling.model_validate(fields).onward_forbidden


def test_judicial_use_lifts_h1() -> None:
    """Permitting judicial use removes H1 from the codes."""
    h = Handling(tlp=Tlp.GREEN, judicial_use=True, h2=True, h3=[{"code": "x", "text": "y"}])
    assert ["TLP:GREEN", "H0", "H2", "H3", "A1"] == h.codes()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tlp": "PINK"}, ("tlp",)),
        ({"tlp": "GREEN", "action": "A4"}, ("action",)),
        ({"tlp": "GREEN", "classification": "top-secret"}, ("classification",)),
        ({"tlp": "GREEN", "rel_to": ["ita-gdf"]}, ("rel_to", 0)),
        ({"tlp": "GREEN", "h3": [{"code": "Bad Code", "text": "x"}]}, ("h3", 0, "code")),
        ({"tlp": "GREEN", "h3": [{"code": "x", "text": ""}]}, ("h3", 0, "text")),
        ({"tlp": "GREEN", "action_text": "x" * 1001}, ("action_text",)),
        ({"tlp": "GREEN", "rel_to": [f"A{i:03d}" for i in range(257)]}, ("rel_to",)),
        ({"tlp": "GREEN", "h3": [{"code": f"c{i}", "text": "x"} for i in range(17)]}, ("h3",)),
        ({"tlp": "GREEN", "surprise": 1}, ("surprise",)),
    ],
)
def test_invalid_handling_names_the_field(fields: dict[str, Any], field: tuple[Any, ...]) -> None:
    """Unknown codes, bad ids, overlong lists and extra fields are refused at their field."""
    with pytest.raises(ValidationError) as info:
        Handling.model_validate(fields)
    assert field in [e["loc"] for e in info.value.errors()]


def test_non_refoulement_override() -> None:
    """An override names agencies (sorted, unique) and a justification of at least 20 chars."""
    o = NonRefoulementOverride(
        agencies=["LBY-DCIM", "ERI-POL", "LBY-DCIM"],
        justification="Person consented; return is voluntary and assisted by IOM.",
    )
    assert ["ERI-POL", "LBY-DCIM"] == o.agencies
    with pytest.raises(ValidationError, match="at least 20"):
        NonRefoulementOverride(agencies=["LBY-DCIM"], justification="because")
    with pytest.raises(ValidationError, match="at least 1"):
        NonRefoulementOverride(agencies=[], justification="x" * 20)
    h = Handling(tlp=Tlp.AMBER, non_refoulement_override=o)
    assert h == Handling.model_validate(h.model_dump(mode="json"))


def test_handling_is_frozen() -> None:
    """The signed block cannot be altered after validation."""
    h = Handling(tlp=Tlp.AMBER)
    with pytest.raises(ValidationError, match="frozen"):
        h.tlp = Tlp.CLEAR  # type: ignore[misc]


@pytest.mark.parametrize("code", ["No-Contact", "no contact", "-leading", "é-code", "x" * 49, ""])
def test_an_h3_code_error_says_what_a_code_may_hold(code: str) -> None:
    """Issue 15 item 10: the error names the characters allowed, not a regular expression,
    and the report's error lists it under the field."""
    from schemas.export import parse_report
    from tests.harness import EXAMPLES

    with pytest.raises(ValidationError) as caught:
        Handling(tlp=Tlp.AMBER, h3=[{"code": code, "text": "do not contact the subject"}])
    message = caught.value.errors()[0]["msg"]
    assert "lower-case letters, digits and hyphens" in message
    assert "[a-z" not in message
    wire = json.loads((EXAMPLES / "01-routes-central-med-departure.json").read_text())
    wire["handling"]["h3"] = [{"code": code, "text": "do not contact the subject"}]
    with pytest.raises(ReportInvalid) as invalid:
        parse_report(json.dumps(wire))
    assert "handling.h3.0.code: use 1 to 48 lower-case letters, digits and hyphens" in (
        invalid.value.reason
    )
