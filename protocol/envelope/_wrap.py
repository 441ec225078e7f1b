"""Key wrapping for envelope parts: one stanza per recipient key, suite 1 or suite 2.

Suite 1 shares one X25519 ephemeral key among a part's stanzas (decision 0012); suite 2 gives
every recipient its own X-Wing ciphertext, drawn by ``cryptography`` (decision 0035). Split from
``_seal`` so that both stay short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from schemas.errors import InputError, KeyNotValid

from .. import crypto
from ..keys import PublicEncryptionKey
from ._format import SUITE_MLKEM768_X25519, SUITE_X25519, Stanza

__all__ = ["INFO_STANZA", "HybridEncapsulate", "choose_suite"]

INFO_STANZA: Final[bytes] = b"palermo/v1/stanza\x00"


def _stanza_info(envelope_id: bytes, agency: str, kid: str, part: bytes) -> bytes:
    # Binds a wrapped key to one envelope, one recipient and one part: a stanza cannot be moved
    # to another envelope, another recipient's slot or another section.
    return b"\x00".join([INFO_STANZA + envelope_id, agency.encode(), kid.encode(), part])


def _section_part(section_id: str) -> bytes:
    return b"section:" + section_id.encode()


HybridEncapsulate = Callable[[PublicEncryptionKey, bytes, bytes], bytes]
"""(recipient key, info, plaintext) -> a suite-2 ``enc || ct``: the vector generator's own
deterministic X-Wing HPKE (production never sets it; tests open every result with
``cryptography``)."""


@dataclass
class _Randomness:
    """Where sealing draws randomness; the vector generator fixes it, production does not."""

    content_keys: list[bytes] = field(default_factory=list)
    ephemerals: list[X25519PrivateKey] = field(default_factory=list)
    hybrid: HybridEncapsulate | None = None

    def content_key(self) -> bytes:
        return self.content_keys.pop(0) if self.content_keys else crypto.random_bytes(32)

    def ephemeral(self) -> X25519PrivateKey | None:
        return self.ephemerals.pop(0) if self.ephemerals else None


def _wrap_x25519(
    rand: _Randomness, content_key: bytes, infos: list[bytes], ordered: list[PublicEncryptionKey]
) -> list[bytes]:
    # One ephemeral key per part, shared by its stanzas (docs/decisions/0012).
    try:
        return crypto.hpke_seal_x25519_many(
            [(r.key, info) for r, info in zip(ordered, infos, strict=True)],
            content_key,
            rand.ephemeral(),
        )
    except crypto.LowOrderKey as exc:
        bad = next(r for r in ordered if r.raw == exc.public)
        raise KeyNotValid(
            f"encryption key {bad.kid} of {bad.agency} is a low-order X25519 point and cannot "
            f"be sealed to; {bad.agency} must publish a new key bundle"
        ) from exc


def _wrap_hybrid(
    rand: _Randomness, content_key: bytes, infos: list[bytes], ordered: list[PublicEncryptionKey]
) -> list[bytes]:
    # An ML-KEM ciphertext belongs to one recipient key: one full stanza per recipient and part
    # (docs/decisions/0035-suite-2-hybrid.md measures the alternative).
    out = []
    for r, info in zip(ordered, infos, strict=True):
        assert r.hybrid_key is not None  # seal() refused non-hybrid keys (choose_suite)
        if rand.hybrid is not None:
            out.append(rand.hybrid(r, info, content_key))
        else:
            out.append(crypto.hpke_seal_hybrid(r.hybrid_key, info, content_key))
    return out


def _wrap(
    rand: _Randomness,
    suite: int,
    envelope_id: bytes,
    part: bytes,
    hdr_hash: bytes,
    plaintext: bytes,
    recipients: Sequence[PublicEncryptionKey],
) -> tuple[tuple[Stanza, ...], bytes]:
    content_key = rand.content_key()
    ordered = sorted(recipients, key=lambda r: (r.agency, r.kid))
    infos = [_stanza_info(envelope_id, r.agency, r.kid, part) for r in ordered]
    wrap = _wrap_hybrid if suite == SUITE_MLKEM768_X25519 else _wrap_x25519
    wrapped = wrap(rand, content_key, infos, ordered)
    stanzas = tuple(Stanza(r.agency, r.kid, enc) for r, enc in zip(ordered, wrapped, strict=True))
    key = crypto.derive_part_key(content_key, envelope_id, part)
    return stanzas, crypto.aead_seal(key, plaintext, hdr_hash + b"\x00" + part)


def _not_hybrid(keys: Iterable[PublicEncryptionKey]) -> str:
    names = ", ".join(sorted({f"{k.agency} (key {k.kid})" for k in keys}))
    return (
        f"suite 2 (post-quantum hybrid) needs an ML-KEM-768 + X25519 key for every recipient; "
        f"{names} publishes only X25519: it must rotate to a hybrid key (palermo keys rotate --pq)"
    )


def choose_suite(keys: Iterable[PublicEncryptionKey], required: int | None = None) -> int:
    """The suite to seal with: 2 when every recipient key is hybrid, else 1 (an envelope has one
    suite; decision 0035). ``required`` 2 refuses, naming the agencies without a hybrid key."""
    keys = list(keys)
    classic = [k for k in keys if not k.hybrid]
    if required == SUITE_MLKEM768_X25519 and classic:
        raise InputError(_not_hybrid(classic))
    return SUITE_X25519 if classic or not keys else SUITE_MLKEM768_X25519
