"""Envelope v1: the signed, per-recipient encrypted wire format (docs/envelope-v1.md).

Layered like age: ``_format`` (canonical msgpack, no crypto), ``protocol.crypto`` (primitives, no
msgpack), ``_seal`` (the composition) and ``inspect`` helpers for operators.
"""

from ._format import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    MAX_SECTIONS,
    MAX_STANZAS,
    SUITE_MLKEM768_X25519,
    SUITE_X25519,
    VERSION,
    Envelope,
    Section,
    Stanza,
    decode,
    encode,
)
from ._seal import (
    DEFAULT_MAX_CLOCK_SKEW_MS,
    Opened,
    SignerResolver,
    StaticSigners,
    Unverified,
    Verified,
    check_signature,
    choose_suite,
    inspect_envelope,
    open_envelope,
    open_verified,
    seal,
    verify_envelope,
)

__all__ = [
    "DEFAULT_MAX_CLOCK_SKEW_MS",
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "MAX_SECTIONS",
    "MAX_STANZAS",
    "SUITE_MLKEM768_X25519",
    "SUITE_X25519",
    "VERSION",
    "Envelope",
    "Opened",
    "Section",
    "SignerResolver",
    "Stanza",
    "StaticSigners",
    "Unverified",
    "Verified",
    "check_signature",
    "choose_suite",
    "decode",
    "encode",
    "inspect_envelope",
    "open_envelope",
    "open_verified",
    "seal",
    "verify_envelope",
]
