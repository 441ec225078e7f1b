"""Passphrase key files: Argon2id container (not PKCS#8 PBKDF2), strict parsing, migration."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from structlog.testing import capture_logs
from typer.testing import CliRunner

import protocol.keys as keys
from palermo.cli import app
from protocol.keys import load_private_key, save_private_key
from schemas.errors import KeyFileError
from tests.envelope._factories import encryption_key, signing_key

PASS = b"correct horse battery staple"
# New API through the module (keys.X), so that on the base commit these tests fail on their
# assertions or on the missing attribute inside the test, not at import.


def _raw(key: Any) -> bytes:
    raw: bytes = key.private_bytes_raw()
    return raw


def _container(path: Path) -> dict[str, Any]:
    """The parsed key file if it is the JSON container, else {} (a PEM file)."""
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes())
    except ValueError:
        return {}
    return doc


def _legacy(path: Path, key: Ed25519PrivateKey | X25519PrivateKey) -> Path:
    """A key file as d68e6da wrote it: PKCS#8 PEM under BestAvailableEncryption (PBKDF2)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASS),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


def _fast() -> Any:
    """Argon2id at its minimum cost: explicit, for the tests that do not measure the default."""
    return keys.KdfParams(iterations=1, lanes=1, memory_kib=8)


def test_passphrase_file_uses_argon2id_at_the_default_cost(tmp_path: Path) -> None:
    """A key file written with a passphrase is the Argon2id container (t=3, p=4, 64 MiB)."""
    path = tmp_path / "k"
    save_private_key(path, signing_key("ITA-GDF").private, PASS)
    kdf = dict(_container(path).get("kdf", {}))
    salt = kdf.pop("salt", "")
    expected = {"name": "argon2id", "iterations": 3, "lanes": 4, "memory_kib": 65536}
    assert expected == kdf
    assert 16 == len(base64.b64decode(salt))
    assert not path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_legacy_pbkdf2_file_loads_and_warns(tmp_path: Path) -> None:
    """An older PKCS#8 (PBKDF2) passphrase file still loads, with a warning naming the fix."""
    key = encryption_key("MLT-AFM").private
    path = _legacy(tmp_path / "old.pem", key)
    with capture_logs() as logs:
        loaded = load_private_key(path, PASS)
    assert _raw(key) == _raw(loaded)
    warnings = [e for e in logs if e["event"] == "key_file_weak_kdf"]
    assert 1 == len(warnings)
    assert f"palermo keys migrate {path} --passphrase-env VAR" == warnings[0]["fix"]


def test_cli_migrates_a_legacy_file_in_place(tmp_path: Path, monkeypatch: Any) -> None:
    """`palermo keys migrate` rewrites a PBKDF2 file as Argon2id: same key, 0600, no warning."""
    key = signing_key("ITA-GDF").private
    path = _legacy(tmp_path / "ITA-GDF.sign.pem", key)
    monkeypatch.setenv("PLM_TEST_PASS", PASS.decode())
    result = CliRunner().invoke(
        app, ["keys", "migrate", str(path), "--passphrase-env", "PLM_TEST_PASS"]
    )
    assert 0 == result.exit_code, result.output
    assert f"{path}: migrated to Argon2id" in result.output
    assert "argon2id" == _container(path).get("kdf", {}).get("name")
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    with capture_logs() as logs:
        assert _raw(key) == _raw(load_private_key(path, PASS))
    assert [] == logs
    assert [path] == list(tmp_path.iterdir())  # no temporary file left behind


def test_migrate_leaves_a_current_file_alone(tmp_path: Path) -> None:
    """Migrating a file already in the container format changes nothing and says so."""
    path = tmp_path / "k"
    save_private_key(path, signing_key("ITA-GDF").private, PASS, kdf=_fast())
    before = path.read_bytes()
    assert False is keys.migrate_private_key(path, PASS)
    assert before == path.read_bytes()


def test_migrate_refuses_wrong_passphrase_and_plain_files(tmp_path: Path) -> None:
    """A wrong passphrase or an unencrypted key is refused; the file is untouched."""
    legacy = _legacy(tmp_path / "old", signing_key("ITA-GDF").private)
    before = legacy.read_bytes()
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        keys.migrate_private_key(legacy, b"wrong")
    assert before == legacy.read_bytes()
    plain = tmp_path / "plain"
    save_private_key(plain, signing_key("ITA-GDF").private)
    with pytest.raises(KeyFileError, match="nothing to migrate"):
        keys.migrate_private_key(plain, PASS)


def test_explicit_low_cost_round_trip_and_recorded_cost(tmp_path: Path) -> None:
    """The cost is a parameter of save, recorded in the file and used again by load."""
    key = encryption_key("MLT-AFM").private
    path = tmp_path / "k"
    save_private_key(path, key, PASS, kdf=_fast())
    kdf = _container(path)["kdf"]
    assert (1, 1, 8) == (kdf["iterations"], kdf["lanes"], kdf["memory_kib"])
    assert _raw(key) == _raw(load_private_key(path, PASS))


def _edit(path: Path, change: Any) -> None:
    doc = _container(path)
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d["kdf"].update(iterations=2), id="cost"),
        pytest.param(
            lambda d: d["kdf"].update(salt=base64.b64encode(b"s" * 16).decode()), id="salt"
        ),
    ],
)
def test_edited_header_does_not_open(tmp_path: Path, change: Any) -> None:
    """The header (KDF, cost, salt) is authenticated: an edited file does not open."""
    path = tmp_path / "k"
    save_private_key(path, signing_key("ITA-GDF").private, PASS, kdf=_fast())
    _edit(path, change)
    with pytest.raises(KeyFileError, match="wrong passphrase, or a modified file"):
        load_private_key(path, PASS)


def test_excessive_cost_is_refused_before_deriving(tmp_path: Path) -> None:
    """A file asking for more memory than the bound is refused, not derived (no 4 GiB malloc)."""
    path = tmp_path / "k"
    save_private_key(path, signing_key("ITA-GDF").private, PASS, kdf=_fast())
    _edit(path, lambda d: d["kdf"].update(memory_kib=4 * 1024 * 1024))
    with pytest.raises(KeyFileError, match="outside the accepted range"):
        load_private_key(path, PASS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="palermo-encrypted-key/2"), "upgrade Palermo"),
        (lambda d: d["kdf"].update(name="pbkdf2"), "unexpected KDF"),
        (lambda d: d.update(extra=1), "unexpected fields"),
        (lambda d: d["kdf"].update(lanes="4"), "not integers"),
        (lambda d: d.update(nonce=base64.b64encode(b"n" * 8).decode()), "wrong length"),
    ],
    ids=["version", "kdf", "field", "type", "nonce"],
)
def test_container_parsing_is_strict(tmp_path: Path, change: Any, message: str) -> None:
    """Unknown version, KDF or fields, and wrong types or lengths are typed errors."""
    path = tmp_path / "k"
    save_private_key(path, signing_key("ITA-GDF").private, PASS, kdf=_fast())
    _edit(path, change)
    with pytest.raises(KeyFileError, match=message):
        load_private_key(path, PASS)


def test_container_needs_the_passphrase(tmp_path: Path) -> None:
    """A container loaded without a passphrase says to give it."""
    path = tmp_path / "k"
    save_private_key(path, signing_key("ITA-GDF").private, PASS, kdf=_fast())
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert f"cannot load {path}: it is passphrase-protected: give the passphrase" == (
        err.value.reason
    )
