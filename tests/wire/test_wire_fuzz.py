"""Bad bytes anywhere give a typed EnvelopeError, never a crash and never a wrong plaintext."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.envelope import StaticSigners, decode, open_envelope, seal
from protocol.keys import EncryptionKey, SigningKey
from schemas import EnvelopeHeader, Handling, new_uuid7
from schemas.errors import EnvelopeError, EnvelopeTooLarge, MalformedEnvelope, UnsupportedVersion

SIGNER = SigningKey.generate("ITA-GDF")
READERS = [EncryptionKey.generate(a) for a in ("MLT-AFM", "GRC-HCG", "ESP-GC")]
NOW = datetime.now(UTC)
SIGNERS = StaticSigners.of([SIGNER.public])


def _sealed(body: bytes = b"report" * 50, readers: list[EncryptionKey] = READERS) -> bytes:
    header = EnvelopeHeader(
        id=new_uuid7(),
        originator="ITA-GDF",
        kid=SIGNER.kid,
        created=NOW,
        kind="alert",
        route="central-med",
        category="routes",
        handling=Handling(tlp="AMBER", rel_to=["group:med-coastal"]),
        recipients=[r.agency for r in readers],
    )
    return seal(header, body, SIGNER, [r.public for r in readers])


SEALED = _sealed()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_give_typed_errors(data: bytes) -> None:
    """decode() of arbitrary bytes raises an EnvelopeError subclass or nothing."""
    with contextlib.suppress(EnvelopeError):
        decode(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(SEALED) - 1), st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_is_refused(index: int, mask: int) -> None:
    """Changing any byte of a sealed envelope is refused with a typed error."""
    tampered = SEALED[:index] + bytes([SEALED[index] ^ mask]) + SEALED[index + 1 :]
    with pytest.raises(EnvelopeError):
        open_envelope(tampered, [READERS[0]], SIGNERS, now=NOW)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=len(SEALED) - 1))
def test_truncation_is_malformed(cut: int) -> None:
    """Any truncation is refused before a key is used."""
    with pytest.raises(EnvelopeError):
        open_envelope(SEALED[:cut], [READERS[0]], SIGNERS, now=NOW)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=3))
def test_round_trip_for_any_body(body: bytes, n: int) -> None:
    """Every recipient opens exactly the body that was sealed."""
    data = _sealed(body, READERS[:n])
    assert [body] * n == [open_envelope(data, [r], SIGNERS, now=NOW).body for r in READERS[:n]]


@pytest.mark.parametrize(
    "bomb",
    [
        b"\x87\xa1v\x01\xa5suite\x01\xa3hdr\xdf\x7f\xff\xff\xff",  # map32 claiming 2**31 entries
        b"\x87\xa1v\x01\xa5suite\x01\xa3hdr\xdd\x7f\xff\xff\xff",  # array32 claiming 2**31 items
        b"\x87\xa1v\x01\xa5suite\x01\xa3hdr\xdb\x7f\xff\xff\xff",  # str32 claiming 2 GiB
        b"\x87\xa1v\x01\xa5suite\x01\xa3hdr" + b"\x91" * 5000 + b"\x00",  # deep nesting
        b"\x87\xa1v\x01" + msgpack.packb({str(i): i for i in range(1000)})[:4000],  # many keys
    ],
)
def test_msgpack_bombs_are_refused_quickly(bomb: bytes) -> None:
    """Huge declared lengths and deep nesting are refused without allocating for them."""
    with pytest.raises(MalformedEnvelope):
        decode(bomb)


def test_other_version_and_oversize() -> None:
    """Version 2 is named as unsupported; an oversized envelope is refused before parsing."""
    with pytest.raises(UnsupportedVersion) as info:
        decode(b"\x87\xa1v\x02" + SEALED[4:])
    assert 2 == info.value.version
    with pytest.raises(EnvelopeTooLarge) as big:
        decode(SEALED, max_size=100)
    assert (len(SEALED), 100) == (big.value.size, big.value.limit)
