"""Palermo schemas: the Immigration Intelligence Report (IIR v1), vocabularies, the handling
block and the envelope header. Pure data: no I/O, no crypto."""

from ._handling import ActionCode, H3Restriction, Handling, NonRefoulementOverride
from ._header import EnvelopeHeader, SectionInfo, SectionKind
from ._types import AgencyId, CountryCode, EpochMillis, KeyId, from_epoch_ms, new_uuid7, to_epoch_ms
from ._vocab import Category, Classification, Kind, Priority, Route, Tlp

__all__ = [
    "ActionCode",
    "AgencyId",
    "Category",
    "Classification",
    "CountryCode",
    "EnvelopeHeader",
    "EpochMillis",
    "H3Restriction",
    "Handling",
    "KeyId",
    "Kind",
    "NonRefoulementOverride",
    "Priority",
    "Route",
    "SectionInfo",
    "SectionKind",
    "Tlp",
    "from_epoch_ms",
    "new_uuid7",
    "to_epoch_ms",
]
