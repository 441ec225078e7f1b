"""Agency keys: generate, save (0600, optional passphrase), load, and key ids.

Private keys without a passphrase are standard PKCS#8 PEM files, so operators can inspect and
back them up with ordinary tools. With a passphrase, the PKCS#8 key is sealed in a small
versioned JSON container (``palermo-encrypted-key/1``): Argon2id (RFC 9106, t=3, p=4, 64 MiB)
derives an AES-256-GCM key from the passphrase. PKCS#8's own encryption
(``BestAvailableEncryption``) is PBKDF2 with 2,048 iterations, which a stolen file's owner can
brute-force cheaply; files in that older format still load (with a warning) and
``palermo keys migrate`` rewrites them (docs/decisions/0017-inbox-crypto-shredding.md).
A key file readable by group or others is refused: a leaked signing key lets anyone speak for
the agency.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from schemas.errors import KeyFileError

from ._key_types import (
    EncryptionKey,
    HybridPrivateKey,
    PrivateKey,
    PublicEncryptionKey,
    PublicSigningKey,
    SigningKey,
)

__all__ = [
    "DEFAULT_KDF",
    "ENCRYPTED_KEY_FORMAT",
    "EncryptionKey",
    "HybridPrivateKey",
    "KdfParams",
    "KeyCard",
    "PublicEncryptionKey",
    "PublicSigningKey",
    "SigningKey",
    "load_private_key",
    "migrate_private_key",
    "save_private_key",
    "shared_access",
]

KEY_FILE_MODE: Final[int] = 0o600
MAX_KEY_FILE_BYTES: Final[int] = 64 * 1024

_log = structlog.get_logger("palermo.keys")

# Upper bounds on what a key file may ask for: a tampered or corrupted file must not make
# loading allocate gigabytes or spin for minutes.
MAX_KDF_ITERATIONS: Final[int] = 16
MAX_KDF_LANES: Final[int] = 16
MAX_KDF_MEMORY_KIB: Final[int] = 256 * 1024  # four times the default


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost: passes over memory, parallel lanes, and memory in KiB."""

    iterations: int
    lanes: int
    memory_kib: int

    def check(self) -> None:
        """Refuse costs outside [Argon2's minimum, the bounds above] before deriving anything."""
        if not (
            1 <= self.iterations <= MAX_KDF_ITERATIONS
            and 1 <= self.lanes <= MAX_KDF_LANES
            and 8 * self.lanes <= self.memory_kib <= MAX_KDF_MEMORY_KIB
        ):
            raise KeyFileError(
                f"Argon2id cost {self} is outside the accepted range (iterations 1-"
                f"{MAX_KDF_ITERATIONS}, lanes 1-{MAX_KDF_LANES}, memory 8*lanes-"
                f"{MAX_KDF_MEMORY_KIB} KiB)"
            )


ENCRYPTED_KEY_FORMAT: Final[str] = "palermo-encrypted-key/1"
# RFC 9106 section 4, second recommended option (for memory-constrained hosts): t=3, p=4,
# 64 MiB. About 0.25 s per load on one core, paid once at node start or per CLI command;
# a guesser pays it per passphrase tried (PBKDF2 with 2,048 iterations costs ~1 ms).
DEFAULT_KDF: Final[KdfParams] = KdfParams(iterations=3, lanes=4, memory_kib=64 * 1024)
KDF_SALT_LEN: Final[int] = 16
AEAD_NONCE_LEN: Final[int] = 12
# Domain separation for the container's AEAD: the header (format, KDF, cost, salt) is
# authenticated, so a file whose cost or salt was edited does not open.
_KEY_FILE_AAD: Final[bytes] = b"palermo/v1/key-file\x00"
_LEGACY_PEM: Final[bytes] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def save_private_key(
    path: Path,
    key: PrivateKey,
    passphrase: bytes | None = None,
    *,
    kdf: KdfParams = DEFAULT_KDF,
) -> None:
    """Write ``key`` with mode 0600, refusing to overwrite an existing file.

    Without a passphrase: PKCS#8 PEM. With one: the Argon2id/AES-256-GCM container, at cost
    ``kdf`` (tests pass a low cost explicitly; production code keeps the default).
    """
    _create_exclusive(path, _serialise(key, passphrase, kdf))


def _serialise(key: PrivateKey, passphrase: bytes | None, kdf: KdfParams) -> bytes:
    if passphrase is not None and not passphrase:
        raise KeyFileError("an empty passphrase would leave the key unencrypted; give one or none")
    if passphrase is None:
        return b"".join(_pkcs8(part, serialization.Encoding.PEM) for part in _parts(key))
    kdf.check()
    der = b"".join(_pkcs8(part, serialization.Encoding.DER) for part in _parts(key))
    salt, nonce = os.urandom(KDF_SALT_LEN), os.urandom(AEAD_NONCE_LEN)
    header: dict[str, Any] = {
        "format": ENCRYPTED_KEY_FORMAT,
        "kdf": {
            "name": "argon2id",
            "iterations": kdf.iterations,
            "lanes": kdf.lanes,
            "memory_kib": kdf.memory_kib,
            "salt": _b64(salt),
        },
        "aead": "aes-256-gcm",
    }
    sealed = AESGCM(_derive(passphrase, salt, kdf)).encrypt(nonce, der, _aad(header))
    document = {**header, "nonce": _b64(nonce), "ciphertext": _b64(sealed)}
    return (json.dumps(document, indent=2) + "\n").encode()


def _parts(
    key: PrivateKey,
) -> tuple[Ed25519PrivateKey | X25519PrivateKey | MLKEM768PrivateKey, ...]:
    # A hybrid key is its X25519 PKCS#8 key followed by its ML-KEM-768 one, in one file.
    return (key.x25519, key.mlkem) if isinstance(key, HybridPrivateKey) else (key,)


def _pkcs8(
    key: Ed25519PrivateKey | X25519PrivateKey | MLKEM768PrivateKey, encoding: serialization.Encoding
) -> bytes:
    return key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _split_der(der: bytes) -> list[bytes]:
    """Consecutive DER SEQUENCEs (a hybrid key file holds two); the rest is left to the parser."""
    parts: list[bytes] = []
    while der:
        if len(der) < 2 or der[0] != 0x30:
            return [*parts, der]
        size, head = der[1], 2
        if size & 0x80:
            count = size & 0x7F
            size, head = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
        parts.append(der[: head + size])
        der = der[head + size :]
    return parts


def _combine(path: Path, keys: list[Any]) -> Any:
    """One key, or the X25519 + ML-KEM-768 pair of a hybrid key file."""
    if len(keys) == 1:
        return keys[0]
    if (
        len(keys) == 2
        and isinstance(keys[0], X25519PrivateKey)
        and isinstance(keys[1], MLKEM768PrivateKey)
    ):
        return HybridPrivateKey(keys[0], keys[1])
    raise KeyFileError(
        f"{path} holds {len(keys)} keys; a hybrid key file holds an X25519 key then an "
        "ML-KEM-768 key"
    )


def _create_exclusive(path: Path, data: bytes) -> None:
    try:
        # O_EXCL: never clobber a key; the mode is set at creation so the key is never readable
        # by others, not even for the moment between create and chmod.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; move it away before writing a new key") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _aad(header: dict[str, Any]) -> bytes:
    return _KEY_FILE_AAD + json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def _derive(passphrase: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    return Argon2id(
        salt=salt,
        length=32,
        iterations=kdf.iterations,
        lanes=kdf.lanes,
        memory_cost=kdf.memory_kib,
    ).derive(passphrase)


def shared_access(path: Path, mode: int) -> str | None:
    """What to fix if a secret file's ``mode`` lets group or others in, else None."""
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    return None


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Read a key written by :func:`save_private_key`, checking its permissions first.

    A passphrase file in the older PKCS#8 (PBKDF2) format still loads, with a warning that
    names the command that rewrites it.
    """
    data = _read_key_file(path)
    if data.lstrip().startswith(b"{"):
        key = _open_container(path, data, passphrase)
    else:
        key = _load_pem(path, data, passphrase)
        if data.lstrip().startswith(_LEGACY_PEM):
            # Still usable, so a node does not stop on upgrade; but say how to fix it.
            _log.warning(
                "key_file_weak_kdf",
                path=str(path),
                reason="passphrase-protected with PKCS#8 PBKDF2 (2,048 iterations)",
                fix=f"palermo keys migrate {path} --passphrase-env VAR",
            )
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey | HybridPrivateKey):
        raise KeyFileError(
            f"{path} holds a {type(key).__name__}; Palermo uses Ed25519 and X25519 (and "
            "ML-KEM-768 + X25519 hybrid keys)"
        )
    return key


def migrate_private_key(path: Path, passphrase: bytes, *, kdf: KdfParams = DEFAULT_KDF) -> bool:
    """Rewrite an older PKCS#8 (PBKDF2) passphrase file in the Argon2id container, in place.

    True if the file was rewritten, False if it is already in the current format. The new
    file is written beside the old one (0600, fsync) and renamed over it, so a crash leaves
    either the old or the new file, never neither.
    """
    data = _read_key_file(path)
    if data.lstrip().startswith(b"{"):
        _open_container(path, data, passphrase)  # proves the passphrase; nothing to rewrite
        return False
    if not data.lstrip().startswith(_LEGACY_PEM):
        raise KeyFileError(
            f"{path} is not passphrase-protected, so there is nothing to migrate; to add a "
            "passphrase, generate a new key with --passphrase-env"
        )
    key = _load_pem(path, data, passphrase)
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; Palermo uses Ed25519 and X25519")
    fresh = path.with_name(path.name + ".migrating")
    _create_exclusive(fresh, _serialise(key, passphrase, kdf))
    try:
        os.replace(fresh, path)
    except OSError as exc:
        fresh.unlink(missing_ok=True)
        raise KeyFileError(f"cannot replace key file {path}: {exc.strerror}") from exc
    return True


def _read_key_file(path: Path) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path} is not a regular file")
    if (loose := shared_access(path, info.st_mode)) is not None:
        raise KeyFileError(f"key file {loose}")
    if info.st_size > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"key file {path} is {info.st_size} bytes; a key file is a few hundred")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc


def _load_pem(path: Path, data: bytes, passphrase: bytes | None) -> Any:
    blocks = [b"-----BEGIN" + b for b in data.split(b"-----BEGIN")[1:]] or [data]
    try:
        return _combine(
            path, [serialization.load_pem_private_key(b, password=passphrase) for b in blocks]
        )
    except TypeError as exc:
        raise KeyFileError(f"cannot load {path}: {_passphrase_hint(passphrase)}") from exc
    except ValueError as exc:
        raise KeyFileError(
            f"cannot load {path}: wrong passphrase, or not a PEM private key"
        ) from exc


def _passphrase_hint(passphrase: bytes | None) -> str:
    if passphrase is None:
        return "it is passphrase-protected: give the passphrase"
    return "it is not passphrase-protected: give no passphrase"


def _open_container(path: Path, data: bytes, passphrase: bytes | None) -> Any:
    """Parse strictly (version first, exact fields, bounded cost) before deriving a key."""
    bad = f"{path} is not a {ENCRYPTED_KEY_FORMAT} key file"
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{bad}: not JSON") from exc
    if not isinstance(doc, dict) or doc.get("format") != ENCRYPTED_KEY_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise KeyFileError(f"{bad}: format is {found!r}; upgrade Palermo to read it")
    if passphrase is None:
        raise KeyFileError(f"cannot load {path}: {_passphrase_hint(None)}")
    try:
        if set(doc) != {"format", "kdf", "aead", "nonce", "ciphertext"} or doc["aead"] != (
            "aes-256-gcm"
        ):
            raise ValueError("unexpected fields or AEAD")
        spec = doc["kdf"]
        if set(spec) != {"name", "iterations", "lanes", "memory_kib", "salt"} or (
            spec["name"] != "argon2id"
        ):
            raise ValueError("unexpected KDF")
        if not all(type(spec[k]) is int for k in ("iterations", "lanes", "memory_kib")):
            raise ValueError("KDF cost is not integers")
        kdf = KdfParams(spec["iterations"], spec["lanes"], spec["memory_kib"])
        salt = base64.b64decode(spec["salt"], validate=True)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        sealed = base64.b64decode(doc["ciphertext"], validate=True)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise KeyFileError(f"{bad}: {exc}") from exc
    if (len(salt), len(nonce)) != (KDF_SALT_LEN, AEAD_NONCE_LEN):
        raise KeyFileError(f"{bad}: salt or nonce has the wrong length")
    kdf.check()
    header = {k: doc[k] for k in ("format", "kdf", "aead")}
    try:
        der = AESGCM(_derive(passphrase, salt, kdf)).decrypt(nonce, sealed, _aad(header))
    except InvalidTag as exc:
        raise KeyFileError(f"cannot load {path}: wrong passphrase, or a modified file") from exc
    try:
        return _combine(
            path, [serialization.load_der_private_key(d, password=None) for d in _split_der(der)]
        )
    except ValueError as exc:
        raise KeyFileError(f"{bad}: the sealed key is not PKCS#8") from exc


@dataclass(frozen=True, slots=True)
class KeyCard:
    """An agency's public keys as a small JSON document (``<AGENCY>.pub.json``).

    Until membership certificates and signed key bundles are in the directory, this is how
    public keys travel between the CLI commands and the demo.
    """

    signing: PublicSigningKey
    encryption: PublicEncryptionKey

    def to_json(self) -> str:
        return json.dumps(
            {
                "agency": self.signing.agency,
                "signing": {"kid": self.signing.kid, "ed25519": self.signing.raw.hex()},
                "encryption": {"kid": self.encryption.kid, "x25519": self.encryption.raw.hex()},
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "key card") -> KeyCard:
        try:
            data = json.loads(text)
            agency = data["agency"]
            card = cls(
                PublicSigningKey.from_raw(agency, bytes.fromhex(data["signing"]["ed25519"])),
                PublicEncryptionKey.from_raw(agency, bytes.fromhex(data["encryption"]["x25519"])),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"{source} is not a Palermo key card: {exc}") from exc
        if card.signing.kid != data["signing"].get("kid"):
            raise KeyFileError(f"{source}: signing kid does not match the key")
        if card.encryption.kid != data["encryption"].get("kid"):
            raise KeyFileError(f"{source}: encryption kid does not match the key")
        return card
