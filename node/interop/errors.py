"""The errors of the interoperability bridge, under ``InputError`` of the one hierarchy
(``schemas/errors.py``): what a caller gave us (a bundle, an event) cannot be brought in without
losing or widening a handling code."""

from __future__ import annotations

from typing import Any

from schemas.errors import InputError

__all__ = ["MarkingsUnmappable", "Problem"]

Problem = tuple[str, str]
"""(object id, why it cannot be mapped)."""


class MarkingsUnmappable(InputError):
    """A STIX bundle or MISP event whose markings Palermo cannot carry exactly.

    ``problems`` lists each object (STIX id, MISP event or attribute uuid) and why: an unknown
    marking, contradictory TLP labels, a granular marking Palermo cannot honour, a distribution
    wider than the handling. Nothing of the input is imported when this is raised.
    """

    code = "markings_unmappable"

    def __init__(self, problems: list[Problem]) -> None:
        lines = "; ".join(f"{oid}: {why}" for oid, why in problems)
        super().__init__(
            f"{len(problems)} object(s) cannot be imported without losing or widening their "
            f"handling, so nothing was imported: {lines}"
        )
        self.problems = problems

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "problems": [{"object": oid, "reason": why} for oid, why in self.problems],
        }
