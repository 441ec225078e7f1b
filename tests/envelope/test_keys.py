"""protocol.keys: key files (0600, passphrase), typed load failures, key ids, reprs, key cards."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol import crypto
from protocol.keys import (
    MAX_KEY_FILE_BYTES,
    EncryptionKey,
    KeyCard,
    PublicEncryptionKey,
    PublicSigningKey,
    SigningKey,
    load_private_key,
    save_private_key,
)
from schemas.errors import KeyFileError, PalermoError
from tests.envelope._factories import encryption_key, signing_key

PASS = b"correct horse battery staple"


def _raw_private(key: Any) -> bytes:
    raw: bytes = key.private_bytes_raw()
    return raw


KEYS: dict[str, Ed25519PrivateKey | X25519PrivateKey] = {
    "ed25519": signing_key("ITA-GDF").private,
    "x25519": encryption_key("MLT-AFM").private,
}


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


# --- save / load round trip -------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("passphrase", [None, PASS], ids=["plain", "passphrase"])
def test_save_load_round_trip(tmp_path: Path, kind: str, passphrase: bytes | None) -> None:
    """Both key types survive save/load, with and without a passphrase."""
    key = KEYS[kind]
    path = tmp_path / "agency.key"
    save_private_key(path, key, passphrase)
    loaded = load_private_key(path, passphrase)
    assert type(key) is type(loaded)
    assert _raw_private(key) == _raw_private(loaded)


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("passphrase", [None, PASS], ids=["plain", "passphrase"])
def test_saved_file_has_mode_0600(tmp_path: Path, kind: str, passphrase: bytes | None) -> None:
    """The key file is created with mode 0600 (owner read/write only)."""
    path = tmp_path / "agency.key"
    save_private_key(path, KEYS[kind], passphrase)
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)


def test_saved_file_mode_ignores_permissive_umask(tmp_path: Path) -> None:
    """Even with umask 000 the file is never readable by group or others."""
    old = os.umask(0)
    try:
        save_private_key(tmp_path / "k", KEYS["ed25519"])
    finally:
        os.umask(old)
    assert 0o600 == stat.S_IMODE((tmp_path / "k").stat().st_mode)


def test_saved_file_is_pkcs8_pem(tmp_path: Path) -> None:
    """Unencrypted keys are standard PKCS#8 PEM; encrypted ones the Argon2id JSON container."""
    save_private_key(tmp_path / "plain", KEYS["ed25519"])
    save_private_key(tmp_path / "locked", KEYS["ed25519"], PASS)
    assert (tmp_path / "plain").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    locked = json.loads((tmp_path / "locked").read_bytes())
    assert "palermo-encrypted-key/1" == locked["format"]


def test_passphrase_file_holds_no_plain_key(tmp_path: Path) -> None:
    """The passphrase-protected file cannot be loaded as a PEM (it is not one)."""
    save_private_key(tmp_path / "k", KEYS["x25519"], PASS)
    with pytest.raises(ValueError, match="Unable to load PEM"):
        serialization.load_pem_private_key((tmp_path / "k").read_bytes(), password=None)


# --- save failures ----------------------------------------------------------------------------


def test_save_refuses_existing_file(tmp_path: Path) -> None:
    """An existing file is never overwritten: KeyFileError, content unchanged."""
    path = _write(tmp_path / "k", b"precious")
    with pytest.raises(KeyFileError) as err:
        save_private_key(path, KEYS["ed25519"])
    assert "already exists" in err.value.reason
    assert str(path) in err.value.reason
    assert isinstance(err.value.__cause__, FileExistsError)
    assert b"precious" == path.read_bytes()


def test_save_refuses_dangling_symlink(tmp_path: Path) -> None:
    """A symlink at the path (even dangling) is not followed: KeyFileError."""
    link = tmp_path / "k"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(KeyFileError):
        save_private_key(link, KEYS["ed25519"])
    assert not (tmp_path / "elsewhere").exists()


def test_save_into_missing_directory(tmp_path: Path) -> None:
    """A path whose directory does not exist gives KeyFileError naming the path."""
    path = tmp_path / "missing" / "k"
    with pytest.raises(KeyFileError) as err:
        save_private_key(path, KEYS["ed25519"])
    assert "cannot create key file" in err.value.reason
    assert str(path) in err.value.reason


# --- load failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606, 0o610, 0o601, 0o777])
def test_load_refuses_group_or_other_access(tmp_path: Path, mode: int) -> None:
    """A key file with any group/other permission bit: KeyFileError telling to chmod 600."""
    path = tmp_path / "k"
    save_private_key(path, KEYS["ed25519"])
    path.chmod(mode)
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert "chmod 600" in err.value.reason
    assert f"{mode:04o}" in err.value.reason


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700])
def test_load_accepts_owner_only_modes(tmp_path: Path, mode: int) -> None:
    """Owner-only modes (read-only, read-write, even with x) are accepted."""
    path = tmp_path / "k"
    save_private_key(path, KEYS["ed25519"])
    path.chmod(mode)
    assert _raw_private(KEYS["ed25519"]) == _raw_private(load_private_key(path))


def test_load_0644_reason(tmp_path: Path) -> None:
    """The 0644 case names the file, its mode and the fix."""
    path = tmp_path / "k"
    save_private_key(path, KEYS["x25519"])
    path.chmod(0o644)
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert (
        f"key file {path} is accessible by group or others (mode 0644); run: chmod 600 {path}"
        == (err.value.reason)
    )


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_load_wrong_passphrase(tmp_path: Path, kind: str) -> None:
    """A wrong passphrase gives KeyFileError saying so."""
    path = tmp_path / "k"
    save_private_key(path, KEYS[kind], PASS)
    with pytest.raises(KeyFileError) as err:
        load_private_key(path, b"wrong")
    assert "wrong passphrase" in err.value.reason


def test_load_missing_passphrase(tmp_path: Path) -> None:
    """An encrypted key loaded without a passphrase: 'give the passphrase'."""
    path = tmp_path / "k"
    save_private_key(path, KEYS["ed25519"], PASS)
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert "passphrase-protected: give the passphrase" in err.value.reason


def test_load_unexpected_passphrase(tmp_path: Path) -> None:
    """An unencrypted key loaded with a passphrase: 'give no passphrase'."""
    path = tmp_path / "k"
    save_private_key(path, KEYS["ed25519"])
    with pytest.raises(KeyFileError) as err:
        load_private_key(path, PASS)
    assert "not passphrase-protected: give no passphrase" in err.value.reason


@pytest.mark.parametrize(
    "data",
    [b"", b"not a pem at all", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
    ids=["empty", "text", "bad-base64-body"],
)
def test_load_not_a_pem(tmp_path: Path, data: bytes) -> None:
    """Garbage in a 0600 file gives KeyFileError ('not a PEM private key')."""
    path = _write(tmp_path / "k", data)
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert "not a PEM private key" in err.value.reason


def test_load_oversized_file(tmp_path: Path) -> None:
    """A file over the size limit is refused before it is read."""
    path = _write(tmp_path / "k", b"x" * (MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert f"{MAX_KEY_FILE_BYTES + 1} bytes" in err.value.reason


def test_load_file_at_size_limit_is_parsed(tmp_path: Path) -> None:
    """Exactly the size limit is read (and then refused as not a PEM)."""
    path = _write(tmp_path / "k", b"x" * MAX_KEY_FILE_BYTES)
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert "not a PEM" in err.value.reason


def test_load_nonexistent_file(tmp_path: Path) -> None:
    """A missing file gives KeyFileError saying it does not exist."""
    path = tmp_path / "nope.key"
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert f"key file {path} does not exist" == err.value.reason


@pytest.mark.parametrize("where", ["directory", "under-a-file"])
def test_load_unreadable_path_is_key_file_error(tmp_path: Path, where: str) -> None:
    """A path that exists but cannot be read as a file is a KeyFileError, not an OSError."""
    if where == "directory":
        path = tmp_path / "keys"
        path.mkdir()
        path.chmod(0o700)  # owner-only: passes the permission check, then fails to read
    else:
        path = _write(tmp_path / "file", b"x") / "k"
    with pytest.raises(KeyFileError):
        load_private_key(path)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="ecdsa-p256"),
        pytest.param(Ed448PrivateKey.generate, id="ed448"),
    ],
)
def test_load_other_key_type(tmp_path: Path, other: Callable[[], Any]) -> None:
    """A valid PEM of another algorithm is refused: Palermo uses Ed25519 and X25519."""
    pem = other().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = _write(tmp_path / "k", pem)
    with pytest.raises(KeyFileError) as err:
        load_private_key(path)
    assert "Palermo uses Ed25519 and X25519" in err.value.reason


def test_key_file_error_is_a_palermo_error() -> None:
    """KeyFileError sits under the one root and carries its code."""
    assert issubclass(KeyFileError, PalermoError)
    assert "key_file_error" == KeyFileError("x").to_dict()["code"]


# --- key objects ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [SigningKey.generate, EncryptionKey.generate])
def test_repr_shows_no_key_material(make: Callable[[str], SigningKey | EncryptionKey]) -> None:
    """repr/str of a private key show the agency and kid, never key bytes."""
    key = make("ITA-GDF")
    raw = _raw_private(key.private)
    text = repr(key) + str(key)
    assert "ITA-GDF" in text
    assert key.kid in text
    for encoding in (raw.hex(), raw.hex().upper(), repr(raw)[2:-1], key.public.raw.hex()):
        assert encoding not in text
    assert "private" not in text


def test_public_key_repr_hides_key_object() -> None:
    """Public key reprs show agency and kid only."""
    pub = encryption_key("MLT-AFM").public
    assert f"PublicEncryptionKey(agency='MLT-AFM', kid='{pub.kid}')" == repr(pub)


@pytest.mark.parametrize("make", [SigningKey.generate, EncryptionKey.generate])
def test_kid_matches_public_key(make: Callable[[str], SigningKey | EncryptionKey]) -> None:
    """A private key's kid is key_id of its raw public key, 16 hex chars, and stable."""
    key = make("ITA-GDF")
    assert crypto.key_id(key.public.raw) == key.kid
    assert re.fullmatch(r"[0-9a-f]{16}", key.kid)
    assert key.kid == key.public.kid
    assert key.agency == key.public.agency


def test_kid_is_stable_across_save_and_load(tmp_path: Path) -> None:
    """Saving and loading a key does not change its kid."""
    key = signing_key("ITA-GDF")
    save_private_key(tmp_path / "k", key.private)
    loaded = load_private_key(tmp_path / "k")
    assert isinstance(loaded, Ed25519PrivateKey)
    assert key.kid == SigningKey("ITA-GDF", loaded).kid


def test_public_from_raw_round_trip() -> None:
    """from_raw rebuilds public keys with the same kid."""
    s, e = signing_key("ITA-GDF"), encryption_key("ITA-GDF")
    assert s.kid == PublicSigningKey.from_raw("ITA-GDF", s.public.raw).kid
    assert e.kid == PublicEncryptionKey.from_raw("ITA-GDF", e.public.raw).kid


def test_private_keys_compare_by_agency_and_key() -> None:
    """Two wrappers of the same key are equal; another agency or key is not."""
    a = signing_key("ITA-GDF")
    assert a == SigningKey("ITA-GDF", a.private)
    assert a != signing_key("ITA-GDF", 1)


# --- key cards --------------------------------------------------------------------------------


def _card() -> KeyCard:
    return KeyCard(signing_key("ITA-GDF").public, encryption_key("ITA-GDF").public)


def test_key_card_round_trip() -> None:
    """A key card survives to_json/from_json with the same kids and keys."""
    card = _card()
    back = KeyCard.from_json(card.to_json())
    assert card.signing.raw == back.signing.raw
    assert card.encryption.raw == back.encryption.raw
    assert (card.signing.kid, card.encryption.kid) == (back.signing.kid, back.encryption.kid)
    assert "ITA-GDF" == back.signing.agency


def _card_json(**edits: object) -> str:
    data = json.loads(_card().to_json())
    for path, value in edits.items():
        target = data
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "is not a Palermo key card"),
        ("[]", "is not a Palermo key card"),
        (_card_json(signing__ed25519="zz"), "is not a Palermo key card"),
        (_card_json(encryption__x25519="00" * 31), "is not a Palermo key card"),
        (_card_json(signing="x"), "is not a Palermo key card"),
        (_card_json(signing__kid="0" * 16), "signing kid does not match the key"),
        (_card_json(encryption__kid="0" * 16), "encryption kid does not match the key"),
    ],
)
def test_key_card_errors(text: str, reason: str) -> None:
    """Malformed cards and kid mismatches give KeyFileError naming the source."""
    with pytest.raises(KeyFileError) as err:
        KeyCard.from_json(text, source="ITA-GDF.pub.json")
    assert reason in err.value.reason
    assert err.value.reason.startswith("ITA-GDF.pub.json")
