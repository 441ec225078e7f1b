"""``schemas.upgrade``: any iir/1 report rewritten as iir/1.1 keeps its meaning.

Meaning here is everything a recipient or the policy engine reads: the persons and items, the
handling codes and obligations, the policy decisions, and how the report is split into sealed
sections. The only change an upgrade makes is the schema and an explicit action code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import Federation, decide, obligations_for
from schemas import (
    ActionCode,
    EnvelopeHeader,
    HandlingV11,
    Report,
    Tlp,
    new_uuid7,
    parse_report,
    partition,
    upgrade,
)
from schemas._upgrade import upgrade_data
from tests.schemas._support import AGENCIES, EXAMPLES, example, report_data

FEDERATION: Final = Federation.from_toml(
    (Path(__file__).resolve().parents[2] / "policies" / "examples" / "federation.toml").read_text()
)
NOW: Final = datetime(2026, 11, 23, tzinfo=UTC)
PROPERTY: Final = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Every example that is still iir/1 (the 1.1 examples have nothing to upgrade).
V1_EXAMPLES: Final = [
    p.name[:2] for p in EXAMPLES if example(p.name[:2]).get("schema", "iir/1") == "iir/1"
]

_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=40).map(
    lambda s: f"x{s}"
)
_action = st.one_of(
    st.just({}),
    st.sampled_from([{"action": "A1"}, {"action": "A2"}]),
    _text.map(lambda t: {"action": "A3", "action_text": t}),
)
_handling = st.builds(
    lambda base, action: base | action,
    st.fixed_dictionaries(
        {"tlp": st.sampled_from([t.value for t in Tlp])},
        optional={
            "rel_to": st.lists(
                st.sampled_from(["group:med-coastal", "group:western-balkans", *AGENCIES]),
                max_size=4,
            ),
            "h0": st.just(True),
            "judicial_use": st.booleans(),
            "h2": st.booleans(),
            "h3": st.lists(
                st.fixed_dictionaries(
                    {"code": st.sampled_from(["no-contact-with-subject", "no-copy"]), "text": _text}
                ),
                max_size=2,
            ),
            "classification": st.sampled_from(["unclassified", "restricted", "confidential"]),
            "expires": st.integers(1_800_000_000_000, 1_900_000_000_000),
            "protected_released_to": st.lists(st.sampled_from(AGENCIES), max_size=2),
        },
    ),
    _action,
)


@st.composite
def v1_reports(draw: st.DrawFn) -> dict[str, Any]:
    """An iir/1 report's JSON data: generated, or an example, under a drawn handling block."""
    data: dict[str, Any] = draw(st.one_of(report_data(), st.sampled_from(V1_EXAMPLES).map(example)))
    data["handling"] = draw(st.one_of(st.just(data["handling"]), _handling))
    # "schema" may be left out: a report without one is iir/1.
    data.pop("schema", None)
    if draw(st.booleans()):
        data["schema"] = "iir/1"
    return data


def _header(report: Report) -> EnvelopeHeader:
    """The header a node would seal the report under (as ``palermo policy check`` builds it)."""
    return EnvelopeHeader(
        id=new_uuid7(1_795_392_000_000, bytes(10)),
        originator=report.originator,
        kid="0" * 16,
        created=NOW,
        kind=report.kind,
        priority=report.priority,
        route=report.route,
        category=report.category,
        handling=report.handling,
        schema=report.schema_,
        recipients=sorted(set(AGENCIES) - {report.originator}),
        sections=partition(report).sections(),
    )


def _content(report: Report) -> dict[str, Any]:
    return {
        name: getattr(report, name)
        for name in Report.model_fields
        if name not in ("schema_", "handling")
    }


@PROPERTY
@given(v1_reports())
def test_upgrade_keeps_persons_items_and_handling(data: dict[str, Any]) -> None:
    """Same persons, items and handling codes; the action code is written out; H0 stays."""
    report = parse_report(data)
    upgraded = upgrade(report)
    assert ("iir/1", "iir/1.1") == (report.schema_, upgraded.schema_)
    assert [(p.ref, p.all_roles) for p in report.persons] == [
        (p.ref, p.all_roles) for p in upgraded.persons
    ]
    assert report.persons == upgraded.persons
    assert _content(report) == _content(upgraded)
    assert HandlingV11 is type(upgraded.handling)
    assert report.handling.model_dump() == upgraded.handling.model_dump()
    assert "action" in upgraded.handling.model_fields_set
    assert (data["handling"].get("action") or ActionCode.A1) == upgraded.handling.action
    assert upgraded.handling.h0
    assert report.handling.codes() == upgraded.handling.codes()
    assert obligations_for(report.handling) == obligations_for(upgraded.handling)


@PROPERTY
@given(v1_reports())
def test_upgrade_keeps_sections_and_policy_decisions(data: dict[str, Any]) -> None:
    """Partitioned the same way, sealed under a header that decodes to the same codes, and the
    policy engine decides the same for every member of the example federation."""
    report = parse_report(data)
    upgraded = upgrade(report)
    before, after = partition(report), partition(upgraded)
    assert before.sections() == after.sections()
    assert before.section_bodies() == after.section_bodies()
    assert before.protected_nationalities == after.protected_nationalities
    assert before.shielded_nationalities == after.shielded_nationalities
    main_before, main_after = dict(before.main), dict(after.main)
    assert "iir/1.1" == main_after.pop("schema")
    assert main_before.pop("handling") | {"action": main_after["handling"]["action"]} == (
        main_after.pop("handling")
    )
    main_before.pop("schema")
    assert main_before == main_after
    header_before, header_after = _header(report), _header(upgraded)
    assert header_before.handling.codes() == header_after.handling.codes()
    for member in FEDERATION.members:
        if member.id == report.originator:
            continue
        assert (
            decide(header_before, member.id, FEDERATION, None, NOW).to_dict()
            == decide(header_after, member.id, FEDERATION, None, NOW).to_dict()
        )


@PROPERTY
@given(v1_reports())
def test_sealed_header_carries_the_action_code(data: dict[str, Any]) -> None:
    """The signed header of an upgraded report writes its action code out (under iir/1.1 an
    absent one means none) and decodes to the same codes."""
    upgraded = upgrade(parse_report(data))
    header = _header(upgraded)
    wire = header.to_wire()
    assert upgraded.handling.action == wire["handling"].get("action")
    assert header.handling.codes() == EnvelopeHeader.model_validate(wire).handling.codes()


@PROPERTY
@given(v1_reports())
def test_upgraded_report_round_trips_and_upgrades_once(data: dict[str, Any]) -> None:
    """The upgraded report survives the wire; upgrading again changes nothing; the file form
    (only schema and action rewritten) parses to the same report."""
    upgraded = upgrade(parse_report(data))
    assert upgraded == Report.from_wire(upgraded.to_wire())
    assert upgraded == parse_report(upgraded.to_wire())
    assert upgrade(upgraded) is upgraded
    rewritten = upgrade_data(data)
    assert upgraded == parse_report(rewritten)
    assert (
        {"schema"}
        <= {k for k in rewritten if rewritten[k] != data.get(k)}
        <= {
            "schema",
            "handling",
        }
    )
    assert data["handling"] | {"action": upgraded.handling.action} == rewritten["handling"]
    assert rewritten == upgrade_data(rewritten)
