"""What an import gives back: IIR drafts for an officer to review, and the defaults a foreign
input (a bundle or event another tool made) must be given because it does not say them."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import Report

__all__ = ["Defaults", "Draft"]


@dataclass(frozen=True)
class Defaults:
    """The IIR fields another tool's output does not carry (CLI options)."""

    originator: str | None = None
    category: str | None = None
    route: str | None = None
    contact_unit: str = "imported"

    def missing(self) -> list[str]:
        return [n for n in ("originator", "category", "route") if getattr(self, n) is None]


@dataclass(frozen=True)
class Draft:
    """One imported report, not yet published: its handling is never wider than the input's
    markings, and publishing it is an officer's decision."""

    report: Report
    source_id: str
    """The STIX report id or the MISP event uuid it came from."""
    palermo_id: str | None
    """The Palermo report id it was exported from (None: not from Palermo)."""
