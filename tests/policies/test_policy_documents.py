"""Federation and standing-policy documents: loading, validation errors, canonical bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import AgencyPolicy, Federation, MemberStatus, canonical_json
from protocol.keys import SigningKey
from protocol.trust import ROOT, sign_document, verify_document
from schemas import Classification
from schemas.errors import ConfigError
from tests.policies._factories import (
    EXAMPLES,
    NOW,
    agreement,
    example_federation,
    example_policy,
    federation_data,
    member,
)


def test_example_federation_loads() -> None:
    """The shipped example federation validates and has what the docs promise."""
    fed = example_federation()
    assert "palermo-example" == fed.id
    assert {"bali-process", "eu-frontex-community", "med-coastal", "western-balkans"} == {
        g.id for g in fed.groups
    }
    assert len(fed.members) >= 6
    assert ["UNODC-STATS"] == [m.id for m in fed.members if m.aggregate_only]
    assert {True, False} == {a.data_protection for a in fed.agreements}
    assert len({m.accreditation for m in fed.members}) >= 3


def test_example_federation_has_a_suspended_member() -> None:
    """The example shows a member status other than active."""
    fed = example_federation()
    assert MemberStatus.SUSPENDED == fed.member("ALB-BP").status  # type: ignore[union-attr]


@pytest.mark.parametrize("agency", ["ITA-GDF", "AUS-ABF", "GRC-HCG"])
def test_example_standing_policies_load(agency: str) -> None:
    """Each shipped standing policy validates and belongs to its agency."""
    assert agency == example_policy(agency).agency


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_every_example_names_only_known_groups(name: str) -> None:
    """Standing policies in the examples name only groups the example federation defines."""
    if name == "federation.toml":
        return
    fed = example_federation()
    pol = AgencyPolicy.from_toml((EXAMPLES / name).read_text())
    named = {t[6:] for r in pol.rules for t in r.targets if t.startswith("group:")}
    assert set() == named - {g.id for g in fed.groups}


def _toml_error(text: str, model: type[Federation] | type[AgencyPolicy] = Federation) -> str:
    with pytest.raises(ConfigError) as info:
        model.from_toml(text)
    return info.value.reason


def test_toml_syntax_error_is_a_config_error() -> None:
    """Broken TOML is a ConfigError that says so."""
    assert _toml_error("id = ").startswith("federation policy is not valid TOML")


FEDERATION_HEAD = """
id = "f"
name = "F"
version = 1
issued = 2026-01-01T00:00:00Z
[[groups]]
id = "med"
name = "Med"
"""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "XXX"\naccreditation = "secret"',
            "members.0.country",
        ),
        (
            '[[members]]\nid = "ita"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"',
            "members.0.id",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "top"',
            "members.0.accreditation",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"\n'
            'colour = "red"',
            "members.0.colour",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"\n'
            'status = "asleep"',
            "members.0.status",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"\n'
            'groups = ["nowhere"]',
            "members.ITA-GDF.groups: nowhere",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"\n'
            '[[agreements]]\nid = "a"\nversion = 1\nname = "a"\nparties = ["ITA-GDF", "MLT-AFM"]\n'
            'purposes = ["p"]\nvalid_from = 2025-01-01T00:00:00Z',
            "agreements.a.parties: MLT-AFM",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"\n'
            '[[agreements]]\nid = "a"\nversion = 1\nname = "a"\nparties = ["group:x"]\n'
            'purposes = ["p"]\nvalid_from = 2025-01-01T00:00:00Z',
            "agreements.a.parties: group:x",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"\n'
            '[[agreements]]\nid = "a"\nversion = 1\nname = "a"\nparties = ["ITA-GDF"]\n'
            'purposes = ["p"]\nvalid_from = 2025-01-01\n',
            "agreements.0.valid_from",
        ),
        (
            '[[members]]\nid = "ITA-GDF"\nname = "x"\ncountry = "ITA"\naccreditation = "secret"\n'
            '[[members]]\nid = "ITA-GDF"\nname = "y"\ncountry = "ITA"\naccreditation = "secret"',
            "members: ITA-GDF is listed twice",
        ),
        ("", "members: Field required"),
    ],
)
def test_invalid_federation_names_the_field(body: str, field: str) -> None:
    """Every schema or reference error names the field to fix."""
    assert field in _toml_error(FEDERATION_HEAD + body)


def test_agreement_window_must_be_ordered() -> None:
    """valid_until before valid_from is refused, naming the agreement."""
    data = federation_data(
        [member("ITA-GDF", "ITA")],
        [agreement("a", ["ITA-GDF"], valid_from=NOW, valid_until=NOW)],
    )
    with pytest.raises(ConfigError) as info:
        Federation.from_data(data)
    assert "agreement a: valid_until must be after valid_from" in info.value.reason


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ('rule = "deny"\ntargets = []', "rules.0.deny.targets"),
        ('rule = "deny"\ntargets = ["group:Bad Group"]', "rules.0.deny.targets.0"),
        ('rule = "max-tlp"\ntargets = ["LBY-DCIM"]', "rules.0.max-tlp.tlp"),
        ('rule = "max-tlp"\ntargets = ["LBY-DCIM"]\ntlp = "PINK"', "rules.0.max-tlp.tlp"),
        ('rule = "widen"\ntargets = ["LBY-DCIM"]', "rules.0"),
    ],
)
def test_invalid_agency_policy_names_the_field(rule: str, field: str) -> None:
    """A bad standing-policy rule is a ConfigError naming the rule's field."""
    text = 'agency = "ITA-GDF"\nversion = 1\nissued = 2026-01-01T00:00:00Z\n[[rules]]\n' + rule
    reason = _toml_error(text, AgencyPolicy)
    assert reason.startswith("agency policy is invalid")
    assert field in reason


def _shuffled_federation() -> dict[str, Any]:
    fed = example_federation().model_dump(mode="json")
    fed["members"].reverse()
    fed["groups"].reverse()
    fed["agreements"].reverse()
    for m in fed["members"]:
        m["groups"].reverse()
    for a in fed["agreements"]:
        a["parties"].reverse()
    return fed


def test_canonical_bytes_ignore_the_order_of_lists() -> None:
    """Writing members, groups, agreements or parties in another order signs the same bytes."""
    assert example_federation().canonical_bytes() == (
        Federation.from_data(_shuffled_federation()).canonical_bytes()
    )


def test_canonical_bytes_are_compact_sorted_json() -> None:
    """canonical_bytes is sorted-key JSON without whitespace, as protocol.trust signs it."""
    fed = example_federation()
    body = fed.model_dump(mode="json", exclude_none=True)
    assert canonical_json(body) == fed.canonical_bytes()
    assert json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == (
        fed.canonical_bytes()
    )


def test_canonical_bytes_round_trip() -> None:
    """A document rebuilt from its canonical bytes is equal and has the same bytes."""
    pol = example_policy("ITA-GDF")
    again = AgencyPolicy.from_data(json.loads(pol.canonical_bytes()))
    assert pol == again
    assert pol.canonical_bytes() == again.canonical_bytes()


def test_agency_policy_rule_order_is_canonical() -> None:
    """Rules written in another order give the same signed bytes."""
    pol = example_policy("ITA-GDF")
    data = pol.model_dump(mode="json")
    data["rules"].reverse()
    assert pol.canonical_bytes() == AgencyPolicy.from_data(data).canonical_bytes()


def test_documents_sign_and_verify_with_trust() -> None:
    """protocol.trust signs and verifies both documents over the same canonical bytes."""
    root = SigningKey.generate(ROOT)
    fed = example_federation()
    signed = sign_document(fed, root, ROOT)
    assert fed == verify_document(signed, Federation, root.public, ROOT)
    ita = SigningKey.generate("ITA-GDF")
    pol = example_policy("ITA-GDF")
    assert pol == verify_document(
        sign_document(pol, ita, "ITA-GDF"), AgencyPolicy, ita.public, "ITA-GDF"
    )


def test_member_lookup() -> None:
    """Federation.member finds a member by id, or None."""
    fed = example_federation()
    assert Classification.SECRET == fed.member("AUS-ABF").accreditation  # type: ignore[union-attr]
    assert None is fed.member("NOPE-1")
