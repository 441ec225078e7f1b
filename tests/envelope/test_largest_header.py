"""The largest header the schema admits fits the decoder's header limits (MAX_HEADER_BYTES,
MAX_HEADER_OBJECTS): every list at its maximum, every string at its longest, deny_to included,
so no envelope a node may seal is refused as too complex."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgpack

from protocol.envelope._format import MAX_HEADER_BYTES, MAX_HEADER_OBJECTS
from schemas import MAX_RECIPIENTS, EnvelopeHeader
from schemas._countries import ISO3166_ALPHA3
from schemas._handling import MAX_DENY_TO, MAX_H3, MAX_REL_TO
from schemas._header import MAX_REFS, MAX_SECTIONS


def _ids(prefix: str, n: int) -> list[str]:
    """``n`` distinct agency ids of the longest length (32)."""
    return [f"{prefix}{i:04d}".ljust(32, "X") for i in range(n)]


def _objects(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_objects(k) + _objects(v) for k, v in value.items())
    if isinstance(value, list):
        return 1 + sum(_objects(v) for v in value)
    return 1


def test_the_largest_header_fits_the_decoder_limits() -> None:
    """Every list full and every text at its longest: under 64 KiB and 4,096 objects."""
    nationalities = sorted(ISO3166_ALPHA3)[:64]
    handling = {
        "tlp": "AMBER", "h2": True, "action": "A3", "action_text": "a" * 1000,
        "rel_to": _ids("R", MAX_REL_TO), "deny_to": _ids("D", MAX_DENY_TO),
        "protected_released_to": _ids("P", MAX_REL_TO), "classification": "secret",
        "h3": [{"code": f"c{i:02d}".ljust(48, "x"), "text": "t" * 1000} for i in range(MAX_H3)],
        "not_before": datetime(2030, 1, 1, tzinfo=UTC),
        "expires": datetime(2031, 1, 1, tzinfo=UTC),
        "non_refoulement_override": {"agencies": _ids("O", MAX_REL_TO),
                                     "justification": "j" * 2000},
    }  # fmt: skip
    header = EnvelopeHeader(
        id="0190a5e0-0000-7000-8000-000000000000", originator="A" * 32, kid="0" * 16,
        created=datetime(2029, 1, 1, tzinfo=UTC), kind="report", route="central-med",
        category="routes", handling=handling, recipients=_ids("C", MAX_RECIPIENTS),
        refs=[f"r{i:03d}".ljust(128, "r") for i in range(MAX_REFS)],
        sections=[
            {"id": f"s{i}".ljust(48, "s"), "kind": "personal-data",
             "protected_nationalities": nationalities}
            for i in range(MAX_SECTIONS)
        ],
    )  # fmt: skip
    wire = header.to_wire()
    size = len(msgpack.packb(wire, use_bin_type=True))
    assert (True, True) == (size < MAX_HEADER_BYTES, _objects(wire) < MAX_HEADER_OBJECTS), (
        size,
        _objects(wire),
    )
