"""Agency key types: public and private, X25519 or hybrid ML-KEM-768 + X25519, and Ed25519.

Split from :mod:`protocol.keys` (which re-exports them) so that the key-file code stays
readable; nothing here touches files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from .crypto import key_id

__all__ = [
    "EncryptionKey",
    "HybridPrivateKey",
    "PrivateKey",
    "PublicEncryptionKey",
    "PublicSigningKey",
    "SigningKey",
]


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


def _raw_mlkem(key: MLKEM768PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class PublicEncryptionKey:
    """An agency's key that senders wrap content keys to: X25519, or hybrid when ``mlkem`` is
    set (ML-KEM-768 + X25519, suite 2; docs/decisions/0035-suite-2-hybrid.md).

    A hybrid key's id covers both parts (``key_id(mlkem || x25519)``), so no one can pair an
    agency's X25519 key with an ML-KEM key of their own under the same id.
    """

    agency: str
    key: X25519PublicKey = field(repr=False)
    mlkem: MLKEM768PublicKey | None = field(default=None, repr=False, compare=False)
    kid: str = field(init=False)
    hybrid_key: hpke.MLKEM768X25519PublicKey | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mlkem_raw = b"" if self.mlkem is None else _raw_mlkem(self.mlkem)
        object.__setattr__(self, "kid", key_id(mlkem_raw + self.raw))
        hybrid = None if self.mlkem is None else hpke.MLKEM768X25519PublicKey(self.mlkem, self.key)
        object.__setattr__(self, "hybrid_key", hybrid)

    @property
    def raw(self) -> bytes:
        """The X25519 part (the whole key of an X25519-only key)."""
        return self.key.public_bytes_raw()

    @property
    def mlkem_raw(self) -> bytes | None:
        """The ML-KEM-768 part (1,184 bytes) of a hybrid key, else None."""
        return None if self.mlkem is None else _raw_mlkem(self.mlkem)

    @property
    def hybrid(self) -> bool:
        """Whether suite 2 (post-quantum hybrid) can be sealed to this key."""
        return self.mlkem is not None

    @classmethod
    def from_raw(cls, agency: str, raw: bytes, mlkem: bytes | None = None) -> PublicEncryptionKey:
        """From the raw X25519 key and, for a hybrid key, the raw ML-KEM-768 key."""
        return cls(
            agency,
            X25519PublicKey.from_public_bytes(raw),
            None if mlkem is None else MLKEM768PublicKey.from_public_bytes(mlkem),
        )


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
class HybridPrivateKey:
    """The two private halves of a suite-2 key (X-Wing's ML-KEM-768 and X25519), kept as one.

    ``cryptography`` cannot serialise its ``MLKEM768X25519PrivateKey`` as one key, so a key file
    holds the X25519 PKCS#8 key followed by the ML-KEM-768 one (its 64-byte seed form).
    """

    x25519: X25519PrivateKey = field(repr=False)
    mlkem: MLKEM768PrivateKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    """An agency's decryption key: X25519, or hybrid when ``mlkem`` is set. Its repr never
    shows key material."""

    agency: str
    private: X25519PrivateKey = field(repr=False)
    mlkem: MLKEM768PrivateKey | None = field(default=None, repr=False, compare=False)
    public: PublicEncryptionKey = field(init=False, repr=False, compare=False)
    kid: str = field(init=False)
    hybrid_private: hpke.MLKEM768X25519PrivateKey | None = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Computed once: key ids are looked up for every envelope opened or sealed.
        mlkem_public = None if self.mlkem is None else self.mlkem.public_key()
        public = PublicEncryptionKey(self.agency, self.private.public_key(), mlkem_public)
        object.__setattr__(self, "public", public)
        object.__setattr__(self, "kid", public.kid)
        hybrid = (
            None if self.mlkem is None else hpke.MLKEM768X25519PrivateKey(self.mlkem, self.private)
        )
        object.__setattr__(self, "hybrid_private", hybrid)

    @property
    def hybrid(self) -> bool:
        return self.mlkem is not None

    @classmethod
    def generate(cls, agency: str, *, pq: bool = False) -> EncryptionKey:
        """A fresh key; ``pq``: hybrid ML-KEM-768 + X25519 (suite 2)."""
        return cls(
            agency, X25519PrivateKey.generate(), MLKEM768PrivateKey.generate() if pq else None
        )

    @classmethod
    def from_private(cls, agency: str, key: X25519PrivateKey | HybridPrivateKey) -> EncryptionKey:
        """From what :func:`load_private_key` returns for an encryption key file."""
        if isinstance(key, HybridPrivateKey):
            return cls(agency, key.x25519, key.mlkem)
        return cls(agency, key)

    def private_key(self) -> X25519PrivateKey | HybridPrivateKey:
        """What :func:`save_private_key` writes for this key."""
        return self.private if self.mlkem is None else HybridPrivateKey(self.private, self.mlkem)


PrivateKey = Ed25519PrivateKey | X25519PrivateKey | HybridPrivateKey
