"""``palermo federation init/admit/revoke`` and ``palermo agency init`` end to end."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from palermo.cli import app
from protocol.settings import load_root_public
from protocol.trust import (
    ROOT,
    KeyBundle,
    MembershipCertificate,
    MembershipRequest,
    RevocationList,
    TrustStore,
    verify_document,
)
from schemas.errors import Revoked, TrustError

runner = CliRunner()
AGENCY = "MLT-AFM"
NAME = "Armed Forces of Malta"
PASS_ENV = "PLM_TRUST_TEST_PASS"


def _run(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def _text(result: Result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _ok(*args: str | Path) -> Result:
    result = _run(*args)
    assert 0 == result.exit_code, result.output
    return result


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def _init(fed: Path, *extra: str) -> None:
    _ok("federation", "init", "--dir", fed, *extra)


def _agency(agency_dir: Path, agency: str = AGENCY, *extra: str) -> Path:
    _ok("agency", "init", agency, "--name", NAME, "--country", "MLT", "--dir", agency_dir, *extra)
    return agency_dir / f"{agency}.request.json"


def _admit(fed: Path, request: Path, *extra: str) -> Result:
    return _run(
        "federation",
        "admit",
        request,
        "--dir",
        fed,
        "--group",
        "med-coastal",
        "--group",
        "bali-process",
        "--group",
        "med-coastal",
        "--accreditation",
        "secret",
        "--valid-days",
        "30",
        *extra,
    )


def _cert(fed: Path, agency: str = AGENCY) -> MembershipCertificate:
    signed = _read(fed / "members" / f"{agency}.cert.json")
    return verify_document(
        signed, MembershipCertificate, load_root_public(fed / "root.pub.json"), ROOT
    )


def test_init_admit_certificate_verifies_against_root(tmp_path: Path) -> None:
    """init → agency init → admit: the certificate verifies and carries what was asked for."""
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    before = datetime.now(UTC)
    _init(fed)
    request = _agency(agency_dir)
    result = _admit(fed, request)
    assert 0 == result.exit_code, result.output
    after = datetime.now(UTC)
    cert = _cert(fed)
    req = _read(request)["document"]
    assert (1, AGENCY, NAME, "MLT", req["signing_key"]) == (
        cert.serial,
        cert.agency,
        cert.name,
        cert.country,
        cert.signing_key,
    )
    assert ["bali-process", "med-coastal"] == cert.groups
    assert "secret" == cert.accreditation
    assert before - timedelta(minutes=5, milliseconds=1) <= cert.not_before <= after
    assert timedelta(days=30, minutes=5) == cert.not_after - cert.not_before
    assert "admitted" in _text(result)


def test_cli_documents_feed_a_trust_store(tmp_path: Path) -> None:
    """The admitted certificate, the bundle (--key-days) and revocations load into a store."""
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed)
    request = _agency(agency_dir, AGENCY, "--key-days", "45")
    assert 0 == _admit(fed, request).exit_code
    trust = TrustStore(load_root_public(fed / "root.pub.json"))
    trust.load(
        [
            _read(agency_dir / f"{AGENCY}.bundle.json"),
            _read(fed / "revocations.json"),
            _read(fed / "members" / f"{AGENCY}.cert.json"),
        ]
    )
    now = datetime.now(UTC)
    req = verify_document(_read(request), MembershipRequest, _cert(fed).public_signing_key, AGENCY)
    enc = trust.encryption_keys(AGENCY, now)
    assert [req.encryption_key] == [k.raw.hex() for k in enc]
    kid = _cert(fed).public_signing_key.kid
    assert req.signing_key == trust.signing_key(AGENCY, kid, now).public_bytes_raw().hex()
    bundle = KeyBundle.model_validate(_read(agency_dir / f"{AGENCY}.bundle.json")["document"])
    assert (1, 1) == (bundle.seq, len(bundle.keys))
    key = bundle.keys[0]
    assert timedelta(days=45, minutes=5) == key.not_after - key.not_before


def test_private_key_files_are_0600(tmp_path: Path) -> None:
    """The root key and the agency's keys are written owner-only."""
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed)
    _agency(agency_dir)
    keys = [fed / "root.sign.pem", *agency_dir.glob("*.pem")]
    assert 3 == len(keys)
    assert {0o600} == {stat.S_IMODE(k.stat().st_mode) for k in keys}


TAMPER = {
    "name": ("Someone Else", "signature_invalid", "altered"),
    "country": ("LBY", "signature_invalid", "altered"),
    "encryption_key": ("11" * 32, "signature_invalid", "altered"),
    "signing_key": ("22" * 32, "unknown_issuer", "only MLT-AFM key"),
}


@pytest.mark.parametrize("field", sorted(TAMPER))
def test_admit_tampered_request_fails(tmp_path: Path, field: str) -> None:
    """A request edited after signing is refused with exit 2 and a message; no cert is written."""
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed)
    request = _agency(agency_dir)
    value, code, message = TAMPER[field]
    signed = _read(request)
    signed["document"][field] = value
    request.write_text(json.dumps(signed, indent=2))
    result = _admit(fed, request)
    assert 2 == result.exit_code, result.output
    assert f"[{code}]" in _text(result)
    assert message in _text(result)
    assert [] == list((fed / "members").iterdir())


def test_admit_something_that_is_not_a_request_fails(tmp_path: Path) -> None:
    """A JSON file that is not a membership request is refused with exit 2."""
    fed = tmp_path / "fed"
    _init(fed)
    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"document": ["not", "a", "request"]}))
    result = _admit(fed, bogus)
    assert 2 == result.exit_code
    assert "is not a membership request" in _text(result)


def test_admit_again_increments_the_serial(tmp_path: Path) -> None:
    """Admitting the same agency again issues serial 2, which a store takes as a renewal."""
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed)
    request = _agency(agency_dir)
    assert 0 == _admit(fed, request).exit_code
    first = _read(fed / "members" / f"{AGENCY}.cert.json")
    assert 0 == _admit(fed, request).exit_code
    assert 2 == _cert(fed).serial
    trust = TrustStore(load_root_public(fed / "root.pub.json"))
    trust.add_certificate(_read(fed / "members" / f"{AGENCY}.cert.json"))
    with pytest.raises(TrustError, match="rollback"):
        trust.add_certificate(first)


def test_revoke_increments_seq_and_the_list_verifies(tmp_path: Path) -> None:
    """Each revoke adds an entry, increments seq, and the list verifies against the root."""
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed)
    request = _agency(agency_dir)
    assert 0 == _admit(fed, request).exit_code
    root = load_root_public(fed / "root.pub.json")
    initial = verify_document(_read(fed / "revocations.json"), RevocationList, root, ROOT)
    assert (1, []) == (initial.seq, initial.entries)
    enc_kid = next(agency_dir.glob(f"{AGENCY}.enc.*.pem")).name.split(".")[2]
    _ok("federation", "revoke", AGENCY, "--reason", "lost laptop", "--kid", enc_kid, "--dir", fed)
    one = verify_document(_read(fed / "revocations.json"), RevocationList, root, ROOT)
    assert (2, [(AGENCY, enc_kid, "lost laptop")]) == (
        one.seq,
        [(e.agency, e.kid, e.reason) for e in one.entries],
    )
    result = _ok("federation", "revoke", AGENCY, "--reason", "key compromised", "--dir", fed)
    assert "seq 3" in _text(result)
    two = verify_document(_read(fed / "revocations.json"), RevocationList, root, ROOT)
    assert 3 == two.seq
    assert [(AGENCY, enc_kid), (AGENCY, None)] == [(e.agency, e.kid) for e in two.entries]
    trust = TrustStore(root)
    trust.load([_read(fed / "members" / f"{AGENCY}.cert.json"), _read(fed / "revocations.json")])
    with pytest.raises(Revoked, match="key compromised"):
        trust.certificate(AGENCY, datetime.now(UTC) + timedelta(seconds=1))


def test_revoke_raises_min_revocation_seq_in_the_broker_configs(tmp_path: Path) -> None:
    """--broker-config raises min_revocation_seq to the new seq (a line added where there was
    none), keeps the rest of the file, and never lowers a higher minimum."""
    fed = tmp_path / "fed"
    _init(fed)
    rendered, handwritten = tmp_path / "broker-1.toml", tmp_path / "broker-2.toml"
    rendered.write_text('broker_id = "BROKER-1"\nmin_revocation_seq = 1\ndev = false\n')
    handwritten.write_text('# mine\nbroker_id = "BROKER-2"\n')
    result = _ok("federation", "revoke", "--renew", "--dir", fed,
                 "--broker-config", rendered, "--broker-config", handwritten)  # fmt: skip
    assert "min_revocation_seq = 2" in _text(result)
    assert 'broker_id = "BROKER-1"\nmin_revocation_seq = 2\ndev = false\n' == rendered.read_text()
    assert '# mine\nbroker_id = "BROKER-2"\nmin_revocation_seq = 2\n' == handwritten.read_text()
    rendered.write_text("min_revocation_seq = 9\n")
    _ok("federation", "revoke", "--renew", "--dir", fed, "--broker-config", rendered)
    assert "min_revocation_seq = 9\n" == rendered.read_text()


def test_revoke_without_broker_configs_says_which_minimum_to_set(tmp_path: Path) -> None:
    """Without --broker-config, revoke tells the operator the minimum every broker must carry."""
    fed = tmp_path / "fed"
    _init(fed)
    result = _ok("federation", "revoke", "--renew", "--dir", fed)
    assert "set min_revocation_seq = 2 in every broker.toml" in _text(result)


def test_revoke_refuses_a_tampered_revocation_list(tmp_path: Path) -> None:
    """revoke verifies the current list first: an edited list is refused with exit 2."""
    fed = tmp_path / "fed"
    _init(fed)
    signed = _read(fed / "revocations.json")
    signed["document"]["seq"] = 41
    (fed / "revocations.json").write_text(json.dumps(signed))
    result = _run("federation", "revoke", AGENCY, "--reason", "x", "--dir", fed)
    assert 2 == result.exit_code
    assert "[signature_invalid]" in _text(result)


def test_init_twice_fails_clearly(tmp_path: Path) -> None:
    """A second init in the same directory refuses to overwrite the root key (exit 2)."""
    fed = tmp_path / "fed"
    _init(fed)
    pinned = (fed / "root.pub.json").read_text()
    key = (fed / "root.sign.pem").read_bytes()
    revocations = (fed / "revocations.json").read_text()
    result = _run("federation", "init", "--dir", fed)
    assert 2 == result.exit_code
    assert "already exists" in _text(result)
    assert (pinned, key, revocations) == (
        (fed / "root.pub.json").read_text(),
        (fed / "root.sign.pem").read_bytes(),
        (fed / "revocations.json").read_text(),
    )


def test_passphrase_env_for_init_admit_and_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passphrase-protected root key works for init, admit and revoke when the env var is set."""
    monkeypatch.setenv(PASS_ENV, "correct horse battery staple")
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed, "--passphrase-env", PASS_ENV)
    assert b"palermo-encrypted-key/1" in (fed / "root.sign.pem").read_bytes()
    request = _agency(agency_dir, AGENCY, "--passphrase-env", PASS_ENV)
    assert b"palermo-encrypted-key/1" in (agency_dir / f"{AGENCY}.sign.pem").read_bytes()
    result = _admit(fed, request, "--passphrase-env", PASS_ENV)
    assert 0 == result.exit_code, result.output
    assert AGENCY == _cert(fed).agency
    _ok("federation", "revoke", AGENCY, "--reason", "r", "--dir", fed, "--passphrase-env", PASS_ENV)


def test_passphrase_protected_root_without_passphrase_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admitting with a protected root key but no (or a wrong) passphrase is exit 2."""
    monkeypatch.setenv(PASS_ENV, "correct horse battery staple")
    fed, agency_dir = tmp_path / "fed", tmp_path / "agency"
    _init(fed, "--passphrase-env", PASS_ENV)
    request = _agency(agency_dir)
    missing = _admit(fed, request)
    assert 2 == missing.exit_code
    assert "passphrase-protected" in _text(missing)
    monkeypatch.setenv(PASS_ENV, "wrong")
    wrong = _admit(fed, request, "--passphrase-env", PASS_ENV)
    assert 2 == wrong.exit_code
    assert "wrong passphrase" in _text(wrong)
    assert [] == list((fed / "members").iterdir())


def test_unset_passphrase_env_fails_before_writing_a_key(tmp_path: Path) -> None:
    """init with --passphrase-env naming an unset variable fails (exit 2) without a key file."""
    fed = tmp_path / "fed"
    result = _run("federation", "init", "--dir", fed, "--passphrase-env", "PLM_TRUST_UNSET_VAR")
    assert 2 == result.exit_code
    assert "empty or unset" in _text(result)
    assert not (fed / "root.sign.pem").exists()


def test_agency_init_refuses_a_bad_country(tmp_path: Path) -> None:
    """A country that is not ISO 3166-1 alpha-3 is refused before any file is written."""
    agency_dir = tmp_path / "agency"
    result = _run("agency", "init", AGENCY, "--name", NAME, "--country", "XX", "--dir", agency_dir)
    assert 2 == result.exit_code
    assert "country" in _text(result)
    assert not agency_dir.exists()
