"""Sealing and opening IIR 1.1 reports: a withheld witness takes their links and payments along,
and the action code in the signed header is the originator's or the federation's default."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from node.reports import SealedReport, open_report, seal_report
from palermo.devfed import EXAMPLES, DevFederation
from policies import Federation
from protocol.envelope import StaticSigners, open_envelope, verify_envelope
from schemas import PROTECTED_PERSONS, ActionCode, Report, parse_report
from tests.schemas._support import minimal

ORIGINATOR = "ITA-GDF"
RELEASED, NOT_RELEASED = "ESP-GC", "MLT-AFM"
ACTION_OBLIGATIONS = {
    "no-action-without-permission",
    "covert-use-only",
    "overt-action-as-specified",
}


def _report_data() -> dict[str, Any]:
    """A lorry crossing: a migrant who is also a witness travels on it and paid the driver."""
    return minimal(
        schema="iir/1.1",
        handling={
            "tlp": "AMBER",
            "rel_to": ["group:eu-frontex-community"],
            "protected_released_to": [RELEASED],
        },
        persons=[
            {"ref": "d1", "role": "driver", "names": ["Example Driver"], "nationality": "TUR",
             "legal_status": "suspected"},
            {"ref": "w1", "role": "smuggled-migrant", "roles": ["witness"],
             "names": ["Example Witness"], "nationality": "ERI"},
            {"ref": "m1", "role": "smuggled-migrant", "nationality": "SDN"},
        ],
        transport=[
            {"mode": "land-lorry", "ref": "t1", "vehicle_plate": "EX 000 AM",
             "passenger_refs": ["w1", "m1"], "driver_refs": ["d1"]},
        ],
        events=[{"kind": "border-crossing", "transport_ref": "t1", "person_refs": ["m1", "w1"]}],
        identifiers=[{"kind": "phone", "value": "+90 500 000 0000", "person_ref": "d1"}],
        finance=[
            {"kind": "fee", "ref": "f1", "payer_ref": "w1", "payee_ref": "d1",
             "amount": {"amount": "2500.00", "currency": "EUR"}, "method": "hawala"},
            {"kind": "bribe", "ref": "f2", "stage": "border", "method": "cash"},
        ],
    )  # fmt: skip


def _without_witness(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as it reads without the witness: their person, links and payment removed."""
    out = copy.deepcopy(data)
    out["persons"] = [p for p in out["persons"] if p["ref"] != "w1"]
    out["transport"][0]["passenger_refs"] = ["m1"]
    out["events"][0]["person_refs"] = ["m1"]
    out["finance"] = [f for f in out["finance"] if f["ref"] != "f1"]
    return out


def _seal(fed: DevFederation, report: Report, now: datetime) -> SealedReport:
    trust = fed.trust_store()
    signer = fed.agencies[ORIGINATOR].signing
    return seal_report(
        report, signer, [RELEASED, NOT_RELEASED], trust, fed.policy_store(trust), now
    )


def _open(fed: DevFederation, sealed: SealedReport, agency: str, now: datetime) -> Report:
    opened = open_envelope(
        sealed.data,
        [fed.agencies[agency].encryption],
        StaticSigners.of([fed.agencies[ORIGINATOR].signing.public]),
        now=now,
        withhold=sealed.decisions[agency].withheld_sections,
    )
    return open_report(opened)


def _federation(default_action: str | None) -> Federation:
    text = (EXAMPLES / "federation.toml").read_text()
    if default_action is not None:
        text = text.replace("[rules]\n", f'[rules]\ndefault_action = "{default_action}"\n', 1)
    federation = Federation.from_toml(text)
    assert default_action == federation.rules.default_action
    return federation


def test_a_withheld_witness_takes_their_links_and_payment_along() -> None:
    """MLT-AFM (not released the witness) reads everything but the witness, their seat on the
    lorry, their presence at the crossing and the fee they paid; ESP-GC reads the report."""
    now = datetime.now(UTC)
    fed = DevFederation.build(now)
    data = _report_data()
    report = parse_report(data)
    sealed = _seal(fed, report, now)
    assert [RELEASED, NOT_RELEASED] == sealed.recipients
    assert (PROTECTED_PERSONS,) == sealed.decisions[NOT_RELEASED].withheld_sections
    assert () == sealed.decisions[RELEASED].withheld_sections

    withheld = _open(fed, sealed, NOT_RELEASED, now)
    assert parse_report(_without_witness(data)) == withheld
    assert ["Example Driver"] == withheld.persons[0].names
    assert ["d1"] == [i.person_ref for i in withheld.identifiers]
    assert "w1" not in withheld.model_dump_json()
    assert "Example Witness" not in withheld.model_dump_json()

    assert report == _open(fed, sealed, RELEASED, now)


def test_a_federation_default_action_is_signed_into_header_and_body() -> None:
    """A 1.1 report without an action code, under [rules] default_action = "A2", is sealed with
    A2 in the signed header and in the body; recipients get the covert-use obligation."""
    now = datetime.now(UTC)
    fed = DevFederation.build(now, federation=_federation("A2"))
    report = parse_report(_report_data())
    assert report.handling.action is None
    sealed = _seal(fed, report, now)
    signers = StaticSigners.of([fed.agencies[ORIGINATOR].signing.public])
    signed = verify_envelope(sealed.data, signers, now=now)
    assert "A2" == signed.envelope.hdr["handling"]["action"]
    assert ActionCode.A2 is signed.header.handling.action
    opened = _open(fed, sealed, RELEASED, now)
    assert ActionCode.A2 is opened.handling.action
    assert report.model_copy(update={"handling": opened.handling}) == opened
    codes = {o.code for o in sealed.decisions[RELEASED].obligations}
    assert {"covert-use-only"} == codes & ACTION_OBLIGATIONS


def test_without_a_default_the_report_carries_no_action_code() -> None:
    """No originator code and no federation default: no action in the signed header, none in
    the report, and no action obligation on any recipient."""
    now = datetime.now(UTC)
    fed = DevFederation.build(now, federation=_federation(None))
    report = parse_report(_report_data())
    sealed = _seal(fed, report, now)
    signers = StaticSigners.of([fed.agencies[ORIGINATOR].signing.public])
    signed = verify_envelope(sealed.data, signers, now=now)
    # Absent or nil: either way no code (the canonical form is the header model's to decide).
    assert signed.envelope.hdr["handling"].get("action") is None
    assert signed.header.handling.action is None
    assert report == _open(fed, sealed, RELEASED, now)
    for decision in sealed.decisions.values():
        assert set() == {o.code for o in decision.obligations} & ACTION_OBLIGATIONS
