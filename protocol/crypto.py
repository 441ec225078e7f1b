"""Crypto primitives for envelope v1: no msgpack, no I/O, no knowledge of envelopes.

Suite 1 (the v1 default):
- signatures: Ed25519 over a domain-separated SHA-256 digest;
- key wrapping: HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
  AES-256-GCM, single-shot;
- content: AES-256-GCM under a key derived from a fresh 32-byte content key.

Suite 2 replaces the KEM with the hybrid ML-KEM-768 + X25519 (X-Wing, HPKE KEM 0x647A) of
``cryptography.hpke``; sealing and opening both take ``cryptography``'s own randomized path
(it accepts no injected randomness for ML-KEM; the vector generator has its own deterministic
encapsulation, checked by opening here: docs/decisions/0035-suite-2-hybrid.md).

Ed25519 and the X25519 of HPKE sealing run on libsodium (PyNaCl); AES-GCM, key files and HPKE
opening on ``cryptography`` (OpenSSL). Ed25519 is deterministic, so both libraries give the same
signature bytes; libsodium verifies in half OpenSSL's time and refuses small-order and
non-canonical keys and points that OpenSSL lets through (docs/decisions/0010).

HPKE sealing is written here from the RFC so that the ephemeral key can be injected: golden test
vectors must be rebuilt byte for byte (Fernet's ``_encrypt_from_parts``), and
``cryptography``'s one-shot ``Suite.encrypt`` draws its ephemeral key internally. Production and
the vectors take the same path. Opening uses ``cryptography``'s HPKE, and the test suite checks
both directions against it, so our sealing cannot drift from the standard.
See docs/decisions/0002-hpke-seal-from-parts.md.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError

__all__ = [
    "AEAD_TAG_LEN",
    "CONTENT_KEY_LEN",
    "HPKE_HYBRID_STANZA_LEN",
    "HPKE_X25519_STANZA_LEN",
    "MLKEM768_PUBLIC_LEN",
    "AuthError",
    "LowOrderKey",
    "aead_open",
    "aead_seal",
    "derive_part_key",
    "digest",
    "hpke_open_hybrid",
    "hpke_open_x25519",
    "hpke_seal_hybrid",
    "hpke_seal_x25519",
    "hpke_seal_x25519_many",
    "key_id",
    "low_order_x25519",
    "mlkem768_modulus_ok",
    "random_bytes",
    "sign",
    "verify",
]

CONTENT_KEY_LEN: Final[int] = 32
AEAD_TAG_LEN: Final[int] = 16
X25519_LEN: Final[int] = 32
# enc (32) || AES-256-GCM(content key (32)) with its tag (16)
HPKE_X25519_STANZA_LEN: Final[int] = X25519_LEN + CONTENT_KEY_LEN + AEAD_TAG_LEN

# Suite 2: the X-Wing enc is the ML-KEM-768 ciphertext (1,088) || the X25519 ephemeral (32).
MLKEM768_PUBLIC_LEN: Final[int] = 1184
HYBRID_ENC_LEN: Final[int] = 1088 + X25519_LEN
HPKE_HYBRID_STANZA_LEN: Final[int] = HYBRID_ENC_LEN + CONTENT_KEY_LEN + AEAD_TAG_LEN

# RFC 9180 identifiers for suite 1.
_KEM_ID: Final[bytes] = (0x0020).to_bytes(2, "big")  # DHKEM(X25519, HKDF-SHA256)
_KDF_ID: Final[bytes] = (0x0001).to_bytes(2, "big")  # HKDF-SHA256
_AEAD_ID: Final[bytes] = (0x0002).to_bytes(2, "big")  # AES-256-GCM
_KEM_SUITE: Final[bytes] = b"KEM" + _KEM_ID
_HPKE_SUITE: Final[bytes] = b"HPKE" + _KEM_ID + _KDF_ID + _AEAD_ID
_MODE_BASE: Final[bytes] = b"\x00"
_ZERO_NONCE: Final[bytes] = bytes(12)

_SUITE1: Final = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_SUITE2: Final = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class LowOrderKey(ValueError):
    """A recipient X25519 key that gives an all-zero shared secret: it cannot be sealed to."""

    def __init__(self, public: bytes) -> None:
        super().__init__("the recipient's X25519 key is a low-order point")
        self.public = public


# Any scalar will do: X25519 clamps it to a multiple of the cofactor 8, so every small-order
# point gives the all-zero output that libsodium refuses, and every other point does not.
# libsodium clamps the scalar to a multiple of 8, and any such scalar maps every point of order
# 1, 2, 4 or 8, on the curve or its twist, to zero and no other point: multiplying by it tells a
# small-order key (the seven of libsodium's list, high bit set or not) from a usable one.
_PROBE_SCALAR: Final[bytes] = bytes(range(1, 33))


def low_order_x25519(public: bytes) -> bool:
    """Whether an X25519 public key is a low-order point, which can never be sealed to."""
    try:
        sodium.crypto_scalarmult(_PROBE_SCALAR, public)
    except RuntimeError:  # libsodium refuses an all-zero shared secret
        return True
    return False


_MLKEM_Q: Final[int] = 3329
_MLKEM768_T_LEN: Final[int] = 1152  # 3 x 256 coefficients of 12 bits, then the 32-byte seed rho


def mlkem768_modulus_ok(public: bytes) -> bool:
    """FIPS 203 section 7.2's encapsulation-key check: 1,184 bytes, and every 12-bit coefficient
    of ``t`` below q = 3329 (ByteEncode12 of ByteDecode12 gives the same bytes).

    Done here and not left to ``cryptography``: the floor version's checks are not documented,
    and a key that fails it must be refused when its bundle arrives, not when a sender seals.
    """
    if len(public) != MLKEM768_PUBLIC_LEN:
        return False
    t = int.from_bytes(public[:_MLKEM768_T_LEN], "little")
    return all((t >> (12 * i)) & 0xFFF < _MLKEM_Q for i in range(_MLKEM768_T_LEN * 8 // 12))


class AuthError(Exception):
    """A signature, tag or key stanza did not verify. Internal: the envelope layer maps it to
    ``AuthenticationFailed`` so callers see one error whatever failed."""


def digest(domain: bytes, data: bytes) -> bytes:
    """SHA-256 of ``domain || data``; every domain string ends in NUL so none prefixes another."""
    return hashlib.sha256(domain + data).digest()


def key_id(public_raw: bytes) -> str:
    """A key id: the first 8 bytes of SHA-256 over the raw public key, in hex."""
    return hashlib.sha256(public_raw).digest()[:8].hex()


_ED25519_SIG_LEN: Final[int] = 64


def sign(key: Ed25519PrivateKey, domain: bytes, data: bytes) -> bytes:
    # libsodium's secret key is seed || public key.
    secret = key.private_bytes_raw() + key.public_key().public_bytes_raw()
    return sodium.crypto_sign(digest(domain, data), secret)[:_ED25519_SIG_LEN]


def verify(key: Ed25519PublicKey, signature: bytes, domain: bytes, data: bytes) -> None:
    if len(signature) != _ED25519_SIG_LEN:
        raise AuthError("signature length")
    try:
        sodium.crypto_sign_open(signature + digest(domain, data), key.public_bytes_raw())
    except BadSignatureError as exc:
        raise AuthError("signature") from exc


# --- HKDF and HPKE (RFC 9180, section 4 and 5) ----------------------------------------------


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt or bytes(32), ikm, "sha256")


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    # Every length used here is <= 32, the SHA-256 output: one HMAC block is enough.
    assert length <= 32
    return hmac.digest(prk, info + b"\x01", "sha256")[:length]


def _labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def _labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


# Base mode has no PSK: its id hash is a constant.
_PSK_ID_HASH: Final[bytes] = _labeled_extract(_HPKE_SUITE, b"", b"psk_id_hash", b"")


def hpke_seal_x25519(
    recipient: X25519PublicKey, info: bytes, plaintext: bytes, ephemeral: X25519PrivateKey | None
) -> bytes:
    """HPKE base-mode single-shot seal (RFC 9180 5.1.1 and 6.1); returns ``enc || ct``.

    Production passes no ``ephemeral`` and draws 32 random bytes; the test-vector generator
    passes a fixed one. Both take this path; tests check it against ``cryptography``'s HPKE in
    both directions.
    """
    return hpke_seal_x25519_many([(recipient, info)], plaintext, ephemeral)[0]


def hpke_seal_x25519_many(
    recipients: Sequence[tuple[X25519PublicKey, bytes]],
    plaintext: bytes,
    ephemeral: X25519PrivateKey | None,
) -> list[bytes]:
    """One HPKE single-shot ``enc || ct`` per ``(recipient key, info)``, under one ephemeral key.

    Each result is exactly what RFC 9180's ``SealBase`` gives with that ephemeral key, so every
    recipient opens it with any RFC 9180 implementation. Drawing the ephemeral once per plaintext
    instead of once per recipient is randomness re-use in multi-recipient encryption, proven
    secure for Diffie-Hellman KEMs that hash the recipient's key into the shared secret, as
    DHKEM's ``kem_context`` does (Bellare, Boldyreva, Kurosawa, Staddon, IEEE Trans. IT 53(11),
    2007); CMS does the same for its key-agreement recipients (RFC 5753). It saves one X25519
    base-point multiplication per extra recipient (docs/decisions/0012).
    """
    eph = ephemeral.private_bytes_raw() if ephemeral is not None else os.urandom(X25519_LEN)
    enc = sodium.crypto_scalarmult_base(eph)
    sealed = []
    for recipient, info in recipients:
        pk_r = recipient.public_bytes_raw()
        try:
            dh = sodium.crypto_scalarmult(eph, pk_r)
        except RuntimeError as exc:  # libsodium refuses an all-zero shared secret
            raise LowOrderKey(pk_r) from exc
        eae_prk = _labeled_extract(_KEM_SUITE, b"", b"eae_prk", dh)
        shared = _labeled_expand(_KEM_SUITE, eae_prk, b"shared_secret", enc + pk_r, 32)
        info_hash = _labeled_extract(_HPKE_SUITE, b"", b"info_hash", info)
        context = _MODE_BASE + _PSK_ID_HASH + info_hash
        secret = _labeled_extract(_HPKE_SUITE, shared, b"secret", b"")
        key = _labeled_expand(_HPKE_SUITE, secret, b"key", context, 32)
        nonce = _labeled_expand(_HPKE_SUITE, secret, b"base_nonce", context, 12)
        sealed.append(enc + AESGCM(key).encrypt(nonce, plaintext, None))
    return sealed


def hpke_open_x25519(identity: X25519PrivateKey, info: bytes, sealed: bytes) -> bytes:
    """Open ``enc || ct`` with cryptography's RFC 9180 implementation."""
    # Exact length before any key use: a stanza of another length is not ours to try.
    if len(sealed) != HPKE_X25519_STANZA_LEN:
        raise AuthError("stanza length")
    try:
        return _SUITE1.decrypt(sealed, identity, info=info)
    except (InvalidTag, ValueError) as exc:
        raise AuthError("stanza") from exc


def hpke_seal_hybrid(
    recipient: hpke.MLKEM768X25519PublicKey, info: bytes, plaintext: bytes
) -> bytes:
    """Suite 2: ``cryptography``'s RFC 9180 single-shot seal with X-Wing; ``enc || ct``.

    An ML-KEM ciphertext is bound to one recipient key, so nothing is shared between stanzas;
    the randomness is drawn inside ``cryptography`` (production never fixes it).
    """
    return _SUITE2.encrypt(plaintext, recipient, info=info)


def hpke_open_hybrid(identity: hpke.MLKEM768X25519PrivateKey, info: bytes, sealed: bytes) -> bytes:
    """Open a suite-2 ``enc || ct`` with ``cryptography``'s RFC 9180 implementation."""
    if len(sealed) != HPKE_HYBRID_STANZA_LEN:
        raise AuthError("stanza length")
    try:
        return _SUITE2.decrypt(sealed, identity, info=info)
    except (InvalidTag, ValueError) as exc:
        raise AuthError("stanza") from exc


# --- Content encryption ---------------------------------------------------------------------


def derive_part_key(content_key: bytes, salt: bytes, part: bytes) -> bytes:
    """The AEAD key of one part (body or section), bound to the envelope id and part name."""
    return _expand(_extract(salt, content_key), b"palermo/v1/part-key\x00" + part, 32)


def aead_seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    # Each part key encrypts exactly one message (fresh content key per envelope and part),
    # so a fixed nonce is safe and saves 12 bytes per part.
    return AESGCM(key).encrypt(_ZERO_NONCE, plaintext, aad)


def aead_open(key: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(_ZERO_NONCE, ciphertext, aad)
    except InvalidTag as exc:
        raise AuthError("body") from exc


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
