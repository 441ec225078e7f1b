"""``palermo policy sign / verify / check`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from palermo.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
FEDERATION = ROOT / "policies" / "examples" / "federation.toml"
ITA_POLICY = ROOT / "policies" / "examples" / "ITA-GDF.toml"
REPORT = ROOT / "schemas" / "examples" / "07-persons-migrants-and-fees.json"


def test_check_allows_with_obligations_as_json() -> None:
    """An allowed recipient gets decision, reasons and obligations in one JSON object."""
    result = runner.invoke(
        app,
        [
            "policy",
            "check",
            str(REPORT),
            "--to",
            "ESP-GC",
            "--federation",
            str(FEDERATION),
            "--json",
        ],
    )
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert "allow" == data["decision"]
    assert {"crime-prevention-only", "no-judicial-disclosure", "covert-use-only"} <= {
        o["code"] for o in data["obligations"]
    }


def test_check_denial_names_what_to_fix() -> None:
    """A denied recipient exits 1 and the reason says how to fix it."""
    result = runner.invoke(
        app,
        ["policy", "check", str(REPORT), "--to", "LBY-DCIM", "--federation", str(FEDERATION),
         "--agency-policy", str(ITA_POLICY), "--json"],
    )  # fmt: skip
    assert 1 == result.exit_code
    data = json.loads(result.stdout)
    assert "deny" == data["decision"]
    assert "add it or use group:med-coastal" in data["reasons"][0]["message"]


def test_sign_then_verify_and_tamper(tmp_path: Path) -> None:
    """A signed federation policy verifies; an edited one is refused with exit 2."""
    fed = tmp_path / "fed"
    assert 0 == runner.invoke(app, ["federation", "init", "--dir", str(fed)]).exit_code
    signed = tmp_path / "federation.signed.json"
    result = runner.invoke(
        app,
        [
            "policy",
            "sign",
            str(FEDERATION),
            "--key",
            str(fed / "root.sign.pem"),
            "--out",
            str(signed),
        ],
    )
    assert 0 == result.exit_code, result.output
    ok = runner.invoke(app, ["policy", "verify", str(signed), "--root", str(fed / "root.pub.json")])
    assert 0 == ok.exit_code, ok.output
    doc = json.loads(signed.read_text())
    doc["document"]["members"][0]["accreditation"] = "secret"
    doc["document"]["members"][1]["accreditation"] = "secret"
    signed.write_text(json.dumps(doc))
    bad = runner.invoke(
        app, ["policy", "verify", str(signed), "--root", str(fed / "root.pub.json")]
    )
    assert 2 == bad.exit_code
    assert "altered" in bad.output


def test_check_with_signed_federation_needs_root(tmp_path: Path) -> None:
    """A signed policy is never used unverified: without --root the check refuses."""
    fed = tmp_path / "fed"
    runner.invoke(app, ["federation", "init", "--dir", str(fed)])
    signed = tmp_path / "federation.signed.json"
    runner.invoke(
        app,
        [
            "policy",
            "sign",
            str(FEDERATION),
            "--key",
            str(fed / "root.sign.pem"),
            "--out",
            str(signed),
        ],
    )
    result = runner.invoke(
        app, ["policy", "check", str(REPORT), "--to", "ESP-GC", "--federation", str(signed)]
    )
    assert 2 == result.exit_code
    assert "--root" in result.output
    ok = runner.invoke(
        app,
        ["policy", "check", str(REPORT), "--to", "ESP-GC", "--federation", str(signed),
         "--root", str(fed / "root.pub.json")],
    )  # fmt: skip
    assert 0 == ok.exit_code, ok.output


def test_check_invalid_report_names_the_field(tmp_path: Path) -> None:
    """A report with a bad country code is refused and the field is named."""
    data = json.loads(REPORT.read_text())
    data["persons"][0]["nationality"] = "XXX"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = runner.invoke(
        app, ["policy", "check", str(bad), "--to", "ESP-GC", "--federation", str(FEDERATION)]
    )
    assert 2 == result.exit_code
    assert "persons.0.nationality" in result.output


def test_check_shows_an_exclusion_and_all_members(tmp_path: Path) -> None:
    """deny_to country:LBY: policy check --to all-members lists every member, and LBY-DCIM is
    denied by the originator although group:med-coastal (its group) is in rel_to."""
    data = json.loads((ROOT / "schemas" / "examples" / "01-routes-central-med-departure.json")
                      .read_text())  # fmt: skip
    data["handling"]["deny_to"] = ["country:LBY"]
    report = tmp_path / "excluding.json"
    report.write_text(json.dumps(data))
    result = runner.invoke(
        app,
        ["policy", "check", str(report), "--to", "all-members", "--federation", str(FEDERATION),
         "--json"],
    )  # fmt: skip
    assert 1 == result.exit_code, result.output
    decisions = {d["recipient"]: d for d in json.loads(result.stdout)}
    expected = {m for m in _members() if m != "ITA-GDF"}
    assert expected == set(decisions)
    lby = decisions["LBY-DCIM"]
    assert ["denied-by-originator"] == [r["code"] for r in lby["reasons"]]
    assert "deny_to: country:LBY" in lby["reasons"][0]["message"]
    assert "allow" == decisions["MLT-AFM"]["decision"]
    assert ["country:LBY"] == [
        o["value"] for o in decisions["MLT-AFM"]["obligations"] if o["code"] == "never-to"
    ]
    text = runner.invoke(
        app, ["policy", "check", str(report), "--to", "LBY-DCIM", "--federation", str(FEDERATION)]
    )
    assert "reason denied-by-originator" in text.stdout


def _members() -> list[str]:
    from policies import Federation

    return [m.id for m in Federation.from_toml(FEDERATION.read_text()).members]
