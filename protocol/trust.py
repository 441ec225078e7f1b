"""Federation trust documents: pure data and signatures, no I/O.

    federation root key ──signs──► membership certificate (agency, country, groups,
                         │                                 accreditation, signing key, validity)
                         ├─signs──► revocation list
                         └─signs──► federation policy
    agency signing key ──signs──► key bundle (encryption keys with validity periods)
                         └─signs──► the agency's standing policy, membership request

A signed document is ``{"document": {...}, "signature": {"signer", "kid", "ed25519"}}``. The
signature covers a domain string for the document's kind and the canonical JSON of the validated
document (sorted keys, no whitespace), so reformatting a file never breaks a signature and any
change of meaning always does. :class:`TrustStore` holds what has been verified against the
pinned root and answers key look-ups for envelopes (it is a ``SignerResolver``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

from protocol import crypto
from protocol._trust_documents import (
    MAX_BUNDLE_KEYS,
    REVOCATION_LIST_VALIDITY,
    ROOT,
    EncryptionKeyEntry,
    KeyBundle,
    MembershipCertificate,
    MembershipRequest,
    RevocationEntry,
    RevocationList,
    Subscriptions,
    TopicFilter,
    _unusable_x25519,
    _utcnow,
    bundle_for,
    canonical_json,
    sign_document,
    verify_document,
)
from protocol._trust_documents import _domain as _domain  # the identity attack tests sign with it
from protocol.keys import PublicEncryptionKey, PublicSigningKey
from protocol.marks import REVOCATIONS_KEY, HighWaterMarks
from protocol.marks import digest as _digest
from schemas.errors import (
    KeyNotValid,
    NotValidNow,
    Revoked,
    TrustError,
    UnknownIssuer,
    UnknownSigner,
)

# The broker signs its notices to originators under this domain (Broker._notice); an
# originator's node verifies them with the broker's key (node/_status.py).
BROKER_NOTICE_DOMAIN: Final[bytes] = b"palermo/v1/broker-notice\x00"

__all__ = [
    "BROKER_NOTICE_DOMAIN",
    "MAX_BUNDLE_KEYS",
    "REVOCATION_LIST_VALIDITY",
    "ROOT",
    "EncryptionKeyEntry",
    "KeyBundle",
    "MembershipCertificate",
    "MembershipRequest",
    "RevocationEntry",
    "RevocationList",
    "Subscriptions",
    "TopicFilter",
    "TrustStore",
    "bundle_for",
    "canonical_json",
    "sign_document",
    "verify_document",
]


class TrustStore:
    """What has been verified against the pinned root: members, keys, revocations.

    Pure: the directory (JetStream key-value) or files feed it signed documents; it verifies each
    before use and answers look-ups for envelope verification and sealing.
    """

    def __init__(
        self,
        root: PublicSigningKey,
        marks: HighWaterMarks | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.root = root
        # What "now" is when a document arrives (is its signer valid now?); tests pin it.
        self._clock = clock or _utcnow
        # The highest version accepted per directory key, in this run and (seeded by the
        # directory from the state dir) earlier ones: nothing below them is ever adopted.
        self.marks = marks if marks is not None else HighWaterMarks()
        self._certs: dict[str, MembershipCertificate] = {}
        self._bundles: dict[str, KeyBundle] = {}
        self._revocations = RevocationList(seq=1, issued=0, entries=[])
        self._revocation_seq = 0
        self._subscriptions: dict[str, Subscriptions] = {}
        # Parsed once per certificate: every envelope verified looks its signer up here.
        self._signing_keys: dict[str, PublicSigningKey] = {}
        # The signing kid behind each held bundle and subscriptions, by directory key
        # ("bundle.<A>", "subs.<A>"): when that key is replaced or revoked they are dropped.
        self._signed_by: dict[str, str] = {}
        self._on_drop: list[Callable[[str, str | None], None]] = []

    @property
    def members(self) -> Mapping[str, MembershipCertificate]:
        return self._certs

    @property
    def revocations(self) -> RevocationList:
        return self._revocations

    @property
    def revocation_seq(self) -> int:
        """The seq of the revocation list held; 0 before any was accepted."""
        return self._revocation_seq

    def add_certificate(self, signed: Mapping[str, Any]) -> MembershipCertificate:
        cert = verify_document(signed, MembershipCertificate, self.root, ROOT)
        # An older serial, or a different certificate under the serial held: refused (Rollback),
        # also across restarts through the persisted marks.
        key, cert_digest = f"cert.{cert.agency}", _digest(cert)
        self.marks.check(key, cert.serial, cert_digest, "membership certificate", "serial")
        self._certs[cert.agency] = cert
        self.marks.raise_to(key, cert.serial, cert_digest)
        previous = self._signing_keys.get(cert.agency)
        self._signing_keys[cert.agency] = cert.public_signing_key
        if previous is not None and previous.kid != cert.public_signing_key.kid:
            # A new signing key: what the old one signed is no longer the agency's word (the
            # old key may be the reason for the change); the agency re-signs with the new key.
            self._drop_signed_by(cert.agency, previous.kid)
        return cert

    def add_bundle(self, signed: Mapping[str, Any]) -> KeyBundle:
        cert = self.document_signer(signed, "key bundle")
        bundle = verify_document(signed, KeyBundle, cert.public_signing_key, cert.agency)
        mark_key, bundle_digest = f"bundle.{bundle.agency}", _digest(bundle)
        self.marks.check(mark_key, bundle.seq, bundle_digest, "key bundle", "seq")
        current = self._bundles.get(bundle.agency)
        if current is not None and current.seq >= bundle.seq:
            if current == bundle:
                return current
            raise TrustError(
                f"key bundle seq {bundle.seq} for {bundle.agency} is not newer than {current.seq}"
            )
        for entry in bundle.keys:
            if entry.mlkem768 is not None and not crypto.mlkem768_modulus_ok(
                bytes.fromhex(entry.mlkem768)
            ):
                raise TrustError(
                    f"key bundle for {bundle.agency}: encryption key {entry.kid} is not a valid "
                    "ML-KEM-768 key: a coefficient is not below q = 3329 (FIPS 203 7.2); "
                    "generate a new key (palermo keys rotate --pq)"
                )
            try:
                key = entry.key_for(bundle.agency)
            except ValueError as exc:  # an ML-KEM key cryptography refuses to load
                raise TrustError(
                    f"key bundle for {bundle.agency}: encryption key {entry.kid} is not a valid "
                    f"ML-KEM-768 key: {exc}"
                ) from exc
            if key.kid != entry.kid:
                raise TrustError(f"key bundle for {bundle.agency}: kid {entry.kid} does not match")
            unusable = _unusable_x25519(bytes.fromhex(entry.x25519))
            if unusable is not None:
                # Every publisher would fail to seal to it (libsodium refuses an all-zero
                # secret): one member's bad key must not block everyone's reports to it.
                raise KeyNotValid(
                    f"key bundle for {bundle.agency}: encryption key {entry.kid} is "
                    f"{unusable}; generate a new key and publish a bundle without this one"
                )
        self._bundles[bundle.agency] = bundle
        self._signed_by[f"bundle.{bundle.agency}"] = cert.public_signing_key.kid
        self.marks.raise_to(mark_key, bundle.seq, bundle_digest)
        return bundle

    def document_signer(self, signed: Mapping[str, Any], what: str) -> MembershipCertificate:
        """The certificate whose key may sign this member document, if that key is valid now.

        The signature itself is checked by the caller (``verify_document`` with the key
        returned); here: the key named is the certificate's current one, neither the agency
        nor the key is revoked, and the certificate is valid now.
        """
        document = signed.get("document") if isinstance(signed, Mapping) else None
        agency = document.get("agency") if isinstance(document, Mapping) else None
        signature = signed.get("signature") if isinstance(signed, Mapping) else None
        kid = signature.get("kid") if isinstance(signature, Mapping) else None
        cert = self._certs.get(agency) if isinstance(agency, str) else None
        if cert is None:
            raise UnknownIssuer(f"{what} for {agency!r}, which has no membership certificate")
        if not isinstance(kid, str):
            return cert  # a malformed signature block: verify_document refuses it, saying so
        return self.member_signer(cert.agency, kid, self._clock(), what)

    def member_signer(
        self, agency: str, kid: str, at: datetime, what: str = "document"
    ) -> MembershipCertificate:
        """The certificate of ``agency`` if ``kid`` may sign its documents at ``at``.

        Only the key of the agency's current certificate may, while that certificate is valid
        and while no revocation held names the agency or the key. A document's signing time
        cannot be known (``issued`` is whatever the signer wrote, and the thief of a key writes
        what it likes), so a key named on the list signs nothing from the moment the list is
        held, whatever its ``revoked_at``. Raises ``UnknownIssuer``, ``Revoked`` or
        ``NotValidNow``.
        """
        cert = self._certs.get(agency)
        if cert is None:
            raise UnknownIssuer(f"{what} for {agency!r}, which has no membership certificate")
        current = cert.public_signing_key.kid
        if kid != current:
            raise UnknownIssuer(
                f"{what} of {agency} is signed with key {kid}, but its certificate (serial "
                f"{cert.serial}) certifies key {current}; a replaced or revoked key signs "
                "nothing: sign it again with the current key"
            )
        for entry in self._revocations.entries:
            if entry.agency == agency and entry.kid in (None, kid):
                raise Revoked(
                    f"{what} of {agency} is signed with key {kid}, which the revocation list "
                    f"(seq {self._revocation_seq}) revokes: {entry.reason}; a revoked key "
                    "signs nothing, the agency needs a new certificate"
                )
        if not cert.not_before <= at < cert.not_after:
            raise NotValidNow(
                f"{what} of {agency}: its certificate is valid {cert.not_before:%Y-%m-%d} to "
                f"{cert.not_after:%Y-%m-%d}, not at {at:%Y-%m-%dT%H:%MZ}; ask the federation "
                "operator to renew it"
            )
        return cert

    def on_drop(self, listener: Callable[[str, str | None], None]) -> None:
        """Call ``listener(agency, kid)`` when documents signed by that key must be dropped.

        ``kid`` None: every key of the agency (it is revoked). The policy view uses it for the
        standing policies it holds; bundles and subscriptions are dropped here.
        """
        self._on_drop.append(listener)

    def _drop_signed_by(self, agency: str, kid: str | None) -> None:
        """Forget what ``agency``'s key ``kid`` (None: any of its keys) signed."""
        for key in (f"bundle.{agency}", f"subs.{agency}"):
            signer = self._signed_by.get(key)
            if signer is not None and kid in (None, signer):
                del self._signed_by[key]
                if key.startswith("bundle."):
                    self._bundles.pop(agency, None)
                else:
                    self._subscriptions.pop(agency, None)
        for listener in self._on_drop:
            listener(agency, kid)

    def set_subscriptions(self, signed: Mapping[str, Any]) -> Subscriptions:
        cert = self.document_signer(signed, "subscriptions")
        subs = verify_document(signed, Subscriptions, cert.public_signing_key, cert.agency)
        # Older, or different under the seq held (item 12): a publisher would otherwise seal
        # for whatever topics the last writer of subs.<A> chose.
        key, subs_digest = f"subs.{subs.agency}", _digest(subs)
        self.marks.check(key, subs.seq, subs_digest, "subscriptions", "seq")
        self._subscriptions[subs.agency] = subs
        self._signed_by[key] = cert.public_signing_key.kid
        self.marks.raise_to(key, subs.seq, subs_digest)
        return subs

    @property
    def subscriptions(self) -> Mapping[str, Subscriptions]:
        return self._subscriptions

    @property
    def bundles(self) -> Mapping[str, KeyBundle]:
        return self._bundles

    def set_revocations(self, signed: Mapping[str, Any]) -> RevocationList:
        rl = verify_document(signed, RevocationList, self.root, ROOT)
        # An older list would un-revoke keys; a second list under the same seq must never
        # un-revoke anyone either (two operators revoking at once): the later one has to take
        # the next seq. The mark also carries the seq seen by earlier runs of this process.
        rl_digest = _digest(rl)
        self.marks.check(REVOCATIONS_KEY, rl.seq, rl_digest, "revocation list", "seq")
        named = {(e.agency, e.kid) for e in self._revocations.entries}
        self._revocations, self._revocation_seq = rl, rl.seq
        self.marks.raise_to(REVOCATIONS_KEY, rl.seq, rl_digest)
        # What a newly revoked key (or agency) signed goes at once: the thief of a key must not
        # keep the agency's encryption keys, topics or standing policy it may have published.
        for agency, kid in sorted({(e.agency, e.kid) for e in rl.entries} - named, key=str):
            self._drop_signed_by(agency, kid)
        return rl

    def revocation_list_overdue(self, at: datetime) -> timedelta | None:
        """How long past its ``next_update`` the list held is at ``at``; None while current.

        A list without ``next_update`` (signed before it existed) is never overdue.
        """
        next_update = self._revocations.next_update if self._revocation_seq else None
        if next_update is None or at < next_update:
            return None
        return at - next_update

    def revocation_seconds_left(self, at: datetime) -> float:
        """Seconds until the list held reaches ``next_update`` (negative past it; inf: none)."""
        next_update = self._revocations.next_update if self._revocation_seq else None
        return float("inf") if next_update is None else (next_update - at).total_seconds()

    def warnings(self, at: datetime | None = None) -> list[str]:
        """What an operator must act on while the service keeps running (for /readyz)."""
        overdue = self.revocation_list_overdue(self._clock() if at is None else at)
        if overdue is None:
            return []
        rl = self._revocations
        return [
            f"revocation list seq {rl.seq} passed its next_update "
            f"({rl.next_update:%Y-%m-%dT%H:%MZ}, {int(overdue.total_seconds())} s ago): a newer "
            "list may be withheld from this process; deliveries go on under this one. The "
            "federation operator re-issues it with 'palermo federation revoke --renew' and "
            "publishes it with 'palermo directory publish'"
        ]

    def revoked(self, agency: str, kid: str | None, at: datetime) -> RevocationEntry | None:
        for entry in self._revocations.entries:
            if entry.agency == agency and entry.kid in (None, kid) and entry.revoked_at <= at:
                return entry
        return None

    def certificate(self, agency: str, at: datetime) -> MembershipCertificate:
        """A member's certificate, valid and not revoked at ``at``."""
        cert = self._certs.get(agency)
        if cert is None:
            raise UnknownIssuer(f"{agency} is not a member of this federation (no certificate)")
        if not cert.not_before <= at < cert.not_after:
            raise NotValidNow(
                f"{agency}'s membership certificate is valid {cert.not_before:%Y-%m-%d} to "
                f"{cert.not_after:%Y-%m-%d}; ask the federation operator to renew it"
            )
        entry = self.revoked(agency, None, at)
        if entry is not None:
            raise Revoked(
                f"{agency} was revoked at {entry.revoked_at:%Y-%m-%dT%H:%MZ}: {entry.reason}"
            )
        return cert

    # --- the envelope layer's SignerResolver -------------------------------------------------

    def signing_key(self, agency: str, kid: str, at: datetime) -> Ed25519PublicKey:
        public = self._signing_keys.get(agency)
        if public is None or public.kid != kid:
            raise UnknownSigner(agency, kid)
        try:
            self.certificate(agency, at)
        except TrustError as exc:
            raise KeyNotValid(f"signing key {kid} of {agency} is not valid: {exc.reason}") from exc
        if self.revoked(agency, kid, at) is not None:
            raise KeyNotValid(f"signing key {kid} of {agency} is revoked")
        return public.key

    def encryption_keys(self, agency: str, at: datetime) -> list[PublicEncryptionKey]:
        """Keys to wrap for at ``at``, newest first; empty if the agency cannot receive."""
        cert = self.certificate(agency, at)
        bundle = self._bundles.get(agency)
        signer = self._signed_by.get(f"bundle.{agency}")
        # Only keys vouched for by the key the agency's certificate names today, and not
        # revoked: a bundle from a replaced or revoked signing key would hand its keys' owner
        # (the thief of that key) every report sealed for the agency.
        if bundle is None or signer != cert.public_signing_key.kid:
            return []
        if any(e.agency == agency and e.kid == signer for e in self._revocations.entries):
            return []
        valid = [
            e
            for e in bundle.keys
            if e.not_before <= at < e.not_after and self.revoked(agency, e.kid, at) is None
        ]
        valid.sort(key=lambda e: e.not_before, reverse=True)
        return [e.key_for(agency) for e in valid]

    def add(self, signed: Mapping[str, Any]) -> BaseModel:
        """Verify and hold any trust document, by its kind."""
        document = signed.get("document") if isinstance(signed, Mapping) else None
        kind = document.get("kind") if isinstance(document, Mapping) else None
        handlers = {
            "membership-certificate": self.add_certificate,
            "revocation-list": self.set_revocations,
            "key-bundle": self.add_bundle,
            "subscriptions": self.set_subscriptions,
        }
        handler = handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise TrustError(f"unknown trust document kind {kind!r}")
        return handler(signed)

    def load(self, documents: Iterable[Mapping[str, Any]]) -> None:
        """Add certificates first, then revocations, then the rest, whatever order they come in."""
        order = {"membership-certificate": 0, "revocation-list": 1}

        def rank(d: Mapping[str, Any]) -> tuple[int, int]:
            # Kinds in dependency order; within a kind, older versions first, so a source
            # holding several versions ends with the newest instead of refusing a rollback.
            document = d.get("document") if isinstance(d, Mapping) else None
            if not isinstance(document, Mapping):
                return (2, 0)
            kind = document.get("kind")
            version = document.get("serial", document.get("seq", 0))
            return (
                order.get(kind, 2) if isinstance(kind, str) else 2,
                version if isinstance(version, int) else 0,
            )

        for doc in sorted(documents, key=rank):
            self.add(doc)
