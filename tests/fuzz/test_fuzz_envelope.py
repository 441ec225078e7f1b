"""Fuzzing the envelope decoder: any input is opened or refused with a typed PalermoError.

Extends tests/wire/test_wire_fuzz.py (decode of random bytes, single flips, truncations) to
every path a received envelope takes (decode, the broker's inspect, a node's open and
open_report), to mutations of every golden vector, and to re-signed structural mutations that
reach the checks behind the signature. fuzz/harness.py holds the property itself.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from fuzz import harness, seeds
from node.reports import open_report
from protocol.envelope import decode, open_envelope
from schemas import parse_report
from schemas.errors import AuthenticationFailed, HeaderInvalid, MalformedEnvelope
from tests.fuzz._strategies import BOMBS, FUZZ, msgpack_values, mutated, tree_mutated

SEEDS = list(seeds.envelope_seeds().values())
FIELDS: dict[str, Any] = {k: v for k, v in harness.BASE.items() if k != "sig"}
V1 = b"\x87\xa1v\x01"


def test_resigned_base_opens_and_reaches_the_header_schema() -> None:
    """Not vacuous: the re-signed base opens, and a bad header gets past the signature."""
    ita, mlt = harness.IDENTITIES[2], harness.IDENTITIES[0]
    data = harness.sign_structure({})
    opened = open_envelope(data, [ita], harness.SIGNERS, now=harness.NOW)
    assert harness.BASE_ENVELOPE == data
    assert ("personal-data", "protected-persons") == tuple(sorted(opened.sections))
    assert parse_report(harness.EXAMPLE.read_bytes()) == open_report(opened)
    assert ("protected-persons",) == open_envelope(
        data, [mlt], harness.SIGNERS, now=harness.NOW
    ).withheld
    with pytest.raises(HeaderInvalid) as info:
        open_envelope(
            harness.sign_structure({"hdr": {**harness.BASE["hdr"], "route": "nowhere"}}),
            [ita],
            harness.SIGNERS,
            now=harness.NOW,
        )
    assert "header fails the schema at route" in info.value.reason
    assert len(list(seeds.VECTORS.glob("*.txt"))) + 1 == len(SEEDS)  # each vector, the base


@settings(FUZZ, max_examples=1000)
@given(st.binary(max_size=4096))
def test_any_bytes_after_the_v1_prefix(tail: bytes) -> None:
    """Bytes behind a valid version prefix reach msgpack and the shape checks; typed errors only."""
    for outcome in harness.envelope_input(V1 + tail):
        event(outcome)


@settings(FUZZ, max_examples=3000)
@given(mutated(SEEDS))
def test_mutated_vectors(data: bytes) -> None:
    """Bit flips, truncations, splices and length bombs in any vector: typed errors only."""
    for outcome in harness.envelope_input(data):
        event(outcome)


@settings(FUZZ, max_examples=1200)
@given(tree_mutated(FIELDS, msgpack_values))
def test_mutated_structure_resigned(fields: dict[str, Any]) -> None:
    """Any node of a valid envelope replaced, deleted or type-swapped, then re-signed."""
    for outcome in harness.envelope_structure(fields):
        event(outcome)


@settings(FUZZ, max_examples=600)
@given(st.dictionaries(st.sampled_from(list(FIELDS)), msgpack_values, max_size=4))
def test_any_msgpack_fields_resigned(fields: dict[str, Any]) -> None:
    """Whole fields replaced by any msgpack-able value (header, stanzas, body, sections)."""
    for outcome in harness.envelope_structure(fields):
        event(outcome)


@settings(FUZZ, max_examples=200)
@given(st.sampled_from(SEEDS), st.sampled_from(BOMBS), st.integers(0, 2000))
def test_declared_lengths_cost_no_memory(seed: bytes, bomb: bytes, at: int) -> None:
    """A length bomb anywhere is refused without allocating what it declares."""
    data = seed[:at] + bomb + seed[at:]
    tracemalloc.start()
    try:
        harness.envelope_input(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Declared lengths reach 4 GiB; what is spent stays within a small multiple of the input.
    assert peak < 8 * 1024 * 1024


def test_every_bomb_is_refused_at_the_front() -> None:
    """Each bomb right after the version prefix is a typed MalformedEnvelope."""
    for bomb in BOMBS:
        with pytest.raises(MalformedEnvelope):
            decode(V1 + b"\xa5suite\x01\xa3hdr" + bomb)


def test_a_flip_in_a_signed_vector_never_opens() -> None:
    """Control: the success vector with its last signature byte flipped is an auth failure."""
    data = seeds.envelope_seeds()["success-one-recipient"]
    with pytest.raises(AuthenticationFailed):
        open_envelope(
            data[:-1] + bytes([data[-1] ^ 1]),
            [harness.IDENTITIES[0]],
            harness.SIGNERS,
            now=harness.NOW,
        )
