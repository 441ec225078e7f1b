"""Envelope v1 wire format: canonical msgpack encode/decode. No crypto, no I/O.

The normative description, in RFC 2119 words, is docs/envelope-v1.md. In short: a msgpack map
of exactly seven keys in this order: v, suite, hdr, rcpt, body, sections, sig. Nested maps have
their keys sorted. Only the one canonical encoding is accepted: a decoded envelope is encoded
again and must give the same bytes, so two different byte strings can never carry the same
signed content (no malleability for replay caches or audit hashes to trip over).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from schemas.errors import (
    EnvelopeTooComplex,
    EnvelopeTooLarge,
    MalformedEnvelope,
    NonCanonicalEncoding,
    UnsupportedSuite,
    UnsupportedVersion,
)

__all__ = [
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "HDR_OFFSET",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_OBJECTS",
    "MAX_OBJECTS",
    "MAX_SECTIONS",
    "MAX_STANZAS",
    "SUITES",
    "SUITE_MLKEM768_X25519",
    "SUITE_X25519",
    "VERSION",
    "Envelope",
    "Section",
    "Stanza",
    "canonical_packb",
    "decode",
    "encode",
    "signed_bytes",
    "signed_prefix",
]

VERSION: Final[int] = 1
SUITE_X25519: Final[int] = 1
SUITE_MLKEM768_X25519: Final[int] = 2
# Suite 2: hybrid post-quantum ML-KEM-768 + X25519 (docs/decisions/0035-suite-2-hybrid.md).
SUITES: Final[frozenset[int]] = frozenset({SUITE_X25519, SUITE_MLKEM768_X25519})
# Exact stanza lengths per suite: enc || AES-256-GCM(32-byte content key) with tag.
STANZA_ENC_LEN: Final[dict[int, int]] = {
    SUITE_X25519: 32 + 48,
    SUITE_MLKEM768_X25519: 1120 + 48,
}
SIGNATURE_LEN: Final[int] = 64
AEAD_TAG_LEN: Final[int] = 16
DEFAULT_MAX_ENVELOPE_BYTES: Final[int] = 1024 * 1024
MAX_STANZAS: Final[int] = 256
MAX_SECTIONS: Final[int] = 8
# Limits handed to the msgpack decoder so a hostile length prefix or a deep nest is refused
# before memory is spent on it. The header is the only free-form part; it is small.
MAX_ARRAY_LEN: Final[int] = 1024
MAX_MAP_LEN: Final[int] = 64
MAX_DEPTH: Final[int] = 8
# Totals, checked by a streaming pre-scan before anything is materialised. Per-container limits
# do not bound a total: a megabyte of tiny objects (arrays of maps of one entry) cost ~400 ms
# and ~68 MiB to decode, against 0.2 ms for a genuine 1 MiB envelope, whose bytes are nearly
# all in a few bin fields; fifty such messages held up a genuine envelope for ~27 s.
MAX_HEADER_BYTES: Final[int] = 64 * 1024
"""The header's encoded size. The largest header the schema admits (256 recipients, 256 rel_to,
64 deny_to entries, 32 refs, 16 H3 texts: about 63 KiB, tests/envelope/test_largest_header.py)
is under it; a typical one is 250-400 bytes."""
MAX_HEADER_OBJECTS: Final[int] = 4096
"""msgpack objects in the header (maps, arrays, keys and values); the schema's largest is ~1,820."""
MAX_OBJECTS: Final[int] = 20_480
"""msgpack objects in the whole envelope: the header's 4,096, plus 256 stanzas (7 objects each)
in the body's list and in each of 8 sections, plus the fixed fields (20,294 at most)."""
_PREFIX: Final[bytes] = b"\x87\xa1v"  # fixmap(7), fixstr "v": the version comes first
HDR_OFFSET: Final[int] = len(b"\x87\xa1v\x01\xa5suite\x01\xa3hdr")
"""Where the header's encoding starts in an envelope :func:`decode` accepted (canonical: the
version and the suite are one-byte integers, the keys fixstr)."""
_TOP_KEYS: Final[tuple[str, ...]] = ("v", "suite", "hdr", "rcpt", "body", "sections", "sig")
_STANZA_KEYS: Final[frozenset[str]] = frozenset({"agency", "kid", "enc"})
_SECTION_KEYS: Final[frozenset[str]] = frozenset({"id", "rcpt", "body"})
_STANZA_ORDER: Final[tuple[str, ...]] = ("agency", "enc", "kid")  # canonical: sorted
_SECTION_ORDER: Final[tuple[str, ...]] = ("body", "id", "rcpt")


@dataclass(frozen=True, slots=True)
class Stanza:
    """The content key wrapped for one recipient key."""

    agency: str
    kid: str
    enc: bytes


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the report sealed under its own key for a subset of the recipients."""

    id: str
    rcpt: tuple[Stanza, ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    v: int
    suite: int
    hdr: dict[str, Any]
    rcpt: tuple[Stanza, ...]
    body: bytes
    sections: tuple[Section, ...]
    sig: bytes


_CONTAINERS: Final = (dict, list, tuple)


def _canon(obj: Any) -> Any:
    """Sort map keys recursively; lists keep their order (the header model sorts them)."""
    # Recursing only into containers halves the cost: sealing and opening both pay for it.
    if isinstance(obj, dict):
        return {k: _canon(v) if isinstance(v, _CONTAINERS) else v for k, v in sorted(obj.items())}
    if isinstance(obj, list | tuple):
        return [_canon(x) if isinstance(x, _CONTAINERS) else x for x in obj]
    return obj


def canonical_packb(obj: Any) -> bytes:
    """The canonical msgpack encoding: sorted map keys, str as str, bytes as bin, minimal ints."""
    return msgpack.packb(_canon(obj), use_bin_type=True)  # type: ignore[no-any-return]


def _stanza_obj(s: Stanza) -> dict[str, Any]:
    return {"agency": s.agency, "enc": s.enc, "kid": s.kid}


def _section_obj(s: Section) -> dict[str, Any]:
    return {"body": s.body, "id": s.id, "rcpt": [_stanza_obj(x) for x in s.rcpt]}


# The signature is the last field: "sig" (fixstr) then bin8 of 64 bytes.
_SIG_TRAILER_LEN: Final[int] = len(b"\xa3sig") + 2 + SIGNATURE_LEN


def signed_bytes(env: Envelope) -> bytes:
    """What the signature covers: the canonical encoding of every byte before the signature.

    Because the encoding is canonical and the fields come in a fixed order with ``sig`` last,
    a verifier can take this straight from the received bytes (see :func:`signed_prefix`).
    """
    return encode(
        Envelope(env.v, env.suite, env.hdr, env.rcpt, env.body, env.sections, bytes(SIGNATURE_LEN))
    )[:-_SIG_TRAILER_LEN]


def signed_prefix(data: bytes) -> bytes:
    """The signed bytes of an envelope that :func:`decode` accepted."""
    return data[:-_SIG_TRAILER_LEN]


def encode(env: Envelope, *, hdr_sorted: bool = False) -> bytes:
    """Encode canonically; ``hdr_sorted`` skips re-sorting a header already in canonical order."""
    # The top level is written in its fixed order (not sorted) so that "v" comes first.
    top = {
        "v": env.v,
        "suite": env.suite,
        "hdr": env.hdr if hdr_sorted else _canon(env.hdr),
        "rcpt": [_stanza_obj(s) for s in env.rcpt],
        "body": env.body,
        "sections": [_section_obj(s) for s in env.sections],
        "sig": env.sig,
    }
    return msgpack.packb(top, use_bin_type=True)  # type: ignore[no-any-return]


def _reject_ext(code: int, data: bytes) -> Any:
    raise MalformedEnvelope(f"msgpack extension type {code} is not allowed in an envelope")


def _read_version(head: bytes) -> object:
    """The value of the 'v' field for an error message (not a fixint: decode it properly)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
    unpacker.feed(head)
    try:
        return unpacker.unpack()
    except (ValueError, msgpack.OutOfData, msgpack.FormatError, msgpack.StackError):
        return f"0x{head[0]:02x}"


def check_prefix(data: bytes, max_size: int) -> None:
    """Cheap checks before any parsing: size, then the version in the first bytes."""
    if len(data) > max_size:
        raise EnvelopeTooLarge(len(data), max_size)
    if len(data) < 4 or data[1:3] != _PREFIX[1:]:
        raise MalformedEnvelope(
            "not a Palermo envelope: it must be a msgpack map whose first key is 'v'"
        )
    if data[3] != VERSION:
        version = _read_version(data[3:12])
        if version == VERSION:
            raise NonCanonicalEncoding("the version must be written as a one-byte integer")
        raise UnsupportedVersion(version)
    if data[0] != _PREFIX[0]:
        raise MalformedEnvelope("a v1 envelope is a map of exactly 7 fields")


# What msgpack decodes a header's leaves to (exact types: the decoder builds no subclasses);
# bool is listed as itself, floats, bytes and extension values are not allowed.
_HDR_SCALARS: Final[frozenset[type]] = frozenset({str, int, bool, type(None)})


def _shape_ok(obj: Any, level: int = 0) -> tuple[bool, bool]:
    """(nests no deeper than MAX_DEPTH, every map's keys are sorted), in one walk.

    Also refuses anything the header can never hold: non-string keys, floats, byte strings and
    msgpack extension values (including the built-in timestamp type, which ``ext_hook`` never
    sees). The walk stops at the first map or list too deep, so a hostile nest costs nothing.
    Types are compared exactly (one set look-up per leaf), which is what msgpack produces.
    """
    if level >= MAX_DEPTH:
        return False, True
    ordered = True
    if type(obj) is dict:
        keys = list(obj)
        if not all(type(k) is str for k in keys):
            raise MalformedEnvelope("hdr map keys must be strings")
        ordered = keys == sorted(keys)
        children: Any = obj.values()
    else:
        children = obj
    for child in children:
        kind = type(child)
        if kind in _HDR_SCALARS:
            continue
        if kind is dict or kind is list:
            shallow, child_ordered = _shape_ok(child, level + 1)
            if not shallow:
                return False, ordered
            ordered = ordered and child_ordered
        else:
            raise MalformedEnvelope(
                f"hdr holds a {kind.__name__}; only maps, arrays, strings, integers, "
                "booleans and nil are allowed"
            )
    return True, ordered


def _bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MalformedEnvelope(f"{what} must be msgpack bin, got {type(value).__name__}")
    return value


def _str(value: Any, what: str, max_len: int = 64) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise MalformedEnvelope(f"{what} must be a string of 1 to {max_len} characters")
    return value


def _stanzas(value: Any, suite: int, what: str) -> tuple[tuple[Stanza, ...], bool]:
    """The stanzas, and whether every stanza map had its keys in canonical order."""
    if not isinstance(value, list):
        raise MalformedEnvelope(f"{what} must be an array of stanzas")
    if len(value) > MAX_STANZAS:
        raise MalformedEnvelope(f"{what} has {len(value)} stanzas; at most {MAX_STANZAS}")
    out = []
    keys = []
    in_order = True
    enc_len = STANZA_ENC_LEN[suite]
    for i, item in enumerate(value):
        # The common case in one tuple comparison: the keys, and in their canonical order.
        if type(item) is not dict or tuple(item) != _STANZA_ORDER:
            if not isinstance(item, dict) or set(item) != _STANZA_KEYS:
                raise MalformedEnvelope(f"{what}[{i}] must be a map of agency, kid and enc")
            in_order = False  # refused as non-canonical where the re-encoding would be
        agency, enc, kid = item["agency"], item["enc"], item["kid"]
        if type(enc) is not bytes:
            _bytes(enc, f"{what}[{i}].enc")
        # Exact length before any key is used (age does the same for its stanzas).
        if len(enc) != enc_len:
            raise MalformedEnvelope(
                f"{what}[{i}].enc is {len(enc)} bytes; suite {suite} stanzas are {enc_len}"
            )
        if type(agency) is not str or not 0 < len(agency) <= 64:
            _str(agency, f"{what}[{i}].agency")
        if type(kid) is not str or not 0 < len(kid) <= 64:
            _str(kid, f"{what}[{i}].kid")
        out.append(Stanza(agency, kid, enc))
        keys.append((agency, kid))
    # One canonical order (sorted, no duplicates): a reordered list is a different byte string
    # for the same content, which replay caches and audit hashes must never see.
    if keys != sorted(set(keys)):
        raise NonCanonicalEncoding(f"{what} must be sorted by (agency, kid) without duplicates")
    return tuple(out), in_order


_MAP_HEADS: Final[frozenset[int]] = frozenset({*range(0x80, 0x90), 0xDE, 0xDF})
_ARRAY_HEADS: Final[frozenset[int]] = frozenset({*range(0x90, 0xA0), 0xDC, 0xDD})
_CONTAINER_HEADS: Final[frozenset[int]] = _MAP_HEADS | _ARRAY_HEADS
# What the streaming pre-scan stops at: the decoder then names the problem, having built no more
# objects than the scan counted up to that point (msgpack parses in order).
_SCAN_STOP: Final = (ValueError, IndexError, msgpack.UnpackException)


def _unpacker(data: bytes | memoryview) -> msgpack.Unpacker:
    unpacker = msgpack.Unpacker(
        None,
        raw=False,
        max_buffer_size=max(len(data), 1),
        max_str_len=len(data),
        max_bin_len=len(data),
        max_ext_len=len(data),
        max_array_len=MAX_ARRAY_LEN,
        max_map_len=MAX_MAP_LEN,
    )
    unpacker.feed(data)
    return unpacker


def _count(data: bytes, start: int, budget: int, what: str, limit: int) -> int:
    """The msgpack objects in the one value at ``start``, walked without building any of them;
    EnvelopeTooComplex(what, limit) once there are more than ``budget``.

    Containers are entered (their headers read), scalars skipped in C: the walk costs one step
    per object and stops at the budget, whatever the input's size.
    """
    unpacker = _unpacker(memoryview(data)[start:])
    pending, seen = 1, 0
    try:
        while pending:
            if seen >= budget:
                raise EnvelopeTooComplex(what, limit)
            pending -= 1
            seen += 1
            head = data[start + unpacker.tell()]
            if head in _MAP_HEADS:
                entries = unpacker.read_map_header()
                if entries > MAX_MAP_LEN:
                    return seen  # the decoder refuses this header at once (max_map_len)
                pending += 2 * entries
            elif head in _ARRAY_HEADS:
                items = unpacker.read_array_header()
                if items > MAX_ARRAY_LEN:
                    return seen
                pending += items
            else:
                unpacker.skip()
    except _SCAN_STOP:
        return seen  # malformed here: the decoder says how
    return seen


def _prescan(data: bytes) -> None:
    """Bound the header's encoded size and the envelope's object count before decoding.

    A streaming pass over the top-level map: each field is skipped in C (no object is built)
    and charged its byte length as an upper bound on its objects (every object takes at least
    one byte), so a genuine envelope costs a few microseconds; a field whose bytes exceed what
    is left of the budget (a header over 4 KiB, a large section) is walked and counted exactly.
    The header is also bounded by its encoded size.

    An envelope of at most MAX_HEADER_OBJECTS bytes passes without a walk: every object takes
    at least one byte, so neither its header nor its total can exceed either budget, and a
    64 KiB header does not fit in it (a typical 5-recipient report is ~3 KiB: 3.4 us saved).
    """
    if len(data) <= MAX_HEADER_OBJECTS:
        return
    unpacker = _unpacker(data)
    budget = MAX_OBJECTS - 1  # the top-level map
    objects = "msgpack object count"
    key: object = None
    try:
        fields = unpacker.read_map_header()
    except _SCAN_STOP:
        return
    for _ in range(fields):
        for is_key in (True, False):
            start = unpacker.tell()
            try:
                head = data[start]
                if is_key and head not in _CONTAINER_HEADS:
                    key = unpacker.unpack()
                    budget -= 1
                    continue
                unpacker.skip()
            except _SCAN_STOP:
                _count(data, start, budget, objects, MAX_OBJECTS)
                return
            extent = unpacker.tell() - start
            if not is_key and key == "hdr":
                if extent > MAX_HEADER_BYTES:
                    raise EnvelopeTooComplex(f"header ({extent:,} bytes)", MAX_HEADER_BYTES)
                if extent > MAX_HEADER_OBJECTS:
                    budget -= _count(
                        data, start, MAX_HEADER_OBJECTS, "header's msgpack object count",
                        MAX_HEADER_OBJECTS,
                    )  # fmt: skip
                else:
                    budget -= extent
            elif head not in _CONTAINER_HEADS:
                budget -= 1
            elif extent <= budget:
                budget -= extent
            else:
                budget -= _count(data, start, budget, objects, MAX_OBJECTS)
            if budget < 0:
                raise EnvelopeTooComplex(objects, MAX_OBJECTS)
            key = None


def decode(data: bytes, max_size: int = DEFAULT_MAX_ENVELOPE_BYTES) -> Envelope:
    """Parse and structurally check an envelope. Verifies nothing cryptographic."""
    check_prefix(data, max_size)
    # Totals before anything is built: no input may cost more to refuse than a genuine envelope.
    _prescan(data)
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            # str/bin limits default to len(data), itself already bounded by max_size.
            max_array_len=MAX_ARRAY_LEN,
            max_map_len=MAX_MAP_LEN,
            ext_hook=_reject_ext,
        )
    except MalformedEnvelope:
        raise
    except (
        ValueError,
        TypeError,
        msgpack.ExtraData,
        msgpack.StackError,
        msgpack.FormatError,
    ) as exc:
        # ValueError covers truncated input, declared lengths over the limits and bad UTF-8.
        raise MalformedEnvelope(f"not valid msgpack: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict) or tuple(obj) != _TOP_KEYS:
        raise MalformedEnvelope(f"an envelope is a map with the fields {', '.join(_TOP_KEYS)}")
    suite = obj["suite"]
    if not isinstance(suite, int) or isinstance(suite, bool) or suite not in SUITES:
        raise UnsupportedSuite(suite)
    hdr = obj["hdr"]
    if not isinstance(hdr, dict):
        raise MalformedEnvelope("hdr must be a map")
    shallow, ordered = _shape_ok(hdr)
    if not shallow:
        raise MalformedEnvelope(f"hdr nests deeper than {MAX_DEPTH} levels")
    if not ordered:
        raise NonCanonicalEncoding("hdr map keys are not sorted; re-encode with sorted keys")
    body = _bytes(obj["body"], "body")
    if len(body) < AEAD_TAG_LEN:
        raise MalformedEnvelope("body is shorter than an AEAD tag")
    sig = _bytes(obj["sig"], "sig")
    if len(sig) != SIGNATURE_LEN:
        raise MalformedEnvelope(f"sig is {len(sig)} bytes; an Ed25519 signature is 64")
    sections_raw = obj["sections"]
    if not isinstance(sections_raw, list) or len(sections_raw) > MAX_SECTIONS:
        raise MalformedEnvelope(f"sections must be an array of at most {MAX_SECTIONS}")
    sections = []
    in_order = True
    for i, item in enumerate(sections_raw):
        if not isinstance(item, dict) or set(item) != _SECTION_KEYS:
            raise MalformedEnvelope(f"sections[{i}] must be a map of id, rcpt and body")
        in_order = in_order and tuple(item) == _SECTION_ORDER
        sbody = _bytes(item["body"], f"sections[{i}].body")
        if len(sbody) < AEAD_TAG_LEN:
            raise MalformedEnvelope(f"sections[{i}].body is shorter than an AEAD tag")
        sid = _str(item["id"], f"sections[{i}].id", 48)
        srcpt, stanzas_in_order = _stanzas(item["rcpt"], suite, f"sections[{i}].rcpt")
        in_order = in_order and stanzas_in_order
        sections.append(Section(sid, srcpt, sbody))
    rcpt, stanzas_in_order = _stanzas(obj["rcpt"], suite, "rcpt")
    env = Envelope(
        v=VERSION,
        suite=suite,
        hdr=hdr,
        rcpt=rcpt,
        body=body,
        sections=tuple(sections),
        sig=sig,
    )
    # With every map's key order checked above (the top level, the header, the sections and
    # the stanzas), encoding the decoded object as it is must give back the input byte for byte
    # (shortest forms, bin for bytes, no duplicate keys). That is what :func:`encode` would
    # write for ``env``, without building its maps again.
    if not (in_order and stanzas_in_order) or msgpack.packb(obj, use_bin_type=True) != data:
        raise NonCanonicalEncoding(
            "envelope is not in canonical msgpack form (sorted keys, minimal lengths, "
            "bin for bytes); re-encode it with a conforming encoder"
        )
    return env
