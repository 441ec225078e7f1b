"""Constrained scalar types shared by the report, the handling block and the envelope header.

Identifiers that become NATS subject tokens (agency ids, routes, categories, kinds) are ASCII
only, so that a Unicode look-alike ("ІTA-POL" with a Cyrillic І) can never pass for a real
agency, and so that no token can contain a subject separator or wildcard.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from ._countries import ISO3166_ALPHA3

__all__ = [
    "AGENCY_ID_PATTERN",
    "ALL_MEMBERS",
    "COUNTRY_PREFIX",
    "AgencyId",
    "CountryCode",
    "DenyTarget",
    "EpochMillis",
    "KeyId",
    "RelToEntry",
    "ReleaseTarget",
    "Slug",
    "UUIDv7",
    "from_epoch_ms",
    "to_epoch_ms",
]

AGENCY_ID_PATTERN: Final[str] = r"^[A-Z][A-Z0-9-]{1,31}$"
GROUP_PREFIX: Final[str] = "group:"
COUNTRY_PREFIX: Final[str] = "country:"
ALL_MEMBERS: Final[str] = "all-members"
"""The ``rel_to`` value that names every member of the federation explicitly (it stands alone)."""
_SLUG: Final[str] = r"^[a-z0-9][a-z0-9-]{0,47}$"
_UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

AgencyId = Annotated[str, StringConstraints(pattern=AGENCY_ID_PATTERN)]
"""An agency id: ASCII upper case, digits and '-', 2 to 32 characters, e.g. ``ITA-GDF``."""


def _slug_words(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """The pattern check, with an error a person can act on instead of the regex."""
    try:
        return handler(value)
    except ValidationError as exc:
        if any(e["type"] == "string_pattern_mismatch" for e in exc.errors()):
            raise PydanticCustomError(
                "string_pattern_mismatch",
                "use 1 to 48 lower-case letters, digits and hyphens, starting with a letter or "
                "digit (e.g. 'no-contact-with-subject')",
            ) from None
        raise


Slug = Annotated[str, StringConstraints(pattern=_SLUG), WrapValidator(_slug_words)]
"""A lower-case ASCII identifier: letters, digits and '-', up to 48 characters (H3 codes,
person refs, group and agreement ids)."""

KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
"""A key id: the first 8 bytes of SHA-256 over the raw public key, in hex."""


def _check_country(value: str) -> str:
    if value not in ISO3166_ALPHA3:
        raise ValueError(
            f"{value!r} is not an ISO 3166-1 alpha-3 country code (e.g. ITA, LBY, AUS)"
        )
    return value


CountryCode = Annotated[str, AfterValidator(_check_country)]
"""An ISO 3166-1 alpha-3 code (including territories), validated against the official list."""


def _check_release_target(value: str) -> str:
    if value.startswith(GROUP_PREFIX):
        if not re.fullmatch(_SLUG, value[len(GROUP_PREFIX) :]):
            raise ValueError(f"{value!r}: a group is written group:<id>, e.g. group:bali-process")
        return value
    # fullmatch, not match: with match, '$' also accepts a trailing newline ("ITA-GDF\n").
    if not re.fullmatch(AGENCY_ID_PATTERN, value):
        raise ValueError(
            f"{value!r} is neither an agency id (e.g. ITA-GDF) nor a group (group:bali-process)"
        )
    return value


ReleaseTarget = Annotated[str, AfterValidator(_check_release_target)]
"""An agency id or ``group:<id>``: an agreement's party, a standing-policy rule's target."""


def _check_rel_to_entry(value: str) -> str:
    # "all-members" is lower case, so it can never be read as an agency id (upper case only).
    return value if value == ALL_MEMBERS else _check_release_target(value)


RelToEntry = Annotated[str, AfterValidator(_check_rel_to_entry)]
"""An entry of ``rel_to``: an agency id, ``group:<id>``, or ``all-members`` on its own."""


def _check_deny_target(value: str) -> str:
    if value.startswith(COUNTRY_PREFIX):
        # Prefixed, not bare: "LBY" is also a well-formed agency id, and an exclusion must
        # never be read as something other than what the originator meant.
        code = value[len(COUNTRY_PREFIX) :]
        if code not in ISO3166_ALPHA3:
            raise ValueError(
                f"{value!r}: a country is written country:<ISO 3166-1 alpha-3 code>, "
                "e.g. country:LBY"
            )
        return value
    if value.startswith(GROUP_PREFIX):
        return _check_release_target(value)  # its own message says how to write a group
    try:
        return _check_release_target(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an agency id (e.g. ITA-GDF), a group (group:bali-process) "
            "nor a country (country:LBY)"
        ) from None


DenyTarget = Annotated[str, AfterValidator(_check_deny_target)]
"""An entry of ``deny_to``: an agency id, ``group:<id>`` or ``country:<alpha-3>`` (every member
agency of that country)."""


def _check_uuid7(value: str) -> str:
    # fullmatch: '$' alone lets "<uuid>\n" through, which uuid.UUID() then refuses and which
    # would put a newline into the broker's plm.seen.<id> subject.
    if not _UUID7.fullmatch(value):
        raise ValueError(f"{value!r} is not a lower-case UUIDv7 (RFC 9562)")
    return value


UUIDv7 = Annotated[str, AfterValidator(_check_uuid7)]


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EPOCH_MS: Final[int] = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def to_epoch_ms(value: datetime) -> int:
    """A timezone-aware datetime as integer milliseconds since the Unix epoch."""
    return _floor_ms(value)


def _floor_ms(value: datetime) -> int:
    delta = value - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def from_epoch_ms(value: int) -> datetime:
    # Integer arithmetic: fromtimestamp(value / 1000) goes through a float and can land a
    # microsecond short, which would change the millisecond on the way back.
    return _EPOCH + timedelta(milliseconds=value)


def _parse_time(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a time must be an RFC 3339 string or integer milliseconds")
    if isinstance(value, int):
        # An out-of-range integer must be a validation error, not an OverflowError escaping the
        # validator (a flipped bit in a header's time would otherwise crash the decoder).
        if not 0 <= value <= MAX_EPOCH_MS:
            raise ValueError(f"time {value} ms is outside 1970-01-01 to 9999-12-31")
        return from_epoch_ms(value)
    return value


def _aware_ms(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time must carry a timezone, e.g. 2026-11-22T10:00:00Z")
    # Millisecond precision is all the wire keeps; truncate so a round-trip is exact.
    try:
        ms = _floor_ms(value.astimezone(UTC))
    except OverflowError as exc:
        raise ValueError("time is outside the representable range") from exc
    # The same range as integer input: a time accepted as text must read back from the wire.
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise ValueError(f"time {value.isoformat()} is outside 1970-01-01 to 9999-12-31")
    return from_epoch_ms(ms)


EpochMillis = Annotated[
    datetime,
    BeforeValidator(_parse_time),
    AfterValidator(_aware_ms),
    PlainSerializer(_floor_ms, return_type=int, when_used="always"),
]
"""UTC time to the millisecond; read from RFC 3339 text or epoch ms, written as epoch ms."""


def new_uuid7(now_ms: int | None = None, rand: bytes | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit ms timestamp, version 7, variant 10, 74 random bits."""
    import os
    import time

    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rnd = os.urandom(10) if rand is None else rand
    if len(rnd) != 10:
        raise ValueError("a UUIDv7 needs 10 bytes of randomness")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (int.from_bytes(rnd[:2], "big") & 0x0FFF) << 64
    value |= 0b10 << 62
    value |= int.from_bytes(rnd[2:], "big") & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
