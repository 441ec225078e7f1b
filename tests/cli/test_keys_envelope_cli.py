"""``palermo keys generate`` and ``palermo envelope inspect`` from the command line."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from palermo.cli import app
from protocol.envelope import seal
from protocol.keys import EncryptionKey, KeyCard, SigningKey, load_private_key
from schemas import EnvelopeHeader, Handling, new_uuid7

runner = CliRunner()


def test_keys_generate_writes_private_keys_0600(tmp_path: Path) -> None:
    """Key generation writes two 0600 private keys and a public card that matches them."""
    result = runner.invoke(app, ["keys", "generate", "ITA-GDF", "--out", str(tmp_path)])
    assert 0 == result.exit_code, result.output
    for name in ("ITA-GDF.sign.pem", "ITA-GDF.enc.pem"):
        assert 0o600 == stat.S_IMODE((tmp_path / name).stat().st_mode)
    card = KeyCard.from_json((tmp_path / "ITA-GDF.pub.json").read_text())
    signing = load_private_key(tmp_path / "ITA-GDF.sign.pem")
    assert card.signing.raw == signing.public_key().public_bytes_raw()


def test_keys_generate_with_passphrase_env(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A passphrase from the environment encrypts the key; loading needs it."""
    monkeypatch.setenv("PLM_TEST_PASS", "correct horse battery staple")
    result = runner.invoke(
        app,
        [
            "keys",
            "generate",
            "MLT-AFM",
            "--out",
            str(tmp_path),
            "--passphrase-env",
            "PLM_TEST_PASS",
        ],
    )
    assert 0 == result.exit_code, result.output
    key = load_private_key(tmp_path / "MLT-AFM.enc.pem", b"correct horse battery staple")
    assert key is not None


def test_keys_generate_refuses_bad_agency_and_empty_passphrase(tmp_path: Path) -> None:
    """A malformed agency id or an unset passphrase variable is a clear error, exit 2."""
    bad = runner.invoke(app, ["keys", "generate", "ita", "--out", str(tmp_path)])
    assert 2 == bad.exit_code
    assert "is not an agency id" in bad.output
    unset = runner.invoke(
        app,
        ["keys", "generate", "ITA-GDF", "--out", str(tmp_path), "--passphrase-env", "PLM_UNSET_X"],
    )
    assert 2 == unset.exit_code
    assert "PLM_UNSET_X" in unset.output


def _envelope(tmp_path: Path) -> tuple[Path, Path]:
    signer, reader = SigningKey.generate("ITA-GDF"), EncryptionKey.generate("MLT-AFM")
    header = EnvelopeHeader(
        id=new_uuid7(),
        originator="ITA-GDF",
        kid=signer.kid,
        created=datetime.now(UTC),
        kind="alert",
        route="central-med",
        category="routes",
        handling=Handling(tlp="RED", rel_to=["MLT-AFM"]),
        recipients=["MLT-AFM"],
    )
    path = tmp_path / "alert.plm"
    path.write_bytes(seal(header, b"secret body", signer, [reader.public]))
    card = tmp_path / "ITA-GDF.pub.json"
    card.write_text(KeyCard(signer.public, EncryptionKey.generate("ITA-GDF").public).to_json())
    return path, card


def test_envelope_inspect_prints_verified_header(tmp_path: Path) -> None:
    """Inspect verifies the signature and prints the header, never the body."""
    path, card = _envelope(tmp_path)
    result = runner.invoke(app, ["envelope", "inspect", str(path), "--keys", str(card), "--json"])
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert (True, "RED", ["MLT-AFM"]) == (
        data["verified"],
        data["header"]["handling"]["tlp"],
        data["header"]["recipients"],
    )
    assert "secret body" not in result.stdout


def test_envelope_inspect_refuses_unknown_signer(tmp_path: Path) -> None:
    """Without the originator's key card the envelope is refused with unknown_signer."""
    path, _ = _envelope(tmp_path)
    other = tmp_path / "other.pub.json"
    other.write_text(
        KeyCard(
            SigningKey.generate("ITA-GDF").public, EncryptionKey.generate("ITA-GDF").public
        ).to_json()
    )
    result = runner.invoke(app, ["envelope", "inspect", str(path), "--keys", str(other), "--json"])
    assert 2 == result.exit_code
    assert "unknown_signer" == json.loads(result.stdout)["error"]["code"]


def test_envelope_inspect_missing_file(tmp_path: Path) -> None:
    """A missing file is reported as such."""
    _, card = _envelope(tmp_path)
    result = runner.invoke(
        app, ["envelope", "inspect", str(tmp_path / "nope"), "--keys", str(card)]
    )
    assert 2 == result.exit_code
    assert "cannot read" in result.output
