"""Shared scalar types: countries, agency ids, release targets, UUIDv7 and epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas import AgencyId, CountryCode, EpochMillis, from_epoch_ms, new_uuid7, to_epoch_ms
from schemas._countries import ISO3166_ALPHA3
from schemas._types import MAX_EPOCH_MS, KeyId, ReleaseTarget, Slug, UUIDv7

country = TypeAdapter(CountryCode)
agency = TypeAdapter(AgencyId)
release = TypeAdapter(ReleaseTarget)
uuid7 = TypeAdapter(UUIDv7)
millis = TypeAdapter(EpochMillis)


def test_country_codes_are_the_official_alpha3_list() -> None:
    """All 249 ISO 3166-1 alpha-3 codes are accepted, territories included."""
    assert 249 == len(ISO3166_ALPHA3)
    assert "PSE" == country.validate_python("PSE")
    assert "ESH" == country.validate_python("ESH")


@pytest.mark.parametrize("value", ["XXX", "ita", "IT", "ITAL", "UK", "EU", ""])
def test_country_code_refused(value: str) -> None:
    """Unassigned, lower-case, alpha-2 and made-up codes are refused with a hint."""
    with pytest.raises(ValidationError, match="ISO 3166-1 alpha-3"):
        country.validate_python(value)


@pytest.mark.parametrize("value", ["ITA-GDF", "AUS-ABF", "UNODC-STATS", "A1"])
def test_agency_ids_accepted(value: str) -> None:
    """Upper-case ASCII ids with digits and hyphens are agency ids."""
    assert value == agency.validate_python(value)


@pytest.mark.parametrize(
    "value",
    ["ita-gdf", "I", "1TA", "ITA.GDF", "ITA*", "ITA>", "\u0406TA-POL", "A" * 33, "ITA GDF"],
)
def test_agency_ids_refused(value: str) -> None:
    """Lower case, subject separators, wildcards, look-alike letters and overlong ids fail."""
    with pytest.raises(ValidationError):
        agency.validate_python(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("group:Bali", "group:<id>"),
        ("group:", "group:<id>"),
        ("group:bali process", "group:<id>"),
        ("bali-process", "neither an agency id"),
        ("ITA.GDF", "neither an agency id"),
    ],
)
def test_release_target_refused(value: str, message: str) -> None:
    """A release target is an agency id or group:<slug>; anything else says which form to use."""
    with pytest.raises(ValidationError, match=message):
        release.validate_python(value)


def test_release_target_accepted() -> None:
    """Both forms of release target pass unchanged."""
    assert ["group:bali-process", "ITA-GDF"] == [
        release.validate_python(v) for v in ("group:bali-process", "ITA-GDF")
    ]


def test_slug_and_key_id_patterns() -> None:
    """Slugs are lower-case ASCII up to 48 characters; key ids are 16 hex digits."""
    slug, kid = TypeAdapter(Slug), TypeAdapter(KeyId)
    assert "g1" == slug.validate_python("g1")
    for bad in ("G1", "-g", "a" * 49, "a_b"):
        with pytest.raises(ValidationError):
            slug.validate_python(bad)
    assert "0123456789abcdef" == kid.validate_python("0123456789abcdef")
    with pytest.raises(ValidationError):
        kid.validate_python("0123456789ABCDEF")


def test_new_uuid7_layout() -> None:
    """Time first, version 7, variant 10, and a fixed randomness gives a fixed id."""
    value = new_uuid7(0x0123456789AB, bytes(range(10)))
    assert "01234567-89ab-7001-8203-040506070809" == value
    assert value == uuid7.validate_python(value)
    assert new_uuid7() != new_uuid7()


def test_new_uuid7_needs_ten_random_bytes() -> None:
    """Randomness of the wrong length is refused rather than padded."""
    with pytest.raises(ValueError, match="10 bytes"):
        new_uuid7(0, bytes(9))


@pytest.mark.parametrize(
    "value",
    [
        "01234567-89ab-4001-8203-040506070809",  # version 4
        "01234567-89ab-7001-c203-040506070809",  # variant 110
        "01234567-89AB-7001-8203-040506070809",  # upper case
        "0123456789ab70018203040506070809",  # no hyphens
        "",
    ],
)
def test_uuid7_format_refused(value: str) -> None:
    """Only the lower-case, hyphenated RFC 9562 version-7 form is accepted."""
    with pytest.raises(ValidationError, match="UUIDv7"):
        uuid7.validate_python(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1_794_528_000_123, datetime(2026, 11, 13, 0, 0, 0, 123_000, tzinfo=UTC)),
        ("2026-11-13T02:00:00+02:00", datetime(2026, 11, 13, tzinfo=UTC)),
        ("2026-11-13T00:00:00.123999Z", datetime(2026, 11, 13, 0, 0, 0, 123_000, tzinfo=UTC)),
        (
            datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 1, 1, 17, tzinfo=UTC),
        ),
        (MAX_EPOCH_MS, datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)),
    ],
)
def test_epoch_millis_reads_text_ints_and_aware_datetimes(value: Any, expected: datetime) -> None:
    """RFC 3339 text, integer ms and aware datetimes become UTC, truncated to the millisecond."""
    actual = millis.validate_python(value)
    assert expected == actual
    assert UTC == actual.tzinfo


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime(2026, 1, 1), "timezone"),
        ("2026-11-13T02:00:00", "timezone"),
        (True, "RFC 3339"),
        (-1, "outside"),
        (MAX_EPOCH_MS + 1, "outside"),
        (datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))), "representable"),
    ],
)
def test_epoch_millis_refused(value: Any, message: str) -> None:
    """Naive times, booleans and times outside 1970..9999 are validation errors, not crashes."""
    with pytest.raises(ValidationError, match=message):
        millis.validate_python(value)


def test_epoch_millis_serialises_as_integer_ms() -> None:
    """On the wire a time is an integer number of milliseconds."""
    assert 1_794_528_000_123 == millis.dump_python(from_epoch_ms(1_794_528_000_123), mode="json")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_EPOCH_MS))
def test_epoch_ms_round_trip(ms: int) -> None:
    """Any millisecond in range survives int -> datetime -> int exactly."""
    assert ms == to_epoch_ms(from_epoch_ms(ms))
    assert ms == millis.dump_python(millis.validate_python(ms), mode="json")
