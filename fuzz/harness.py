"""One fuzz input through every decoder path; shared by tests/fuzz (hypothesis) and atheris.

The property, for any input: each entry point returns normally or raises a subclass of
``PalermoError`` (schemas/errors.py). Any other exception (KeyError, a raw pydantic
ValidationError, RecursionError, MemoryError, an AssertionError from a round-trip check below)
escapes from these functions, and the fuzzer reports it as a crash.

Keys, identities and time are the fixed ones of the golden vectors (tests/vectors/generate.py),
so the seed corpus is made of envelopes these functions can really verify and open.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Final

import msgpack

from node.reports import open_report
from protocol import crypto
from protocol.envelope import Opened, StaticSigners, _seal, decode, inspect_envelope, open_envelope
from protocol.envelope._format import _canon
from protocol.envelope._seal import DOMAIN_SIGNATURE
from schemas import (
    PERSONAL_DATA,
    PROTECTED_PERSONS,
    EnvelopeHeader,
    Report,
    parse_report,
    partition,
)
from schemas._types import from_epoch_ms, new_uuid7
from schemas.errors import PalermoError
from tests.vectors import generate

__all__ = [
    "BASE",
    "BASE_ENVELOPE",
    "HEADER",
    "IDENTITIES",
    "NOW",
    "SIGNERS",
    "envelope_input",
    "envelope_structure",
    "report_input",
    "report_structure",
    "sign_structure",
]

NOW: Final = from_epoch_ms(generate.NOW_MS)
EXAMPLE: Final = (
    Path(__file__).resolve().parents[1] / "schemas/examples/08-incident-deaths-witness.json"
)
# The vectors are signed by ITA-GDF; the base report envelope below by ESP-GC (its originator).
SIGNERS: Final = StaticSigners.of(
    [generate.signing_key("ITA-GDF").public, generate.signing_key("ESP-GC").public]
)
# Vectors: MLT-AFM holds the personal-data section of the five-recipient one, GRC-HCG does not.
# Base: ITA-GDF holds both sections (protected persons released to it by name), MLT-AFM one.
IDENTITIES: Final = tuple(generate.encryption_key(a) for a in ("MLT-AFM", "GRC-HCG", "ITA-GDF"))
# Fuzzed inputs stay small: the decoder's own limits are what is under test, not the machine's.
MAX_INPUT: Final[int] = 256 * 1024
_TOP_KEYS: Final = ("v", "suite", "hdr", "rcpt", "body", "sections", "sig")


def _base_envelope() -> bytes:
    """A real report (example 08: personal data and a protected witness), sealed like a node
    does, with the vectors' fixed keys, time and randomness."""
    report = parse_report(EXAMPLE.read_bytes())
    parts = partition(report)
    signer = generate.signing_key(report.originator)
    readers = {a: generate.encryption_key(a).public for a in ("ITA-GDF", "MLT-AFM")}
    header = EnvelopeHeader(
        id=new_uuid7(generate.NOW_MS - 2000, generate._seed("fuzz base id")[:10]),
        originator=report.originator,
        kid=signer.kid,
        created=from_epoch_ms(generate.NOW_MS - 2000),
        kind="report",
        route=report.route,
        category=report.category,
        handling=report.handling,
        priority=report.priority,
        recipients=sorted(readers),
        sections=parts.sections(),
    )
    bodies = parts.section_bodies()
    sections = {
        PERSONAL_DATA: (_pack(bodies[PERSONAL_DATA]), list(readers.values())),
        PROTECTED_PERSONS: (_pack(bodies[PROTECTED_PERSONS]), [readers["ITA-GDF"]]),
    }
    return _seal.seal(
        header,
        _pack(parts.main),
        signer,
        list(readers.values()),
        sections,
        _randomness=generate._randomness("fuzz base", 8),
    )


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


BASE_ENVELOPE: Final = _base_envelope()
BASE: Final[dict[str, Any]] = msgpack.unpackb(BASE_ENVELOPE, raw=False)
HEADER: Final = EnvelopeHeader.model_validate(BASE["hdr"])
BASE_MAIN: Final = _pack(partition(parse_report(EXAMPLE.read_bytes())).main)
_BASE_SIGNER: Final = generate.signing_key("ESP-GC")


def envelope_input(data: bytes) -> list[str]:
    """Raw bytes as a received envelope: decode, inspect (the broker) and open (a node).

    Returns what each open ended in (an error code, or "opened"), for the tests' statistics.
    """
    with contextlib.suppress(PalermoError):
        decode(data)
    with contextlib.suppress(PalermoError):
        inspect_envelope(data, SIGNERS, now=NOW)
    outcomes = []
    for identity in IDENTITIES:
        try:
            opened = open_envelope(data, [identity], SIGNERS, now=NOW)
        except PalermoError as exc:
            outcomes.append(exc.code)
            continue
        try:
            open_report(opened)
        except PalermoError as exc:
            outcomes.append(f"opened, report {exc.code}")
        else:
            outcomes.append("opened")
    return outcomes


def sign_structure(fields: Any) -> bytes:
    """A valid envelope with ``fields`` (any msgpack-able values) put over its own, re-signed.

    Re-signing with the originator's key gets a mutated header, stanza list or section list past the
    signature to the checks behind it (header schema, consistency, unwrapping). Top-level keys
    that are not envelope fields are ignored; the signature field is always recomputed.
    """
    top = dict(BASE)
    if isinstance(fields, dict):
        top.update({k: v for k, v in fields.items() if k in _TOP_KEYS and k != "sig"})
    top["hdr"] = _canon(top["hdr"])
    top["sig"] = bytes(64)
    unsigned = msgpack.packb({k: top[k] for k in _TOP_KEYS}, use_bin_type=True)
    # The same construction as seal(): sign every byte before the 64-byte signature value.
    trailer = len(b"\xa3sig") + 2 + 64
    sig = crypto.sign(_BASE_SIGNER.private, DOMAIN_SIGNATURE, unsigned[:-trailer])
    return bytes(unsigned[:-64] + sig)


def envelope_structure(fields: Any) -> list[str]:
    """Any msgpack-able structure laid over a valid envelope, re-signed, then decoded/opened."""
    try:
        data = sign_structure(fields)
    except (TypeError, ValueError, OverflowError):
        return []  # not msgpack-able (an int over 64 bits, say): nothing to put on the wire
    return envelope_input(data) if len(data) <= MAX_INPUT else []


def _check_report(report: Report) -> None:
    # A report that validates reads back equal from its wire form: what a node stores.
    wire = report.to_wire()
    assert report == Report.from_wire(wire)
    assert report == parse_report(json.dumps(wire).encode())


def report_input(data: bytes) -> None:
    """Raw bytes as a report: JSON ingest (parse_report) and an opened msgpack body or section."""
    try:
        report = parse_report(data)
    except PalermoError:
        pass
    else:
        _check_report(report)
    main = BASE_MAIN
    for opened in (
        Opened(HEADER, data, {}, ()),
        Opened(HEADER, main, {"personal-data": data}, ()),
        Opened(HEADER, main, {"protected-persons": data}, ()),
    ):
        with contextlib.suppress(PalermoError):
            open_report(opened)


def report_structure(value: Any) -> None:
    """Any JSON- or msgpack-able structure as a report: validated as data, as JSON, as msgpack."""
    if isinstance(value, dict):
        try:
            report = parse_report(value)
        except PalermoError:
            pass
        else:
            _check_report(report)
    try:
        text = json.dumps(value).encode()
    except (TypeError, ValueError):
        text = None
    if text is not None and len(text) <= MAX_INPUT:
        report_input(text)
    try:
        packed = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return
    if len(packed) <= MAX_INPUT:
        report_input(packed)
