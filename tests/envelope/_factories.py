"""Small builders for the envelope tests: deterministic keys, headers, sealed and doctored bytes."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, settings

from protocol import crypto
from protocol.envelope import _format, _seal
from protocol.keys import EncryptionKey, PublicEncryptionKey, SigningKey
from schemas import EnvelopeHeader, Handling, SectionInfo
from schemas._types import from_epoch_ms, new_uuid7

NOW_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z
NOW: datetime = from_epoch_ms(NOW_MS)
ORIGINATOR = "ITA-GDF"
READERS = ("ESP-GC", "GRC-HCG", "MLT-AFM")
# Twenty agency ids for recipient-set properties (AgencyId: ^[A-Z][A-Z0-9-]{1,31}$).
POOL = (*READERS, "AUS-ABF", "IDN-IMI", *(f"AG-{i:02d}" for i in range(15)))

# Bounded property runs, no example database written into the shared checkout.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FEW = settings(FUZZ, max_examples=60)

_ids = itertools.count()


def seed(label: str) -> bytes:
    """32 bytes fixed by ``label``: every key in these tests is reproducible."""
    return hashlib.sha256(b"palermo envelope tests " + label.encode()).digest()


def signing_key(agency: str = ORIGINATOR, n: int = 0) -> SigningKey:
    return SigningKey(agency, Ed25519PrivateKey.from_private_bytes(seed(f"sign {agency} {n}")))


SUITE = [1]
"""The suite the factories' keys are for: 1 (X25519) or 2 (hybrid); see :func:`use_suite`."""


def encryption_key(agency: str, n: int = 0, *, hybrid: bool | None = None) -> EncryptionKey:
    """X25519, or hybrid ML-KEM-768 + X25519 under suite 2 (or when ``hybrid`` says so)."""
    x25519 = X25519PrivateKey.from_private_bytes(seed(f"enc {agency} {n}"))
    if not (SUITE[0] == 2 if hybrid is None else hybrid):
        return EncryptionKey(agency, x25519)
    mlkem = MLKEM768PrivateKey.from_seed_bytes(seed(f"mlkem d {agency} {n}") + seed(f"z {n}"))
    return EncryptionKey(agency, x25519, mlkem)


class _Pool(Mapping[str, EncryptionKey]):
    """Each pool agency's key for the active suite: the same tests run for suites 1 and 2."""

    def __init__(self) -> None:
        self._keys = {(a, h): encryption_key(a, hybrid=h) for a in POOL for h in (False, True)}

    def __getitem__(self, agency: str) -> EncryptionKey:
        return self._keys[(agency, SUITE[0] == 2)]

    def __iter__(self) -> Iterator[str]:
        return iter(POOL)

    def __len__(self) -> int:
        return len(POOL)


@contextmanager
def use_suite(suite: int) -> Iterator[int]:
    """Within the block, the factories seal with ``suite`` keys (hybrid ones for suite 2)."""
    before, SUITE[0] = SUITE[0], suite
    try:
        yield suite
    finally:
        SUITE[0] = before


SIGNER = signing_key()
SIGNERS = _seal.StaticSigners.of([SIGNER.public])
KEYS: Mapping[str, EncryptionKey] = _Pool()


def publics(agencies: Iterable[str]) -> list[PublicEncryptionKey]:
    return [KEYS[a].public for a in agencies]


def section_info(sid: str = "personal-data", kind: str = "personal-data") -> SectionInfo:
    return SectionInfo(id=sid, kind=kind)


def header(
    recipients: Iterable[str] = READERS,
    *,
    sections: Sequence[SectionInfo] = (),
    signer: SigningKey = SIGNER,
    created: datetime = NOW,
    **fields: Any,
) -> EnvelopeHeader:
    """A valid header from ``signer`` to ``recipients``; ``fields`` override any other field."""
    values: dict[str, Any] = {
        "id": new_uuid7(NOW_MS, next(_ids).to_bytes(10, "big")),
        "originator": signer.agency,
        "kid": signer.kid,
        "created": created,
        "kind": "alert",
        "route": "central-med",
        "category": "routes",
        "handling": Handling(tlp="AMBER", rel_to=["group:med-coastal"]),
        "recipients": list(recipients),
        "sections": list(sections),
    }
    values.update(fields)
    return EnvelopeHeader(**values)


def sealed(
    recipients: Sequence[str] = READERS,
    body: bytes = b"report body",
    *,
    sections: Mapping[str, tuple[bytes, Sequence[str]]] | None = None,
    signer: SigningKey = SIGNER,
    created: datetime = NOW,
) -> bytes:
    """Seal ``body`` for ``recipients``; each section is (plaintext, reader agencies)."""
    sections = sections or {}
    hdr = header(
        recipients,
        sections=[section_info(sid) for sid in sections],
        signer=signer,
        created=created,
    )
    return _seal.seal(
        hdr,
        body,
        signer,
        publics(recipients),
        {sid: (plain, publics(readers)) for sid, (plain, readers) in sections.items()},
    )


def resign(env: _format.Envelope, key: SigningKey = SIGNER) -> bytes:
    """Encode a doctored envelope canonically and sign it, to reach checks behind the signature."""
    sig = crypto.sign(key.private, _seal.DOMAIN_SIGNATURE, _format.signed_bytes(env))
    return _format.encode(replace(env, sig=sig))


def stanza_obj(s: _format.Stanza) -> dict[str, Any]:
    return {"agency": s.agency, "enc": s.enc, "kid": s.kid}


def raw(env: _format.Envelope, **fields: Any) -> bytes:
    """Pack an envelope's fields with plain msgpack (no canonicalisation), top keys in order.

    Any field can be replaced by an arbitrary msgpack-able value, so tests can build shapes
    that :func:`protocol.envelope._format.encode` would never produce.
    """
    top: dict[str, Any] = {
        "v": env.v,
        "suite": env.suite,
        "hdr": env.hdr,
        "rcpt": [stanza_obj(s) for s in env.rcpt],
        "body": env.body,
        "sections": [
            {"body": s.body, "id": s.id, "rcpt": [stanza_obj(x) for x in s.rcpt]}
            for s in env.sections
        ],
        "sig": env.sig,
    }
    top.update(fields)
    return msgpack.packb(top, use_bin_type=True)  # type: ignore[no-any-return]


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


def open_as(data: bytes, agency: str, **kwargs: Any) -> _seal.Opened:
    """Open ``data`` as ``agency`` with its pool key, at NOW, trusting SIGNER."""
    return _seal.open_envelope(data, [KEYS[agency]], SIGNERS, now=NOW, **kwargs)


def assemble(env: _format.Envelope, **packed: bytes) -> bytes:
    """The seven top-level entries in order, each value packed canonically unless given as raw
    bytes in ``packed``: for length bombs, non-minimal forms and duplicate keys."""
    canonical = msgpack.unpackb(_format.encode(env), raw=False)
    out = [b"\x87"]
    for key in ("v", "suite", "hdr", "rcpt", "body", "sections", "sig"):
        out.append(msgpack.packb(key))
        out.append(packed[key] if key in packed else _format.canonical_packb(canonical[key]))
    return b"".join(out)
