"""Every error Palermo raises, in one hierarchy with one root.

This module imports nothing else of ours, so any layer can raise from it.

    PalermoError                      root: catch this to catch everything of ours
    ├── InputError                    the caller gave us something we cannot use
    │   ├── ReportInvalid             a report or header fails the schema (field-level errors)
    │   ├── ConfigError               a configuration file or value is wrong
    │   │   └── StreamsNotProvisioned a stream or the directory bucket is missing or differs
    │   ├── Unauthenticated           a request without valid credentials (node ingest)
    │   └── KindNotPublishable        ``publish`` of a kind that has its own command
    ├── KeyFileError                  a key file is missing, unreadable, too open, or wrongly locked
    ├── EnvelopeError                 an envelope was refused (wire format or authentication)
    │   ├── EnvelopeTooLarge          bigger than the configured limit, refused before parsing
    │   ├── EnvelopeTooComplex        too many msgpack objects or too big a header, refused
    │   │                             before anything is materialised
    │   ├── UnsupportedVersion        first field is not a version we speak
    │   ├── UnsupportedSuite          crypto suite id we do not implement
    │   ├── MalformedEnvelope         not msgpack, wrong shape, wrong types, limits exceeded
    │   ├── NonCanonicalEncoding      decodes, but is not the one canonical encoding
    │   ├── HeaderInvalid             the signed header fails the schema
    │   ├── UnknownSigner             no signing key known for (originator, kid)
    │   ├── KeyNotValid               signing key expired, not yet valid, or revoked
    │   ├── Replayed                  this envelope id was already accepted
    │   ├── RetractedByOriginator     its originator retracted it (never delivered)
    │   ├── ClockSkew                 created too far in the future for the allowed skew
    │   ├── EnvelopeTooOld            created before the broker's replay window
    │   ├── EmbargoTooFar             embargoed further ahead than the federation's cap
    │   ├── SubjectMismatch           the NATS subject disagrees with the signed header
    │   ├── NotARecipient             no key stanza for us: we may not read it
    │   ├── SectionWithheld           a section our policy withholds is wrapped for us anyway
    │   ├── BodyMismatch              the decrypted report disagrees with the signed header
    │   ├── DisclosureControlBroken   a statistical return breaks its declared k
    │   ├── ContentUnreadable         the decrypted content is not what its kind carries
    │   ├── KindNotAccepted           a kind no node sends in an envelope (a receipt)
    │   ├── UnknownReference          refers to a report the receiver does not hold or did not send
    │   └── AuthenticationFailed      signature, key stanza or ciphertext does not verify
    ├── TrustError                    a trust document (certificate, bundle, policy) is refused
    │   ├── UnknownIssuer             signed by a key that is not the one expected (wrong root)
    │   ├── SignatureInvalid          the document was altered after signing
    │   ├── NotValidNow               expired, or not yet valid
    │   ├── Revoked                   on the root's revocation list
    │   ├── Rollback                  older than (or a different text at) a version already seen
    │   └── WrongDirectoryKey         filed under a directory key that is not its own subject
    ├── PolicyError                   the policy engine cannot decide (bad policy input)
    └── TransportError                talking to NATS failed

Every error carries a stable machine-readable ``code`` (used in dead-letter headers, metrics and
JSON output) and a human ``reason`` that says what to fix.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationFailed",
    "BodyMismatch",
    "ClockSkew",
    "ConfigError",
    "ContentUnreadable",
    "DisclosureControlBroken",
    "EmbargoTooFar",
    "EnvelopeError",
    "EnvelopeTooComplex",
    "EnvelopeTooLarge",
    "EnvelopeTooOld",
    "HeaderInvalid",
    "InputError",
    "KeyFileError",
    "KeyNotValid",
    "KindNotAccepted",
    "KindNotPublishable",
    "MalformedEnvelope",
    "NonCanonicalEncoding",
    "NotARecipient",
    "NotValidNow",
    "PalermoError",
    "PolicyError",
    "Replayed",
    "ReportInvalid",
    "RetractedByOriginator",
    "Revoked",
    "Rollback",
    "SectionWithheld",
    "SignatureInvalid",
    "StreamsNotProvisioned",
    "SubjectMismatch",
    "TransportError",
    "TrustError",
    "Unauthenticated",
    "UnknownIssuer",
    "UnknownReference",
    "UnknownSigner",
    "UnsupportedSuite",
    "UnsupportedVersion",
    "WrongDirectoryKey",
]


class PalermoError(Exception):
    """Root of every error Palermo raises."""

    code: ClassVar[str] = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        """The error as data, for JSON output and dead-letter headers."""
        return {"code": self.code, "reason": self.reason}


class InputError(PalermoError):
    code = "input_error"


class ReportInvalid(InputError):
    """A report (or other model) fails validation; ``errors`` lists each field's problem."""

    code = "report_invalid"

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.errors: list[dict[str, Any]] = errors or []

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "errors": self.errors}


class ConfigError(InputError):
    code = "config_error"


class StreamsNotProvisioned(ConfigError):
    """A JetStream stream (or the directory bucket) is missing or not as configured, and this
    connection may not create or change it: the operator must, with ``command``."""

    code = "streams_not_provisioned"

    def __init__(self, reason: str, *, streams: list[str], command: str) -> None:
        super().__init__(reason)
        self.streams = streams
        self.command = command


class Unauthenticated(InputError):
    """A request that did not prove who sent it (missing or wrong ingest token).

    The reason is the same whatever was wrong, so a caller learns nothing about the token.
    """

    code = "unauthenticated"


class KindNotPublishable(InputError):
    """``publish`` was given a kind it cannot send: requests, responses, release requests,
    releases and retractions carry bodies their own commands build (and the receiving node
    reads), and receipts are never sent in an envelope. ``command`` is the one to use."""

    code = "kind_not_publishable"

    def __init__(self, kind: str, command: str) -> None:
        super().__init__(
            f"a report of kind {kind!r} cannot be published as a report: the receiving node "
            f"expects the body its own command builds; use {command}"
        )
        self.kind = kind
        self.command = command


class KeyFileError(PalermoError):
    code = "key_file_error"


class EnvelopeError(PalermoError):
    code = "envelope_error"


class EnvelopeTooLarge(EnvelopeError):
    code = "too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"envelope is {size} bytes, over the limit of {limit} bytes; "
            "split the report or move attachments out of band (by hash)"
        )
        self.size = size
        self.limit = limit


class EnvelopeTooComplex(EnvelopeError):
    """Within the size limit, but over a structural bound (the count of msgpack objects, or the
    header's encoded size): refused by a streaming pre-scan, before the envelope is
    materialised, so that a megabyte of tiny objects costs what a genuine envelope costs."""

    code = "too_complex"

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(
            f"envelope {what} is over the limit of {limit:,}; a Palermo envelope is a small "
            "signed header, key stanzas and ciphertext: re-encode it with a conforming encoder "
            "(docs/envelope-v1.md, section 2)"
        )
        self.what = what
        self.limit = limit


class UnsupportedVersion(EnvelopeError):
    code = "unsupported_version"

    def __init__(self, version: object) -> None:
        super().__init__(
            f"envelope format version {version!r} is not supported (this build speaks v1); "
            "upgrade the receiving node or ask the sender to use v1"
        )
        self.version = version


class UnsupportedSuite(EnvelopeError):
    code = "unsupported_suite"

    def __init__(self, suite: object) -> None:
        super().__init__(
            f"crypto suite {suite!r} is not supported; this build implements suites 1 (X25519) "
            "and 2 (hybrid ML-KEM-768 + X25519): ask the sender to seal with one of them"
        )
        self.suite = suite


class MalformedEnvelope(EnvelopeError):
    code = "malformed"


class NonCanonicalEncoding(EnvelopeError):
    code = "non_canonical"


class HeaderInvalid(EnvelopeError):
    code = "header_invalid"

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.errors: list[dict[str, Any]] = errors or []


class UnknownSigner(EnvelopeError):
    code = "unknown_signer"

    def __init__(self, originator: str, kid: str) -> None:
        super().__init__(
            f"no signing key {kid!r} is known for agency {originator!r}; "
            "is the agency admitted and its certificate in the directory?"
        )
        self.originator = originator
        self.kid = kid


class KeyNotValid(EnvelopeError):
    code = "key_not_valid"


class Replayed(EnvelopeError):
    code = "replayed"

    def __init__(self, envelope_id: str) -> None:
        super().__init__(f"envelope {envelope_id} was already accepted; a replay is refused")
        self.envelope_id = envelope_id


class RetractedByOriginator(EnvelopeError):
    """Its originator retracted it (the broker holds the retraction's void marker): it is never
    delivered, whatever brings it back (a republish from PLM_DEAD included)."""

    code = "retracted"

    def __init__(self, envelope_id: str, originator: str, retraction: str) -> None:
        super().__init__(
            f"envelope {envelope_id} was retracted by its originator {originator} "
            f"(retraction {retraction or 'unknown'}); it is never delivered, not even "
            "republished from PLM_DEAD: the originator publishes a new report if it still "
            "wants one sent"
        )
        self.envelope_id = envelope_id
        self.originator = originator
        self.retraction = retraction


class ClockSkew(EnvelopeError):
    code = "clock_skew"

    def __init__(self, skew_ms: int, tolerance_ms: int) -> None:
        super().__init__(
            f"envelope was created {skew_ms} ms in the future; the tolerance is {tolerance_ms} "
            "ms: check the originator's clock (NTP)"
        )
        self.skew_ms = skew_ms
        self.tolerance_ms = tolerance_ms


class EnvelopeTooOld(EnvelopeError):
    """Older than the replay window: its id may no longer be remembered, so it is refused."""

    code = "too_old"

    def __init__(self, age_s: int, window_s: int) -> None:
        super().__init__(
            f"envelope was created {age_s} s ago, before the replay window of {window_s} s; "
            "the originator must re-seal it with a fresh id"
        )
        self.age_s = age_s
        self.window_s = window_s


class EmbargoTooFar(EnvelopeError):
    """Embargoed further ahead than allowed: the hold stream keeps an envelope only so long
    (``max_embargo``; docs/broker.md, "Embargo: hold and deliver")."""

    code = "embargo_too_far"

    def __init__(self, ahead_s: int, cap_s: int) -> None:
        super().__init__(
            f"embargoed {ahead_s} s ahead, beyond the cap of {cap_s} s (max_embargo): publish "
            "it closer to its release time, or ask the operator to raise max_embargo"
        )
        self.ahead_s = ahead_s
        self.cap_s = cap_s


class SubjectMismatch(EnvelopeError):
    """Published or delivered on a subject that is not the one its signed header implies."""

    code = "subject_mismatch"

    def __init__(self, subject: str, expected: str) -> None:
        super().__init__(
            f"received on {subject} but the signed header belongs on {expected}; an agency "
            "publishes only on its own plm.pub.<agency>... subject, with the header's "
            "kind, route and category"
        )
        self.subject = subject
        self.expected = expected


class NotARecipient(EnvelopeError):
    code = "not_a_recipient"


class SectionWithheld(EnvelopeError):
    """A section that this recipient's policy decision withholds is wrapped for it anyway.

    Refused before anything is decrypted: the receiving node never opens what the originator's
    handling keeps from it, whatever the originator's node wrapped.
    """

    code = "section_withheld"

    def __init__(self, section: str, recipient: str) -> None:
        super().__init__(
            f"section {section} is wrapped for {recipient}, but policy withholds it from "
            f"{recipient}; the originator's node must not wrap it (upgrade or fix that node)"
        )
        self.section = section
        self.recipient = recipient


class BodyMismatch(EnvelopeError):
    """The decrypted report says something other than the signed header the policy judged."""

    code = "body_mismatch"


class DisclosureControlBroken(EnvelopeError):
    """A statistical return whose cells break the disclosure control its header declares: a
    published non-zero count below k, or a suppressed cell the published figures give away."""

    code = "disclosure_control"

    def __init__(self, envelope_id: str, k: int, problems: list[str]) -> None:
        listed = "; ".join(problems[:5]) + (
            f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        )
        super().__init__(
            f"statistical return {envelope_id} declares suppression at k={k} but {listed}; the "
            "originator's node must suppress the return again (palermo publish does) and "
            "resend it"
        )
        self.envelope_id = envelope_id
        self.k = k
        self.problems = problems


class ContentUnreadable(EnvelopeError):
    """Validly signed and opened, but the content is not what an envelope of its kind carries
    (a request whose body is not the JSON a request holds, a retraction that names no report):
    no redelivery can fix it, so it is refused and the originator told, never dropped."""

    code = "unreadable_content"

    def __init__(self, kind: str, envelope_id: str, problem: str) -> None:
        super().__init__(
            f"the content of {kind} {envelope_id} cannot be read: {problem}; the originator's "
            f"node must send a {kind} with its own command (palermo publish sends reports only)"
        )
        self.kind = kind
        self.envelope_id = envelope_id


class KindNotAccepted(EnvelopeError):
    """An envelope of a kind no node takes from the delivery stream (receipts travel as signed
    documents on their own subjects, never in an envelope)."""

    code = "kind_not_accepted"


class UnknownReference(EnvelopeError):
    """A retraction of a report this agency does not hold from that originator, or a release
    request for a report this agency never sent: nothing can be done with it here."""

    code = "unknown_reference"


class AuthenticationFailed(EnvelopeError):
    """Signature, key stanza or ciphertext failed to verify.

    Callers see one error whatever failed, so a tampered envelope teaches an attacker nothing
    about which check it tripped (Fernet's ``InvalidToken``). ``stage`` says which for tests and
    for the audit log; it is never shown in the message.
    """

    code = "auth_failed"

    def __init__(self, stage: str) -> None:
        super().__init__("envelope failed authentication: it was altered or is not for this key")
        self.stage = stage


class TrustError(PalermoError):
    code = "trust_error"


class UnknownIssuer(TrustError):
    code = "unknown_issuer"


class SignatureInvalid(TrustError):
    code = "signature_invalid"


class NotValidNow(TrustError):
    code = "not_valid_now"


class Revoked(TrustError):
    code = "revoked"


class Rollback(TrustError):
    """A trust document below this process's high-water mark for its directory key.

    Older signed versions stay valid signatures for ever (and readable in the bucket history), so
    only the version tells a rollback apart: a document older than the highest version accepted
    (in this run or, through the persisted marks, any earlier one), or a different document under
    the same version, is refused.
    """

    code = "rollback"

    def __init__(self, reason: str, *, key: str, held: int, offered: int | None) -> None:
        super().__init__(reason)
        self.key = key
        self.held = held
        self.offered = offered


class WrongDirectoryKey(TrustError):
    """A signed document stored under a directory key that is not its own kind and agency."""

    code = "wrong_directory_key"

    def __init__(self, key: str, expected: str) -> None:
        super().__init__(
            f"directory key {key} holds the document of {expected}; a document is only "
            f"accepted under its own key ({expected}), so it is refused here"
        )
        self.key = key
        self.expected = expected


class PolicyError(PalermoError):
    code = "policy_error"


class TransportError(PalermoError):
    code = "transport_error"
