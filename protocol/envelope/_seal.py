"""Seal and open envelopes: the wire format composed with the crypto primitives.

Order of checks when opening (each refusal has its own typed error until a key is used):
size and version prefix, msgpack shape and limits, canonical encoding, header schema, stanza and
section consistency with the header, clock skew, signer key, signature, replay, our stanza, no
section the caller withholds wrapped for us; then key unwrapping and decryption, whose failures
all surface as ``AuthenticationFailed``. A section the caller withholds is never decrypted.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from schemas import EnvelopeHeader
from schemas.errors import (
    AuthenticationFailed,
    ClockSkew,
    EnvelopeTooLarge,
    HeaderInvalid,
    InputError,
    MalformedEnvelope,
    NonCanonicalEncoding,
    NotARecipient,
    Replayed,
    SectionWithheld,
    UnknownSigner,
)

from .. import crypto
from ..keys import EncryptionKey, PublicEncryptionKey, PublicSigningKey, SigningKey
from ._format import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    HDR_OFFSET,
    SUITE_MLKEM768_X25519,
    SUITE_X25519,
    VERSION,
    Envelope,
    Section,
    Stanza,
    _canon,
    canonical_packb,
    decode,
    encode,
    signed_prefix,
)
from ._wrap import (
    INFO_STANZA as INFO_STANZA,
)
from ._wrap import (
    _Randomness,
    _section_part,
    _stanza_info,
    _wrap,
    choose_suite,
)

__all__ = [
    "DEFAULT_MAX_CLOCK_SKEW_MS",
    "Opened",
    "SignerResolver",
    "StaticSigners",
    "Unverified",
    "Verified",
    "check_signature",
    "choose_suite",
    "inspect_envelope",
    "open_envelope",
    "open_verified",
    "seal",
    "verify_envelope",
]

DOMAIN_SIGNATURE: Final[bytes] = b"palermo/v1/envelope-signature\x00"
DOMAIN_HEADER: Final[bytes] = b"palermo/v1/header\x00"
PART_BODY: Final[bytes] = b"body"
DEFAULT_MAX_CLOCK_SKEW_MS: Final[int] = 5 * 60 * 1000
MAX_STANZAS_PER_AGENCY: Final[int] = 4
_NO_SIG: Final[bytes] = bytes(64)


class SignerResolver(Protocol):
    """Finds an originator's verification key; raises UnknownSigner or KeyNotValid."""

    def signing_key(self, agency: str, kid: str, at: datetime) -> Ed25519PublicKey: ...


@dataclass(frozen=True)
class StaticSigners:
    """A fixed set of verification keys (tests, the demo, the CLI with explicit key files)."""

    keys: Mapping[tuple[str, str], Ed25519PublicKey]

    @classmethod
    def of(cls, keys: Iterable[PublicSigningKey]) -> StaticSigners:
        return cls({(k.agency, k.kid): k.key for k in keys})

    def signing_key(self, agency: str, kid: str, at: datetime) -> Ed25519PublicKey:
        try:
            return self.keys[(agency, kid)]
        except KeyError:
            raise UnknownSigner(agency, kid) from None


@dataclass(frozen=True, slots=True)
class Verified:
    """An envelope whose structure, header and signature have been checked (the broker's view)."""

    header: EnvelopeHeader
    envelope: Envelope
    size: int
    header_hash: bytes = field(repr=False)
    """SHA-256 of the canonical header: the AAD of every part."""

    def stanza_agencies(self, section: str | None = None) -> frozenset[str]:
        """Agencies holding a key stanza for the body, or for the named section."""
        if section is None:
            return frozenset(s.agency for s in self.envelope.rcpt)
        for sec in self.envelope.sections:
            if sec.id == section:
                return frozenset(s.agency for s in sec.rcpt)
        return frozenset()


@dataclass(frozen=True, slots=True)
class Opened:
    """What a recipient may read: the body and the sections wrapped for it."""

    header: EnvelopeHeader
    body: bytes = field(repr=False)
    sections: Mapping[str, bytes] = field(repr=False)
    withheld: tuple[str, ...]


def header_digest(hdr: Mapping[str, object], *, hdr_sorted: bool = False) -> bytes:
    packed = msgpack.packb(hdr, use_bin_type=True) if hdr_sorted else canonical_packb(dict(hdr))
    return crypto.digest(DOMAIN_HEADER, packed)


def seal(
    header: EnvelopeHeader,
    body: bytes,
    signer: SigningKey,
    recipients: Sequence[PublicEncryptionKey],
    sections: Mapping[str, tuple[bytes, Sequence[PublicEncryptionKey]]] | None = None,
    *,
    max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
    suite: int | None = None,
    _randomness: _Randomness | None = None,
) -> bytes:
    """Sign and encrypt ``body`` (and each section) for the given recipient keys.

    The header must already name exactly these recipients and sections: the envelope is
    self-consistent or it is not produced at all. ``suite``: None picks suite 2 when every key
    is hybrid, else suite 1 (:func:`choose_suite`); 1 seals to the X25519 part of hybrid keys
    too; 2 refuses if a key is not hybrid.
    """
    sections = sections or {}
    everyone = [*recipients, *(k for _, readers in sections.values() for k in readers)]
    if suite is None:
        suite = choose_suite(everyone)
    elif suite not in (SUITE_X25519, SUITE_MLKEM768_X25519):
        raise InputError(f"suite {suite} does not exist; envelope v1 has suites 1 and 2")
    else:
        choose_suite(everyone, suite)
    if (header.originator, header.kid) != (signer.agency, signer.kid):
        raise InputError(
            f"header says originator {header.originator} key {header.kid}, but the signing key "
            f"is {signer.agency} key {signer.kid}"
        )
    if sorted({r.agency for r in recipients}) != header.recipients:
        raise InputError("recipient keys must cover exactly the header's recipients")
    pairs = [(r.agency, r.kid) for r in recipients]
    if len(pairs) != len(set(pairs)):
        raise InputError("the same recipient key is given twice")
    if max(Counter(r.agency for r in recipients).values()) > MAX_STANZAS_PER_AGENCY:
        raise InputError(
            f"at most {MAX_STANZAS_PER_AGENCY} keys per recipient agency (openers refuse more)"
        )
    if [s.id for s in header.sections] != sorted(sections):
        raise InputError("sealed sections must match the header's section list")
    rand = _randomness or _Randomness()
    envelope_id = uuid.UUID(header.id).bytes
    hdr = _canon(header.to_wire())
    hdr_hash = header_digest(hdr, hdr_sorted=True)
    rcpt, sealed_body = _wrap(rand, suite, envelope_id, PART_BODY, hdr_hash, body, recipients)
    sealed_sections = []
    for sid in sorted(sections):
        plaintext, readers = sections[sid]
        if not {r.agency for r in readers} <= set(header.recipients):
            raise InputError(f"section {sid} names readers that are not recipients")
        srcpt, sbody = _wrap(
            rand, suite, envelope_id, _section_part(sid), hdr_hash, plaintext, readers
        )
        sealed_sections.append(Section(sid, srcpt, sbody))
    unsigned = encode(
        Envelope(VERSION, suite, hdr, rcpt, sealed_body, tuple(sealed_sections), _NO_SIG),
        hdr_sorted=True,
    )
    # The signature is the last 64 bytes: sign everything before its field, then fill it in.
    sig = crypto.sign(signer.private, DOMAIN_SIGNATURE, signed_prefix(unsigned))
    data = unsigned[: -len(sig)] + sig
    if len(data) > max_size:
        raise EnvelopeTooLarge(len(data), max_size)
    return data


def _parse_header(env: Envelope, data: bytes) -> tuple[EnvelopeHeader, bytes]:
    """The validated header and its canonical encoding (what the header hash covers).

    ``data`` is the envelope ``env`` was decoded from: its header bytes are compared as they
    are, not encoded again (msgpack is self-delimiting, so a complete encoding found at the
    header's offset is the whole header)."""
    try:
        header = EnvelopeHeader.model_validate(env.hdr)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        first = errors[0]
        raise HeaderInvalid(
            f"header fails the schema at {first['field']}: {first['message']}", errors
        ) from exc
    # Compare encodings, not Python values: 0 == False and 1 == 1.0 in Python, never on the wire.
    packed = canonical_packb(header.to_wire())
    if not data.startswith(packed, HDR_OFFSET):
        raise NonCanonicalEncoding(
            "header values are not in canonical form (sorted lists, times in ms, and fields "
            "at their default value left out)"
        )
    return header, packed


def _check_consistency(header: EnvelopeHeader, env: Envelope) -> None:
    recipients = set(header.recipients)
    counts: dict[str, int] = {}
    for s in env.rcpt:
        if s.agency not in recipients:
            raise MalformedEnvelope(f"stanza for {s.agency}, which is not a listed recipient")
        counts[s.agency] = counts.get(s.agency, 0) + 1
    if set(counts) != recipients:
        missing = ", ".join(sorted(recipients - set(counts)))
        raise MalformedEnvelope(f"no key stanza for listed recipients: {missing}")
    if max(counts.values()) > MAX_STANZAS_PER_AGENCY:
        raise MalformedEnvelope(f"more than {MAX_STANZAS_PER_AGENCY} stanzas for one agency")
    if [s.id for s in env.sections] != [s.id for s in header.sections]:
        raise MalformedEnvelope("sealed sections do not match the header's section list")
    for sec in env.sections:
        strays = {s.agency for s in sec.rcpt} - recipients
        if strays:
            raise MalformedEnvelope(f"section {sec.id} is wrapped for non-recipients: {strays}")


@dataclass(frozen=True, slots=True)
class Unverified:
    """An envelope that passed every check except its signature (see :func:`check_signature`).

    The split lets a broker verify a whole batch's signatures on worker threads: Ed25519
    verification releases the GIL, the Python checks do not.
    """

    verified: Verified
    public: Ed25519PublicKey
    signed: bytes


def inspect_envelope(
    data: bytes,
    signers: SignerResolver,
    *,
    now: datetime,
    max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
) -> Unverified:
    """Format, header, consistency, clock skew and the signer's key; not the signature."""
    env = decode(data, max_size)
    header, packed_header = _parse_header(env, data)
    _check_consistency(header, env)
    skew = int((header.created - now).total_seconds() * 1000)
    if skew > max_clock_skew_ms:
        raise ClockSkew(skew, max_clock_skew_ms)
    # Key validity and revocation are judged at verification time, not at the header's
    # "created": a stolen key must not be able to sign past its revocation by backdating.
    public = signers.signing_key(header.originator, header.kid, now)
    verified = Verified(header, env, len(data), crypto.digest(DOMAIN_HEADER, packed_header))
    return Unverified(verified, public, signed_prefix(data))


def check_signature(item: Unverified) -> Verified:
    """The last check: the originator's Ed25519 signature over everything before it."""
    try:
        crypto.verify(item.public, item.verified.envelope.sig, DOMAIN_SIGNATURE, item.signed)
    except crypto.AuthError as exc:
        raise AuthenticationFailed("signature") from exc
    return item.verified


def verify_envelope(
    data: bytes,
    signers: SignerResolver,
    *,
    now: datetime,
    max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
) -> Verified:
    """Every check that needs no private key: what the broker does before deciding policy."""
    return check_signature(
        inspect_envelope(
            data, signers, now=now, max_size=max_size, max_clock_skew_ms=max_clock_skew_ms
        )
    )


def _unwrap(
    suite: int,
    envelope_id: bytes,
    stanzas: Sequence[Stanza],
    part: bytes,
    sealed: bytes,
    keys: Mapping[tuple[str, str], EncryptionKey],
    hdr_hash: bytes,
) -> bytes | None:
    stanza = next((s for s in stanzas if (s.agency, s.kid) in keys), None)
    if stanza is None:
        return None
    key = keys[(stanza.agency, stanza.kid)]
    info = _stanza_info(envelope_id, stanza.agency, stanza.kid, part)
    try:
        if suite == SUITE_MLKEM768_X25519:
            if key.hybrid_private is None:  # a hybrid kid covers the ML-KEM key: not ours
                raise crypto.AuthError("suite-2 stanza for an X25519-only key")
            content_key = crypto.hpke_open_hybrid(key.hybrid_private, info, stanza.enc)
        else:
            content_key = crypto.hpke_open_x25519(key.private, info, stanza.enc)
        part_key = crypto.derive_part_key(content_key, envelope_id, part)
        return crypto.aead_open(part_key, sealed, hdr_hash + b"\x00" + part)
    except crypto.AuthError as exc:
        raise AuthenticationFailed(str(exc)) from exc


def _not_a_recipient(
    envelope_id: str,
    stanzas: Sequence[Stanza],
    keys: Mapping[tuple[str, str], EncryptionKey],
    agencies: Sequence[str],
) -> str:
    """Why none of our keys opens the envelope, as it is: key rotation is named only when the
    envelope was wrapped for this agency under a key it no longer holds."""
    ours = sorted({s.kid for s in stanzas if s.agency in agencies})
    if not ours:
        return (
            f"envelope {envelope_id} holds no key for {', '.join(agencies)}: it was not sealed "
            "for this agency"
        )
    held = ", ".join(sorted(kid for _, kid in keys))
    return (
        f"envelope {envelope_id} was sealed for key {', '.join(ours)} of {', '.join(agencies)}, "
        f"which this node does not hold (it holds {held}); after a key rotation keep the "
        "previous key in encryption_keys until its overlap ends"
    )


def open_verified(
    verified: Verified,
    identity: Sequence[EncryptionKey],
    *,
    withhold: Collection[str] = (),
) -> Opened:
    """Decrypt a verified envelope for one agency, trying each of its current decryption keys.

    ``withhold`` names the sections this agency's own policy decision keeps from it (the
    receiving node decides on the signed header before calling this). They are never
    decrypted; if one is wrapped for this agency anyway the delivery is refused with
    ``SectionWithheld`` before any key is used, since the originator's node broke the policy.
    """
    header, env, hdr_hash = verified.header, verified.envelope, verified.header_hash
    keys = {(k.agency, k.kid): k for k in identity}
    agencies = sorted({k.agency for k in identity})
    if not any((s.agency, s.kid) in keys for s in env.rcpt):
        raise NotARecipient(_not_a_recipient(header.id, env.rcpt, keys, agencies))
    for sec in env.sections:
        wrapped_for = {s.agency for s in sec.rcpt}
        if sec.id in withhold and not wrapped_for.isdisjoint(agencies):
            raise SectionWithheld(sec.id, ", ".join(sorted(wrapped_for & set(agencies))))
    envelope_id = uuid.UUID(header.id).bytes
    body = _unwrap(env.suite, envelope_id, env.rcpt, PART_BODY, env.body, keys, hdr_hash)
    assert body is not None  # a stanza for one of our keys was found above
    opened: dict[str, bytes] = {}
    withheld = []
    for sec in env.sections:
        plain = (
            None
            if sec.id in withhold
            else _unwrap(
                env.suite, envelope_id, sec.rcpt, _section_part(sec.id), sec.body, keys, hdr_hash
            )
        )
        if plain is None:
            withheld.append(sec.id)
        else:
            opened[sec.id] = plain
    return Opened(header, body, opened, tuple(withheld))


def open_envelope(
    data: bytes,
    identity: Sequence[EncryptionKey],
    signers: SignerResolver,
    *,
    now: datetime,
    seen: Callable[[str], bool] | None = None,
    withhold: Collection[str] = (),
    max_size: int = DEFAULT_MAX_ENVELOPE_BYTES,
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS,
) -> Opened:
    """Verify and decrypt for one agency: :func:`verify_envelope`, the replay check, then
    :func:`open_verified` (``withhold``: sections never to decrypt).

    ``seen`` answers whether an envelope id was already accepted (replay protection); the caller
    records the id only once it has stored the result.
    """
    verified = verify_envelope(
        data, signers, now=now, max_size=max_size, max_clock_skew_ms=max_clock_skew_ms
    )
    if seen is not None and seen(verified.header.id):
        raise Replayed(verified.header.id)
    return open_verified(verified, identity, withhold=withhold)
