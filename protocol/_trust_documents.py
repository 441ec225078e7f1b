"""The federation's signed documents and their signatures: pure data, no I/O, no store.

A signed document is ``{"document": {...}, "signature": {"signer", "kid", "ed25519"}}``; the
whole story, with :class:`~protocol.trust.TrustStore`, is in :mod:`protocol.trust`, the public face.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from protocol import crypto
from protocol.keys import PublicEncryptionKey, PublicSigningKey, SigningKey
from schemas import AgencyId, Category, Classification, CountryCode, EpochMillis, KeyId, Kind, Route
from schemas._types import Slug
from schemas.errors import SignatureInvalid, TrustError, UnknownIssuer

ROOT: Final[str] = "federation-root"
_DOMAIN: Final[str] = "palermo/v1/trust/{kind}\x00"
Hex32 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
HexMlkem768 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{2368}$")]
"""An ML-KEM-768 encapsulation key (1,184 bytes) in hex."""
MAX_BUNDLE_KEYS: Final[int] = 8
MAX_REVOCATIONS: Final[int] = 10_000
# How long a revocation list is current after it is signed (its ``next_update``) unless the
# operator says otherwise; short enough that a list withheld from a process is noticed within a
# week, long enough for a root key kept offline (docs/decisions/0014).
REVOCATION_LIST_VALIDITY: Final[timedelta] = timedelta(days=7)
_X25519_P: Final[int] = 2**255 - 19


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _unusable_x25519(public_raw: bytes) -> str | None:
    """Why no one can (or should) encrypt to this X25519 public key; None for a usable one."""
    # Honest keys are canonical (u < p, top bit clear); the rest are aliases that RFC 7748
    # implementations read differently (masking the top bit or not), so none is accepted.
    if int.from_bytes(public_raw, "little") >= _X25519_P:
        return "not a canonical X25519 encoding (u is 2^255 - 19 or more)"
    if crypto.low_order_x25519(public_raw):
        return "a small-order X25519 point, which gives everyone the all-zero secret"
    return None


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MembershipRequest(_Doc):
    """What an agency sends the federation operator to be admitted (self-signed)."""

    kind: Literal["membership-request"] = "membership-request"
    agency: AgencyId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    country: CountryCode
    signing_key: Hex32
    encryption_key: Hex32


class MembershipCertificate(_Doc):
    """The root's statement that an agency is a member, with its signing key."""

    kind: Literal["membership-certificate"] = "membership-certificate"
    serial: int = Field(ge=1)
    agency: AgencyId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    country: CountryCode
    groups: list[Slug] = Field(default_factory=list, max_length=64)
    accreditation: Classification = Classification.RESTRICTED
    signing_key: Hex32
    not_before: EpochMillis
    not_after: EpochMillis

    @property
    def public_signing_key(self) -> PublicSigningKey:
        return PublicSigningKey.from_raw(self.agency, bytes.fromhex(self.signing_key))


class EncryptionKeyEntry(_Doc):
    """One key of a bundle: X25519, or hybrid with ``mlkem768`` beside it (suite 2, decision
    0035). A hybrid key's kid covers both parts; ``mlkem768`` is left out when absent, so
    bundles signed before it existed verify as before."""

    kid: KeyId
    x25519: Hex32
    mlkem768: HexMlkem768 | None = None
    not_before: EpochMillis
    not_after: EpochMillis

    @property
    def public(self) -> PublicEncryptionKey:
        return self.key_for("")

    def key_for(self, agency: str) -> PublicEncryptionKey:
        mlkem = None if self.mlkem768 is None else bytes.fromhex(self.mlkem768)
        return PublicEncryptionKey.from_raw(agency, bytes.fromhex(self.x25519), mlkem)


class KeyBundle(_Doc):
    """An agency's encryption keys, signed by its signing key; ``seq`` only ever grows."""

    kind: Literal["key-bundle"] = "key-bundle"
    agency: AgencyId
    seq: int = Field(ge=1)
    issued: EpochMillis
    keys: list[EncryptionKeyEntry] = Field(min_length=1, max_length=MAX_BUNDLE_KEYS)


def bundle_for(
    agency: str, keys: list[PublicEncryptionKey], *, now: datetime, days: int, seq: int = 1
) -> KeyBundle:
    """A key bundle listing ``keys``, valid from a few minutes ago (clock skew) for ``days``."""
    start = now - timedelta(minutes=5)
    entries = [
        EncryptionKeyEntry(
            kid=k.kid,
            x25519=k.raw.hex(),
            mlkem768=None if k.mlkem_raw is None else k.mlkem_raw.hex(),
            not_before=start,
            not_after=now + timedelta(days=days),
        )
        for k in keys
    ]
    return KeyBundle(agency=agency, seq=seq, issued=now, keys=entries)


class RevocationEntry(_Doc):
    agency: AgencyId
    kid: KeyId | None = Field(default=None, description="One key; absent revokes the agency.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    revoked_at: EpochMillis


class RevocationList(_Doc):
    """The root's list of revoked agencies and keys; ``seq`` only ever grows.

    ``next_update`` says when the root will have signed the next list: past it the list held is
    stale (a newer one may be withheld), which raises an alarm but never stops delivery and
    never lets an older list in (docs/decisions/0014). Absent in lists signed before it
    existed, and then left out of the canonical JSON, so their signatures still verify.
    """

    kind: Literal["revocation-list"] = "revocation-list"
    seq: int = Field(ge=1)
    issued: EpochMillis
    next_update: EpochMillis | None = None
    entries: list[RevocationEntry] = Field(default_factory=list, max_length=MAX_REVOCATIONS)


class TopicFilter(_Doc):
    """One registered interest: a route topic, optionally narrowed to categories and kinds."""

    route: Route | Literal["*"]
    categories: list[Category] = Field(default_factory=list, max_length=8)
    kinds: list[Kind] = Field(default_factory=list, max_length=16)

    def matches(self, route: Route, category: Category, kind: Kind) -> bool:
        return (
            (self.route == "*" or self.route == route)
            and (not self.categories or category in self.categories)
            and (not self.kinds or kind in self.kinds)
        )


class Subscriptions(_Doc):
    """A partner's registered interest (its route topics), signed by the partner."""

    kind: Literal["subscriptions"] = "subscriptions"
    agency: AgencyId
    seq: int = Field(ge=1)
    issued: EpochMillis
    filters: list[TopicFilter] = Field(default_factory=list, max_length=64)

    def matches(self, route: Route, category: Category, kind: Kind) -> bool:
        return any(f.matches(route, category, kind) for f in self.filters)


Doc = TypeVar("Doc", bound=BaseModel)


def _kind(doc: BaseModel) -> str:
    kind = getattr(doc, "kind", None)
    if not isinstance(kind, str):
        raise TrustError(f"{type(doc).__name__} has no 'kind' and cannot be signed")
    return kind


def _domain(kind: str) -> bytes:
    return _DOMAIN.format(kind=kind).encode()


def sign_document(doc: BaseModel, key: SigningKey, signer: str) -> dict[str, Any]:
    """Sign a validated document; ``signer`` is ``ROOT`` or the agency id."""
    body = doc.model_dump(mode="json", exclude_none=True)
    sig = crypto.sign(key.private, _domain(_kind(doc)), canonical_json(body))
    return {"document": body, "signature": {"signer": signer, "kid": key.kid, "ed25519": sig.hex()}}


def verify_document(
    data: Mapping[str, Any], model: type[Doc], expected: PublicSigningKey, signer: str
) -> Doc:
    """Check the signature against the one key that may have made it, then the schema."""
    try:
        body, sig = data["document"], data["signature"]
        sig_signer, kid, raw = sig["signer"], sig["kid"], bytes.fromhex(sig["ed25519"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustError(
            "not a signed Palermo document: it needs 'document' and 'signature' "
            "{signer, kid, ed25519}; was it signed with 'palermo policy sign'?"
        ) from exc
    if sig_signer != signer or kid != expected.kid:
        raise UnknownIssuer(
            f"signed by {sig_signer} key {kid}, but only {signer} key {expected.kid} may sign "
            f"this document; check that you pinned the right federation root"
        )
    kind = body.get("kind") if isinstance(body, dict) else None
    if not isinstance(kind, str):
        raise TrustError("signed document has no 'kind'")
    try:
        crypto.verify(expected.key, raw, _domain(kind), canonical_json(body))
    except crypto.AuthError as exc:
        raise SignatureInvalid(
            f"the {kind} was altered after it was signed (signature by {signer} does not verify)"
        ) from exc
    try:
        doc = model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TrustError(f"signed {kind} fails its schema at {where}: {first['msg']}") from exc
    # Refuse a body that only verifies because validation dropped or changed something.
    if canonical_json(doc.model_dump(mode="json", exclude_none=True)) != canonical_json(body):
        raise TrustError(f"signed {kind} is not in canonical form")
    return doc
