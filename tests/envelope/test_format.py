"""protocol.envelope._format: canonical encode/decode and every structural rejection, typed."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.envelope import _format
from protocol.envelope._format import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    MAX_ARRAY_LEN,
    MAX_DEPTH,
    MAX_MAP_LEN,
    MAX_SECTIONS,
    MAX_STANZAS,
    Envelope,
    Section,
    Stanza,
    decode,
    encode,
)
from schemas.errors import (
    EnvelopeError,
    EnvelopeTooLarge,
    MalformedEnvelope,
    NonCanonicalEncoding,
    PalermoError,
    UnsupportedSuite,
    UnsupportedVersion,
)
from tests.envelope._factories import FEW, FUZZ, READERS, assemble, raw, sealed, stanza_obj

DATA = sealed(READERS, b"report" * 20, sections={"personal-data": (b"persons", READERS[:1])})
ENV = decode(DATA)
STANZA = ENV.rcpt[0]


def _malformed(data: bytes, *words: str) -> MalformedEnvelope:
    with pytest.raises(MalformedEnvelope) as err:
        decode(data)
    for word in words:
        assert word in err.value.reason
    return err.value


def _non_canonical(data: bytes) -> NonCanonicalEncoding:
    with pytest.raises(NonCanonicalEncoding) as err:
        decode(data)
    return err.value


# --- round trip -------------------------------------------------------------------------------


def test_decode_encode_round_trip() -> None:
    """A sealed envelope decodes and encodes back to the same bytes."""
    assert DATA == encode(ENV)
    assert ENV == decode(encode(ENV))


def test_decoded_fields() -> None:
    """decode exposes version, suite, header, stanzas, body, sections and signature."""
    assert (1, 1) == (ENV.v, ENV.suite)
    assert sorted(READERS) == [s.agency for s in ENV.rcpt]
    assert ["personal-data"] == [s.id for s in ENV.sections]
    assert [READERS[0]] == [s.agency for s in ENV.sections[0].rcpt]
    assert 64 == len(ENV.sig)
    assert sorted(ENV.hdr) == list(ENV.hdr)


def test_version_comes_first() -> None:
    """The first four bytes are fixmap(7), fixstr 'v', 1."""
    assert b"\x87\xa1v\x01" == DATA[:4]


def test_encode_sorts_header_keys_and_keeps_top_order() -> None:
    """encode sorts hdr keys at every depth but writes the top level in its fixed order."""
    shuffled = {k: ENV.hdr[k] for k in reversed(list(ENV.hdr))}
    shuffled["handling"] = dict(reversed(list(ENV.hdr["handling"].items())))
    assert DATA == encode(replace(ENV, hdr=shuffled))
    assert ("v", "suite", "hdr", "rcpt", "body", "sections", "sig") == tuple(
        msgpack.unpackb(DATA, raw=False)
    )


def test_signed_bytes_is_everything_before_the_sig_field() -> None:
    """signed_bytes(env) equals signed_prefix(data), and the rest is 'sig' + bin8(64)."""
    prefix = _format.signed_prefix(DATA)
    assert prefix == _format.signed_bytes(ENV)
    assert b"\xa3sig\xc4\x40" + ENV.sig == DATA[len(prefix) :]


def test_signed_bytes_ignore_the_signature_value() -> None:
    """The signed bytes do not depend on the signature field's content."""
    assert _format.signed_bytes(ENV) == _format.signed_bytes(replace(ENV, sig=b"\xff" * 64))


def test_canonical_packb_sorts_nested_maps() -> None:
    """canonical_packb sorts map keys recursively and keeps list order."""
    assert msgpack.packb({"a": [{"x": 1, "y": 2}], "b": 1}) == _format.canonical_packb(
        {"b": 1, "a": ({"y": 2, "x": 1},)}
    )


_names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789", min_size=1, max_size=12)
_stanzas = st.lists(
    st.tuples(_names, st.text(alphabet="0123456789abcdef", min_size=16, max_size=16)),
    max_size=6,
    unique=True,
).flatmap(
    lambda keys: st.tuples(
        *[
            st.builds(Stanza, st.just(a), st.just(k), st.binary(min_size=80, max_size=80))
            for a, k in sorted(keys)
        ]
    )
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12,
)
_envelopes = st.builds(
    Envelope,
    v=st.just(1),
    suite=st.just(1),
    hdr=st.dictionaries(st.text(max_size=10), _json, max_size=8),
    rcpt=_stanzas,
    body=st.binary(min_size=16, max_size=200),
    sections=st.lists(
        st.builds(
            Section,
            st.text(alphabet="abc-", min_size=1, max_size=48),
            _stanzas,
            st.binary(min_size=16, max_size=50),
        ),
        max_size=MAX_SECTIONS,
    ).map(tuple),
    sig=st.binary(min_size=64, max_size=64),
)


@FEW
@given(_envelopes)
def test_round_trip_property(env: Envelope) -> None:
    """Any well-shaped envelope encodes canonically and decodes to an equal value."""
    data = encode(env)
    decoded = decode(data)
    assert _format._canon(env.hdr) == decoded.hdr
    assert replace(env, hdr=decoded.hdr) == decoded
    assert data == encode(decoded)


# --- size and version prefix ------------------------------------------------------------------


def test_oversized_is_too_large_with_size_and_limit() -> None:
    """Over max_size: EnvelopeTooLarge carrying .size and .limit."""
    with pytest.raises(EnvelopeTooLarge) as err:
        decode(DATA, max_size=len(DATA) - 1)
    assert (len(DATA), len(DATA) - 1) == (err.value.size, err.value.limit)
    assert f"{len(DATA)} bytes" in err.value.reason
    assert ENV == decode(DATA, max_size=len(DATA))


def test_default_limit_is_one_mib_and_checked_before_parsing() -> None:
    """1 MiB + 1 bytes of garbage is refused as too large, not as malformed."""
    assert 1024 * 1024 == DEFAULT_MAX_ENVELOPE_BYTES
    with pytest.raises(EnvelopeTooLarge) as err:
        decode(b"\xff" * (DEFAULT_MAX_ENVELOPE_BYTES + 1))
    assert DEFAULT_MAX_ENVELOPE_BYTES == err.value.limit


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x87",
        b"\x87\xa1",
        b"\x87\xa1v",
        b"\x93\x01\x02\x03",
        b"\xc0\xc0\xc0\xc0",
        b"plain text",
    ],
    ids=["empty", "1-byte", "2-bytes", "3-bytes", "array", "nils", "text"],
)
def test_not_a_map_with_v_first(data: bytes) -> None:
    """Input that is not a map whose first key is 'v' is malformed."""
    _malformed(data, "first key is 'v'")


def test_wrong_first_key() -> None:
    """A map whose first key is not 'v' is malformed."""
    data = b"\x87\xa5suite\x01" + DATA[len(b"\x87\xa1v\x01\xa5suite\x01") :]
    _malformed(data, "first key is 'v'")


@pytest.mark.parametrize("version", [0, 2, 3, 127])
def test_other_version(version: int) -> None:
    """Another version: UnsupportedVersion carrying .version, before any parsing."""
    data = b"\x87\xa1v" + msgpack.packb(version) + DATA[4:]
    with pytest.raises(UnsupportedVersion) as err:
        decode(data)
    assert version == err.value.version
    assert f"version {version}" in err.value.reason


@pytest.mark.parametrize("version", [128, -1])
def test_other_version_beyond_fixint_reports_the_version(version: int) -> None:
    """A version outside positive fixint is reported as that version, not a msgpack type byte."""
    data = b"\x87\xa1v" + msgpack.packb(version) + DATA[4:]
    with pytest.raises(UnsupportedVersion) as err:
        decode(data)
    assert version == err.value.version


def test_version_one_in_non_minimal_form_is_refused() -> None:
    """v = 1 as uint8 (0xcc 0x01) is never accepted."""
    with pytest.raises(EnvelopeError):
        decode(b"\x87\xa1v\xcc\x01" + DATA[4:])


def test_version_checked_before_garbage() -> None:
    """Version 2 followed by garbage is UnsupportedVersion, not malformed."""
    with pytest.raises(UnsupportedVersion):
        decode(b"\x87\xa1v\x02" + b"\xff" * 40)


@pytest.mark.parametrize("first", [b"\x86", b"\x88", b"\x81"])
def test_map_of_other_size(first: bytes) -> None:
    """A map of other than 7 entries (e.g. 8) is malformed."""
    _malformed(first + DATA[1:], "exactly 7 fields")


def test_eight_key_map_with_extra_field() -> None:
    """Eight fields, the eighth an extra key at the end, is malformed."""
    _malformed(b"\x88" + DATA[1:] + msgpack.packb("extra") + msgpack.packb(1), "7 fields")


# --- top-level shape --------------------------------------------------------------------------


def test_top_keys_in_wrong_order() -> None:
    """The seven fields in another order are malformed, naming the field list."""
    top = msgpack.unpackb(DATA, raw=False)
    order = ["v", "suite", "rcpt", "hdr", "body", "sections", "sig"]
    err = _malformed(msgpack.packb({k: top[k] for k in order}, use_bin_type=True))
    assert "v, suite, hdr, rcpt, body, sections, sig" in err.reason


def test_unknown_top_key() -> None:
    """An unknown field name in place of a known one is malformed."""
    top = msgpack.unpackb(DATA, raw=False)
    top["signature"] = top.pop("sig")
    _malformed(msgpack.packb(top, use_bin_type=True), "fields")


@pytest.mark.parametrize("suite", [0, 3, 7, 255, -1, True, "1", None, 1.0, [1]])
def test_unsupported_suite(suite: Any) -> None:
    """Any suite but the integers 1 and 2 (including True) is UnsupportedSuite."""
    with pytest.raises(UnsupportedSuite) as err:
        decode(raw(ENV, suite=suite))
    assert suite == err.value.suite
    assert type(suite) is type(err.value.suite)
    assert "suite" in err.value.reason


@pytest.mark.parametrize("hdr", [[], "hdr", b"hdr", 1, None])
def test_hdr_not_a_map(hdr: Any) -> None:
    """hdr must be a map."""
    _malformed(raw(ENV, hdr=hdr), "hdr must be a map")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("body", "text body of 16+ chars", ("body", "msgpack bin", "str")),
        ("body", 1, ("body", "msgpack bin")),
        ("sig", "s" * 64, ("sig", "msgpack bin")),
        ("rcpt", {"agency": "X"}, ("rcpt must be an array",)),
        ("rcpt", None, ("rcpt must be an array",)),
        ("sections", {}, ("sections must be an array",)),
        ("sections", None, ("sections must be an array",)),
    ],
)
def test_wrong_field_types(field: str, value: Any, words: tuple[str, ...]) -> None:
    """A field of the wrong msgpack type is malformed and the reason names the field.

    A str where bin is required is a type error, reported as malformed (not non-canonical).
    """
    _malformed(raw(ENV, **{field: value}), *words)


# --- stanzas, body, signature, sections -------------------------------------------------------


def _st(**edits: Any) -> dict[str, Any]:
    return {"agency": STANZA.agency, "enc": STANZA.enc, "kid": STANZA.kid, **edits}


@pytest.mark.parametrize("length", [0, 32, 79, 81, 1168])
def test_stanza_enc_wrong_length(length: int) -> None:
    """A body stanza whose enc is not exactly 80 bytes is malformed, naming rcpt[i].enc."""
    _malformed(raw(ENV, rcpt=[_st(enc=bytes(length))]), "rcpt[0].enc", f"{length} bytes", "80")


def test_section_stanza_enc_wrong_length() -> None:
    """The same check applies to section stanzas."""
    sec = {"body": ENV.sections[0].body, "id": "personal-data", "rcpt": [_st(enc=bytes(79))]}
    _malformed(raw(ENV, sections=[sec]), "sections[0].rcpt[0].enc", "79 bytes")


@pytest.mark.parametrize(
    ("stanza", "words"),
    [
        ("not a map", ("rcpt[0] must be a map of agency, kid and enc",)),
        ({"agency": "A", "kid": "k"}, ("rcpt[0] must be a map",)),
        ({**_st(), "extra": 1}, ("rcpt[0] must be a map",)),
        (_st(enc="x" * 80), ("rcpt[0].enc must be msgpack bin",)),
        (_st(agency=""), ("rcpt[0].agency must be a string of 1 to 64",)),
        (_st(agency="A" * 65), ("rcpt[0].agency",)),
        (_st(agency=b"MLT-AFM"), ("rcpt[0].agency",)),
        (_st(kid=7), ("rcpt[0].kid",)),
    ],
)
def test_stanza_shape(stanza: Any, words: tuple[str, ...]) -> None:
    """Stanzas must be {agency: str(1..64), enc: bin(80), kid: str(1..64)}."""
    _malformed(raw(ENV, rcpt=[stanza]), *words)


@pytest.mark.parametrize("length", [0, 63, 65, 128])
def test_sig_wrong_length(length: int) -> None:
    """A signature of other than 64 bytes is malformed."""
    _malformed(raw(ENV, sig=bytes(length)), "sig is", f"{length} bytes", "64")


@pytest.mark.parametrize("length", [0, 1, 15])
def test_body_shorter_than_tag(length: int) -> None:
    """A body shorter than the 16-byte AEAD tag is malformed; exactly 16 is accepted."""
    _malformed(raw(ENV, body=bytes(length)), "body is shorter than an AEAD tag")
    assert bytes(16) == decode(encode(replace(ENV, body=bytes(16)))).body


def test_section_body_shorter_than_tag() -> None:
    """A section body shorter than a tag is malformed, naming sections[i].body."""
    sec = replace(ENV.sections[0], body=bytes(15))
    _malformed(encode(replace(ENV, sections=(sec,))), "sections[0].body is shorter")


def _stanza_n(i: int) -> Stanza:
    return Stanza(f"AG-{i:04d}", "0123456789abcdef", STANZA.enc)


def test_too_many_stanzas() -> None:
    """257 stanzas in one list are malformed; 256 are accepted."""
    many = tuple(_stanza_n(i) for i in range(MAX_STANZAS + 1))
    _malformed(encode(replace(ENV, rcpt=many)), "rcpt has 257 stanzas", "256")
    assert MAX_STANZAS == len(decode(encode(replace(ENV, rcpt=many[:-1]))).rcpt)


def test_too_many_section_stanzas() -> None:
    """The stanza limit applies to each section too."""
    many = tuple(_stanza_n(i) for i in range(MAX_STANZAS + 1))
    sec = replace(ENV.sections[0], rcpt=many)
    _malformed(encode(replace(ENV, sections=(sec,))), "sections[0].rcpt has 257")


def test_too_many_sections() -> None:
    """Nine sections are malformed; eight are accepted."""
    secs = tuple(replace(ENV.sections[0], id=f"s{i}") for i in range(MAX_SECTIONS + 1))
    _malformed(encode(replace(ENV, sections=secs)), "sections must be an array of at most 8")
    assert MAX_SECTIONS == len(decode(encode(replace(ENV, sections=secs[:-1]))).sections)


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ([], ("sections[0] must be a map of id, rcpt and body",)),
        ({"id": "x", "rcpt": []}, ("sections[0] must be a map",)),
        ({"body": bytes(16), "id": "", "rcpt": []}, ("sections[0].id",)),
        ({"body": bytes(16), "id": "x" * 49, "rcpt": []}, ("sections[0].id", "48")),
        ({"body": bytes(16), "id": 1, "rcpt": []}, ("sections[0].id",)),
        ({"body": "x" * 16, "id": "x", "rcpt": []}, ("sections[0].body must be msgpack bin",)),
        ({"body": bytes(16), "id": "x", "rcpt": {}}, ("sections[0].rcpt must be an array",)),
    ],
)
def test_section_shape(section: Any, words: tuple[str, ...]) -> None:
    """Sections must be {body: bin(>=16), id: str(1..48), rcpt: [stanza]}."""
    _malformed(raw(ENV, sections=[section]), *words)


def test_section_with_no_stanzas_is_well_formed() -> None:
    """A section wrapped for nobody is structurally valid (the header check is elsewhere)."""
    sec = replace(ENV.sections[0], rcpt=())
    assert () == decode(encode(replace(ENV, sections=(sec,)))).sections[0].rcpt


# --- msgpack-level rejections -----------------------------------------------------------------


@pytest.mark.parametrize("cut", [4, 5, 10, 50, len(DATA) // 2, len(DATA) - 65, len(DATA) - 1])
def test_truncated(cut: int) -> None:
    """Any truncation is malformed (not valid msgpack)."""
    _malformed(DATA[:cut])


@pytest.mark.parametrize("tail", [b"\x00", b"\xc0", DATA])
def test_trailing_bytes(tail: bytes) -> None:
    """Bytes after the map are malformed."""
    _malformed(DATA + tail, "not valid msgpack")


@pytest.mark.parametrize(
    ("field", "ext"),
    [("body", msgpack.ExtType(5, b"x" * 16)), ("sig", msgpack.ExtType(0, bytes(64)))],
)
def test_extension_type_in_field(field: str, ext: msgpack.ExtType) -> None:
    """An extension type anywhere is malformed, naming the extension code."""
    _malformed(raw(ENV, **{field: ext}), f"extension type {ext.code}")


def test_extension_type_in_header() -> None:
    """An application extension type inside hdr is malformed."""
    _malformed(raw(ENV, hdr={**ENV.hdr, "zz": msgpack.ExtType(5, b"x")}), "extension type 5")


def test_timestamp_extension_in_header_is_refused() -> None:
    """The msgpack timestamp extension (type -1) is an extension type too: malformed."""
    _malformed(raw(ENV, hdr={**ENV.hdr, "zz": msgpack.Timestamp(1, 0)}), "Timestamp")


def test_invalid_timestamp_extension() -> None:
    """A type -1 extension of an invalid length is malformed, not a ValueError."""
    ok = raw(ENV, hdr={**ENV.hdr, "zz": msgpack.Timestamp(1, 0)})
    _malformed(ok.replace(b"\xd6\xff\x00\x00\x00\x01", b"\xd5\xff\x00\x01", 1))


def test_invalid_utf8_string() -> None:
    """A str holding invalid UTF-8 is malformed."""
    data = raw(ENV, hdr={**ENV.hdr, "zz": "ab"})
    _malformed(data.replace(b"\xa2ab", b"\xa2\xff\xfe", 1), "not valid msgpack")


@pytest.mark.parametrize("key", [1, None, 1.5])
def test_non_string_map_key(key: Any) -> None:
    """Map keys other than str (ints, nil, floats) are malformed."""
    body = msgpack.packb({key: 1})
    _malformed(assemble(ENV, hdr=body), "not valid msgpack")


def test_mixed_str_and_bin_keys_in_header() -> None:
    """A header map mixing str and bin keys is refused with an EnvelopeError, not TypeError."""
    with pytest.raises((MalformedEnvelope, NonCanonicalEncoding)):
        decode(raw(ENV, hdr={**ENV.hdr, b"zz": 1}))


def test_mixed_str_and_bin_keys_nested_in_header() -> None:
    """The same inside a nested header map (handling)."""
    hdr = {**ENV.hdr, "handling": {**ENV.hdr["handling"], b"zz": 1}}
    with pytest.raises((MalformedEnvelope, NonCanonicalEncoding)):
        decode(raw(ENV, hdr=hdr))


@pytest.mark.parametrize(
    ("field", "header", "limit"),
    [
        ("hdr", b"\xdd\x80\x00\x00\x00", "max_array_len"),
        ("hdr", b"\xdf\x80\x00\x00\x00", "max_map_len"),
        ("rcpt", b"\xdd\xff\xff\xff\xff", "max_array_len"),
        ("sections", b"\xdc\xff\xff", "max_array_len"),
        ("body", b"\xc6\x80\x00\x00\x00", "incomplete input"),
        ("body", b"\xdb\x80\x00\x00\x00", "incomplete input"),
        ("sig", b"\xc5\xff\xff", "incomplete input"),
    ],
    ids=["array32", "map32", "array32-max", "array16", "bin32", "str32", "bin16"],
)
def test_length_bombs_are_malformed_quickly(field: str, header: bytes, limit: str) -> None:
    """Declared lengths far beyond the data (msgpack bombs) are refused at once."""
    data = b"\x87\xa1v\x01\xa5suite\x01"
    if field == "hdr":
        data += b"\xa3hdr" + header
    else:
        data = assemble(ENV, **{field: header})
    start = time.perf_counter()
    err = _malformed(data, "not valid msgpack")
    assert time.perf_counter() - start < 0.5
    assert limit in err.reason


def test_array_over_limit_with_real_items() -> None:
    """An array of 1,025 real items in hdr is malformed (max_array_len)."""
    _malformed(raw(ENV, hdr={**ENV.hdr, "zz": [0] * (MAX_ARRAY_LEN + 1)}), "max_array_len")


def test_map_over_limit_with_real_entries() -> None:
    """A map of 65 real entries in hdr is malformed (max_map_len)."""
    big = {f"k{i:03d}": 0 for i in range(MAX_MAP_LEN + 1)}
    _malformed(raw(ENV, hdr={**ENV.hdr, "zz": big}), "max_map_len")


def _nest(depth: int, kind: str) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


@pytest.mark.parametrize("kind", ["list", "map"])
def test_header_nesting_limit(kind: str) -> None:
    """hdr may nest 8 levels (itself included); one more is malformed."""
    assert 8 == MAX_DEPTH
    ok = decode(encode(replace(ENV, hdr={**ENV.hdr, "zz": _nest(MAX_DEPTH - 1, kind)})))
    assert _nest(MAX_DEPTH - 1, kind) == ok.hdr["zz"]
    deep = encode(replace(ENV, hdr={**ENV.hdr, "zz": _nest(MAX_DEPTH, kind)}))
    _malformed(deep, "hdr nests deeper than 8 levels")


def test_header_nesting_deep_behind_a_sibling() -> None:
    """A deep nest after a shallow sibling list is still found."""
    hdr = {**ENV.hdr, "aa": [[1]], "zz": [[], _nest(MAX_DEPTH, "list")]}
    _malformed(raw(ENV, hdr=hdr), "nests deeper")


def test_very_deep_nesting_is_malformed_quickly() -> None:
    """Thousands of nested arrays (stack bomb) are malformed, without recursion errors."""
    data = assemble(ENV, hdr=b"\x91" * 5000 + b"\x00")
    start = time.perf_counter()
    _malformed(data)
    assert time.perf_counter() - start < 0.5


# --- non-canonical encodings ------------------------------------------------------------------


def test_unsorted_header_keys() -> None:
    """hdr keys out of order: NonCanonicalEncoding naming hdr."""
    unsorted = {k: ENV.hdr[k] for k in reversed(list(ENV.hdr))}
    err = _non_canonical(raw(ENV, hdr=unsorted))
    assert "hdr map keys are not sorted" in err.reason


def test_unsorted_nested_header_keys() -> None:
    """Keys out of order in a nested header map are non-canonical too."""
    hdr = {**ENV.hdr, "handling": dict(reversed(list(ENV.hdr["handling"].items())))}
    _non_canonical(raw(ENV, hdr=hdr))


def test_unsorted_stanzas() -> None:
    """Stanzas out of (agency, kid) order: non-canonical, naming rcpt."""
    rcpt = [{"agency": s.agency, "enc": s.enc, "kid": s.kid} for s in reversed(ENV.rcpt)]
    err = _non_canonical(raw(ENV, rcpt=rcpt))
    assert "rcpt must be sorted by (agency, kid)" in err.reason


def test_duplicate_stanzas() -> None:
    """Two stanzas with the same (agency, kid) are non-canonical."""
    err = _non_canonical(encode(replace(ENV, rcpt=(STANZA, STANZA))))
    assert "without duplicates" in err.reason


def test_unsorted_section_stanzas() -> None:
    """The order rule applies to section stanzas."""
    sec = replace(ENV.sections[0], rcpt=(ENV.rcpt[1], ENV.rcpt[0]))
    err = _non_canonical(encode(replace(ENV, sections=(sec,))))
    assert "sections[0].rcpt must be sorted" in err.reason


def test_unsorted_stanza_map_keys() -> None:
    """A stanza map with keys out of order is non-canonical."""
    stanza = msgpack.packb(
        {"kid": STANZA.kid, "enc": STANZA.enc, "agency": STANZA.agency}, use_bin_type=True
    )
    _non_canonical(assemble(ENV, rcpt=b"\x91" + stanza))


def test_unsorted_section_map_keys() -> None:
    """A section map, or a stanza map inside it, with keys out of order is non-canonical (the
    decoder checks each map's key order and then re-encodes the decoded object as it is)."""
    sec = ENV.sections[0]
    stanzas = [stanza_obj(s) for s in sec.rcpt]
    reordered = {"rcpt": stanzas, "id": sec.id, "body": sec.body}
    _non_canonical(assemble(ENV, sections=b"\x91" + msgpack.packb(reordered, use_bin_type=True)))
    backwards = [{"kid": s["kid"], "enc": s["enc"], "agency": s["agency"]} for s in stanzas]
    inner = {"body": sec.body, "id": sec.id, "rcpt": backwards}
    _non_canonical(assemble(ENV, sections=b"\x91" + msgpack.packb(inner, use_bin_type=True)))


def _int_in_header(encoded: bytes) -> bytes:
    data = encode(replace(ENV, hdr={**ENV.hdr, "zz": 1}))
    assert 1 == data.count(b"\xa2zz\x01")
    return data.replace(b"\xa2zz\x01", b"\xa2zz" + encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        b"\xcc\x01",
        b"\xcd\x00\x01",
        b"\xce\x00\x00\x00\x01",
        b"\xcf" + bytes(7) + b"\x01",
        b"\xd0\x01",
    ],
    ids=["uint8", "uint16", "uint32", "uint64", "int8"],
)
def test_non_minimal_int_in_header(encoded: bytes) -> None:
    """The integer 1 in any wider form inside hdr is non-canonical."""
    _non_canonical(_int_in_header(encoded))


def test_non_minimal_int_for_suite() -> None:
    """suite = 1 as uint16 is non-canonical."""
    _non_canonical(assemble(ENV, suite=b"\xcd\x00\x01"))


@pytest.mark.parametrize(
    ("field", "packed"),
    [
        ("body", b"\xc5\x00" + bytes([len(ENV.body)]) + ENV.body),
        ("sig", b"\xc5\x00\x40" + ENV.sig),
        ("sig", b"\xc6\x00\x00\x00\x40" + ENV.sig),
    ],
    ids=["body-bin16", "sig-bin16", "sig-bin32"],
)
def test_non_minimal_bin(field: str, packed: bytes) -> None:
    """bin16/bin32 where bin8 suffices is non-canonical."""
    _non_canonical(assemble(ENV, **{field: packed}))


def test_str8_for_short_top_key() -> None:
    """A top-level key written as str8 instead of fixstr is non-canonical."""
    data = DATA.replace(b"\xa4body", b"\xd9\x04body", 1)
    _non_canonical(data)


def test_str8_for_short_header_value() -> None:
    """A short header string written as str8 is non-canonical."""
    _non_canonical(DATA.replace(b"\xa5alert", b"\xd9\x05alert", 1))


def test_str8_for_stanza_agency() -> None:
    """A stanza agency written as str8 is non-canonical."""
    packed = b"\xa6ESP-GC"
    assert packed in DATA
    _non_canonical(DATA.replace(packed, b"\xd9\x06ESP-GC"))


def test_map16_for_small_header_map() -> None:
    """hdr as map16 when a fixmap suffices is non-canonical."""
    hdr = _format.canonical_packb(ENV.hdr)
    assert 0x80 == hdr[0] & 0xF0
    _non_canonical(assemble(ENV, hdr=b"\xde\x00" + bytes([hdr[0] & 0x0F]) + hdr[1:]))


def test_array16_for_short_rcpt() -> None:
    """rcpt as array16 when a fixarray suffices is non-canonical."""
    rcpt = _format.canonical_packb(
        [{"agency": s.agency, "enc": s.enc, "kid": s.kid} for s in ENV.rcpt]
    )
    _non_canonical(assemble(ENV, rcpt=b"\xdc\x00" + bytes([rcpt[0] & 0x0F]) + rcpt[1:]))


def test_duplicate_header_key() -> None:
    """A header map with a key repeated (msgpack keeps the later value) is non-canonical."""
    base = _format.canonical_packb({**ENV.hdr, "zz": 0})
    assert 0x80 == base[0] & 0xF0
    twice = bytes([base[0] + 1]) + base[1:] + msgpack.packb("zz") + msgpack.packb(1)
    _non_canonical(assemble(ENV, hdr=twice))


def test_float32_in_header_is_refused() -> None:
    """A float32 in hdr is refused like any float."""
    data = encode(replace(ENV, hdr={**ENV.hdr, "zz": 1.5}))
    f64 = msgpack.packb(1.5)
    f32 = b"\xca" + bytes.fromhex("3fc00000")
    _malformed(data.replace(b"\xa2zz" + f64, b"\xa2zz" + f32, 1))


def test_float64_in_header_is_refused() -> None:
    """Floats are not part of the canonical encoding (spec section 1: 'No floats')."""
    data = encode(replace(ENV, hdr={**ENV.hdr, "zz": 1.5}))
    with pytest.raises((MalformedEnvelope, NonCanonicalEncoding)):
        decode(data)


# --- properties -------------------------------------------------------------------------------


def _typed(exc: BaseException) -> None:
    assert isinstance(exc, EnvelopeError)
    assert type(exc) is not EnvelopeError


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_raise_envelope_errors(data: bytes) -> None:
    """decode of arbitrary bytes returns or raises a typed EnvelopeError, nothing else."""
    try:
        decode(data)
    except PalermoError as exc:
        _typed(exc)


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_after_a_valid_prefix(tail: bytes) -> None:
    """A valid version prefix followed by anything only raises typed EnvelopeErrors."""
    try:
        decode(b"\x87\xa1v\x01" + tail)
    except PalermoError as exc:
        _typed(exc)


_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.binary(max_size=90)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 999_999_999))
)
_key = (
    st.text(max_size=8)
    | st.binary(max_size=8)
    | st.sampled_from(["agency", "enc", "kid", "id", "rcpt", "body"])
)
_values = st.recursive(
    _leaf,
    lambda c: st.lists(c, max_size=5) | st.dictionaries(_key, c, max_size=5),
    max_leaves=25,
)


@FUZZ
@given(_values)
def test_random_msgpack_values_only_raise_envelope_errors(value: Any) -> None:
    """decode of any packed msgpack value only raises typed EnvelopeErrors."""
    try:
        decode(msgpack.packb(value, use_bin_type=True))
    except PalermoError as exc:
        _typed(exc)


@FUZZ
@given(
    st.sampled_from(["suite", "hdr", "rcpt", "body", "sections", "sig"]),
    _values,
)
def test_random_msgpack_field_values_only_raise_envelope_errors(field: str, value: Any) -> None:
    """An envelope with any one field replaced by random msgpack data only raises EnvelopeErrors."""
    try:
        decode(raw(ENV, **{field: value}))
    except PalermoError as exc:
        _typed(exc)


@FUZZ
@given(_values, st.integers(0, 2), st.sampled_from(["agency", "enc", "kid", "id", "body", "rcpt"]))
def test_random_values_inside_stanzas_and_sections(value: Any, where: int, key: str) -> None:
    """Random data inside a stanza, a section, or as a header value only raises EnvelopeErrors."""
    if where == 0:
        data = raw(ENV, rcpt=[{**_st(), key: value}])
    elif where == 1:
        sec = {"body": bytes(16), "id": "x", "rcpt": [], key: value}
        data = raw(ENV, sections=[sec])
    else:
        data = raw(ENV, hdr={**ENV.hdr, key: value})
    try:
        decode(data)
    except PalermoError as exc:
        _typed(exc)


def test_suite_2_envelope_with_suite_1_stanzas_is_malformed() -> None:
    """Suite 2 is implemented; its stanzas are exactly 1,168 bytes, so a suite-1 envelope
    relabelled as suite 2 is refused on length before any key is used."""
    with pytest.raises(MalformedEnvelope, match="suite 2 stanzas are 1168"):
        decode(raw(ENV, suite=2))
