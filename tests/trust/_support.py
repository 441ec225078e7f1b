"""Deterministic keys, times and document builders for the trust tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol import crypto
from protocol.keys import EncryptionKey, SigningKey
from protocol.trust import (
    ROOT,
    EncryptionKeyEntry,
    KeyBundle,
    MembershipCertificate,
    RevocationEntry,
    RevocationList,
    TrustStore,
    canonical_json,
    sign_document,
)

NOW = datetime(2026, 11, 23, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DAY = timedelta(days=1)


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"palermo trust test " + label.encode()).digest()


def signing_key(agency: str, label: str = "") -> SigningKey:
    """A fixed Ed25519 key for ``agency`` (``label`` picks another one for the same agency)."""
    return SigningKey(agency, Ed25519PrivateKey.from_private_bytes(_seed(f"sign {agency} {label}")))


def encryption_key(agency: str, label: str = "") -> EncryptionKey:
    """A fixed X25519 key for ``agency`` (``label`` picks another one for the same agency)."""
    return EncryptionKey(
        agency, X25519PrivateKey.from_private_bytes(_seed(f"enc {agency} {label}"))
    )


ROOT_KEY = signing_key(ROOT)
ITA = signing_key("ITA-GDF")
MLT = signing_key("MLT-AFM")
ITA_ENC = encryption_key("ITA-GDF")
MLT_ENC = encryption_key("MLT-AFM")
NAMES = {"ITA-GDF": ("Fictional Italian node", "ITA"), "MLT-AFM": ("Fictional Maltese node", "MLT")}


def cert(key: SigningKey = ITA, **over: Any) -> MembershipCertificate:
    """A certificate for ``key``'s agency, valid 30 days either side of NOW."""
    name, country = NAMES[key.agency]
    base: dict[str, Any] = {
        "serial": 1,
        "agency": key.agency,
        "name": name,
        "country": country,
        "groups": ["med-coastal"],
        "accreditation": "secret",
        "signing_key": key.public.raw.hex(),
        "not_before": NOW - 30 * DAY,
        "not_after": NOW + 30 * DAY,
    }
    return MembershipCertificate(**(base | over))


def entry(
    key: EncryptionKey = ITA_ENC,
    not_before: datetime = NOW - DAY,
    not_after: datetime = NOW + 10 * DAY,
) -> EncryptionKeyEntry:
    return EncryptionKeyEntry(
        kid=key.kid, x25519=key.public.raw.hex(), not_before=not_before, not_after=not_after
    )


def bundle(agency: str = "ITA-GDF", seq: int = 1, *entries: EncryptionKeyEntry) -> KeyBundle:
    return KeyBundle(agency=agency, seq=seq, issued=NOW, keys=list(entries) or [entry()])


def revocations(seq: int, *entries: RevocationEntry) -> RevocationList:
    return RevocationList(seq=seq, issued=NOW, entries=list(entries))


def signed_cert(key: SigningKey = ITA, **over: Any) -> dict[str, Any]:
    return sign_document(cert(key, **over), ROOT_KEY, ROOT)


def signed_bundle(
    key: SigningKey = ITA, seq: int = 1, *entries: EncryptionKeyEntry
) -> dict[str, Any]:
    return sign_document(bundle(key.agency, seq, *entries), key, key.agency)


def signed_revocations(seq: int, *entries: RevocationEntry) -> dict[str, Any]:
    return sign_document(revocations(seq, *entries), ROOT_KEY, ROOT)


def sign_raw(body: dict[str, Any], key: SigningKey, signer: str) -> dict[str, Any]:
    """Sign an arbitrary body the way the spec says (domain + canonical JSON), unvalidated."""
    domain = f"palermo/v1/trust/{body.get('kind', '')}\x00".encode()
    sig = crypto.sign(key.private, domain, canonical_json(body))
    return {"document": body, "signature": {"signer": signer, "kid": key.kid, "ed25519": sig.hex()}}


def store(*certs: MembershipCertificate) -> TrustStore:
    """A store pinned to ROOT_KEY holding the given certificates (default: ITA-GDF's)."""
    trust = TrustStore(ROOT_KEY.public, clock=lambda: NOW)
    for c in certs or (cert(),):
        trust.add_certificate(sign_document(c, ROOT_KEY, ROOT))
    return trust
