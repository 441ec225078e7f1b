"""Agency keys: generate, save (0600, optional passphrase), load, and key ids.

Private keys are standard PKCS#8 PEM files, encrypted with the best available scheme when a
passphrase is given, so operators can inspect and back them up with ordinary tools. A key file
readable by group or others is refused: a leaked signing key lets anyone speak for the agency.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from schemas.errors import KeyFileError

from .crypto import key_id

__all__ = [
    "EncryptionKey",
    "KeyCard",
    "PublicEncryptionKey",
    "PublicSigningKey",
    "SigningKey",
    "load_private_key",
    "save_private_key",
    "shared_access",
]

KEY_FILE_MODE: Final[int] = 0o600
MAX_KEY_FILE_BYTES: Final[int] = 64 * 1024


@dataclass(frozen=True, slots=True)
class PublicSigningKey:
    """An agency's Ed25519 verification key."""

    agency: str
    key: Ed25519PublicKey = field(repr=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", key_id(self.raw))

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes_raw()

    @classmethod
    def from_raw(cls, agency: str, raw: bytes) -> PublicSigningKey:
        return cls(agency, Ed25519PublicKey.from_public_bytes(raw))


@dataclass(frozen=True, slots=True)
class PublicEncryptionKey:
    """An agency's X25519 key that senders wrap content keys to."""

    agency: str
    key: X25519PublicKey = field(repr=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", key_id(self.raw))

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes_raw()

    @classmethod
    def from_raw(cls, agency: str, raw: bytes) -> PublicEncryptionKey:
        return cls(agency, X25519PublicKey.from_public_bytes(raw))


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An agency's Ed25519 signing key. Its repr never shows key material."""

    agency: str
    private: Ed25519PrivateKey = field(repr=False)
    public: PublicSigningKey = field(init=False, repr=False, compare=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: key ids are looked up for every envelope opened or sealed.
        public = PublicSigningKey(self.agency, self.private.public_key())
        object.__setattr__(self, "public", public)
        object.__setattr__(self, "kid", public.kid)

    @classmethod
    def generate(cls, agency: str) -> SigningKey:
        return cls(agency, Ed25519PrivateKey.generate())


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    """An agency's X25519 decryption key. Its repr never shows key material."""

    agency: str
    private: X25519PrivateKey = field(repr=False)
    public: PublicEncryptionKey = field(init=False, repr=False, compare=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: key ids are looked up for every envelope opened or sealed.
        public = PublicEncryptionKey(self.agency, self.private.public_key())
        object.__setattr__(self, "public", public)
        object.__setattr__(self, "kid", public.kid)

    @classmethod
    def generate(cls, agency: str) -> EncryptionKey:
        return cls(agency, X25519PrivateKey.generate())


PrivateKey = Ed25519PrivateKey | X25519PrivateKey


def save_private_key(path: Path, key: PrivateKey, passphrase: bytes | None = None) -> None:
    """Write ``key`` as PKCS#8 PEM with mode 0600, refusing to overwrite an existing file."""
    if passphrase is not None and not passphrase:
        raise KeyFileError("an empty passphrase would leave the key unencrypted; give one or none")
    algorithm: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
    )
    try:
        # O_EXCL: never clobber a key; the mode is set at creation so the key is never readable
        # by others, not even for the moment between create and chmod.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; move it away before writing a new key") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def shared_access(path: Path, mode: int) -> str | None:
    """What to fix if a secret file's ``mode`` lets group or others in, else None."""
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"{path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    return None


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Read a key written by :func:`save_private_key`, checking its permissions first."""
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
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as exc:
        hint = (
            "it is passphrase-protected: give the passphrase"
            if passphrase is None
            else ("it is not passphrase-protected: give no passphrase")
        )
        raise KeyFileError(f"cannot load {path}: {hint}") from exc
    except ValueError as exc:
        raise KeyFileError(
            f"cannot load {path}: wrong passphrase, or not a PEM private key"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}; Palermo uses Ed25519 and X25519")
    return key


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
