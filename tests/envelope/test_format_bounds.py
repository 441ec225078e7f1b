"""Totals bounded before decoding: a megabyte of tiny msgpack objects is refused by a streaming
pre-scan (issue 12, item 10) without building them; genuine envelopes at the format's own limits
still decode."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgpack
import pytest

from protocol.envelope import MAX_SECTIONS, MAX_STANZAS, Envelope, Section, Stanza, decode, encode
from schemas.errors import EnvelopeError
from tests.envelope._factories import READERS, assemble, sealed

ENV = decode(sealed(READERS, b"report" * 20, sections={"personal-data": (b"p", READERS[:1])}))
MIB = 1024 * 1024
# Building what the pre-scan refuses takes ~50 MiB (the issue measured +68 MiB); the scan itself
# holds one copy of the input in msgpack's buffer and a few small objects.
SMALL_PEAK = 4 * MIB


def _tiny_objects(budget: int) -> bytes:
    """An array16 of maps of one entry ({"a": 0}, 4 bytes each) filling ``budget`` bytes:
    the most expensive shape to materialise per byte."""
    one = msgpack.packb({"a": 0})
    inner = b"\xdc" + (1000).to_bytes(2, "big") + one * 1000
    count = budget // len(inner)
    return b"\xdc" + count.to_bytes(2, "big") + inner * count


def _hostile(where: str) -> bytes:
    """An envelope just under 1 MiB whose ``where`` field is all tiny objects."""
    objects = _tiny_objects(MIB - 4096)
    if where == "hdr":
        return assemble(ENV, hdr=b"\x81\xa2zz" + objects)
    if where == "sections":
        packed = msgpack.packb(
            {"body": ENV.sections[0].body, "id": "personal-data"}, use_bin_type=True
        )
        # A section map whose "rcpt" holds the objects (keys in canonical order: body, id, rcpt).
        section = b"\x83" + packed[1:] + msgpack.packb("rcpt") + objects
        return assemble(ENV, sections=b"\x91" + section)
    return assemble(ENV, **{where: objects})


@pytest.fixture
def unpackb_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records every call of msgpack.unpackb (the decoder's materialising step), by input size."""
    calls: list[int] = []
    real: Callable[..., Any] = msgpack.unpackb

    def spy(data: bytes, **kwargs: Any) -> Any:
        calls.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(msgpack, "unpackb", spy)
    return calls


def _refused(data: bytes) -> tuple[str, int]:
    """(error code, peak bytes allocated) of decoding ``data``."""
    tracemalloc.start()
    try:
        with pytest.raises(EnvelopeError) as err:
            decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return err.value.code, peak


@pytest.mark.parametrize("where", ["hdr", "rcpt", "sections"])
def test_a_megabyte_of_tiny_objects_is_refused_before_decoding(
    where: str, unpackb_calls: list[int]
) -> None:
    """1 MiB of tiny objects in the header, the stanzas or a section: too_complex, with nothing
    materialised (msgpack.unpackb never runs) and a small allocation peak."""
    data = _hostile(where)
    unpackb_calls.clear()  # building the input used it
    assert MIB - 8192 < len(data) <= MIB
    code, peak = _refused(data)
    assert ("too_complex", [], True) == (code, unpackb_calls, peak < SMALL_PEAK)


def test_truncated_megabyte_of_tiny_objects_is_refused_too(unpackb_calls: list[int]) -> None:
    """The same objects cut short (so no C skip can measure them) are still counted and refused:
    the decoder would otherwise build them all before finding the truncation."""
    data = _hostile("rcpt")[:-100]
    unpackb_calls.clear()
    code, peak = _refused(data)
    assert ("too_complex", [], True) == (code, unpackb_calls, peak < SMALL_PEAK)


def test_header_over_its_byte_limit_is_refused() -> None:
    """A header of one 70,000-character string (few objects, many bytes) is too_complex at
    the 64 KiB header limit (MAX_HEADER_BYTES)."""
    data = assemble(ENV, hdr=msgpack.packb({"zz": "x" * 70_000}))
    with pytest.raises(EnvelopeError) as err:
        decode(data)
    assert ("too_complex", 64 * 1024) == (err.value.code, getattr(err.value, "limit", 0))


def test_header_with_too_many_objects_is_refused() -> None:
    """A header of 5,000 small integers (10 KiB, under the byte limit) is too_complex at the
    4,096-object header limit (MAX_HEADER_OBJECTS)."""
    data = assemble(ENV, hdr=msgpack.packb({"zz": [[1] * 1000] * 5}))
    with pytest.raises(EnvelopeError) as err:
        decode(data)
    assert ("too_complex", 4096) == (err.value.code, getattr(err.value, "limit", 0))


def _stanzas(n: int, prefix: str) -> tuple[Stanza, ...]:
    return tuple(Stanza(f"{prefix}-{i:04d}", "0123456789abcdef", bytes(80)) for i in range(n))


def test_an_envelope_at_every_structural_limit_still_decodes() -> None:
    """256 stanzas in the body and in each of 8 sections, and a 4,000-object header: the
    largest envelope the format admits stays under the totals and decodes unchanged."""
    sections = tuple(
        Section(f"s{i}", _stanzas(MAX_STANZAS, f"S{i}"), bytes(16)) for i in range(MAX_SECTIONS)
    )
    big_header = {**ENV.hdr, "zz": [[1] * 990] * 4}
    env = Envelope(1, 1, big_header, _stanzas(MAX_STANZAS, "R"), bytes(16), sections, bytes(64))
    data = encode(env)
    assert replace(env, hdr=decode(data).hdr) == decode(data)


def test_large_genuine_body_and_sections_decode() -> None:
    """A 900 KB body and a 60 KB section (bytes in bin fields, few objects) decode."""
    data = sealed(READERS, b"r" * 900_000, sections={"personal-data": (b"p" * 60_000, READERS)})
    env = decode(data)
    assert (900_000 + 16, 60_000 + 16) == (len(env.body), len(env.sections[0].body))
