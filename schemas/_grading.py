"""Evaluation codes, kept in the scheme they came in, with a conservative common view.

A report stores its grading exactly as the originator gave it. :meth:`common` maps it onto a
five-level view for comparison and filtering; the mapping never upgrades: where a scheme's level
spans two common levels, it takes the worse one. The table is in docs/schema.md.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Admiralty6x6", "CommonGrade", "Europol4x4", "Evaluation", "Uk3x5x2", "Uk5x5x5"]

# Common source reliability: 1 completely reliable, 2 usually, 3 fairly, 4 not usually or
# unreliable, 5 cannot be judged. Common information credibility: 1 confirmed, 2 probably true,
# 3 possibly true, 4 doubtful or suspected false, 5 cannot be judged.
_EUROPOL_SOURCE: Final = {"A": 1, "B": 2, "C": 4, "X": 5}
_EUROPOL_INFO: Final = {"1": 1, "2": 2, "3": 3, "4": 5}
_ADMIRALTY_SOURCE: Final = {"A": 1, "B": 2, "C": 3, "D": 4, "E": 4, "F": 5}
_ADMIRALTY_INFO: Final = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 4, "6": 5}
_UK5_SOURCE: Final = {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5}
_UK5_INFO: Final = {"1": 1, "2": 2, "3": 3, "4": 5, "5": 4}
# 3x5x2 "reliable" covers 5x5x5's A and B: the worse of the two is taken.
_UK3_SOURCE: Final = {"1": 2, "2": 5, "3": 4}
# 3x5x2 intelligence is graded by the source's access, like Europol's and 5x5x5's codes, so the
# same meaning must land on the same level: A "known directly to the source" spans 5x5x5's 1 and
# 2 (the worse, 2); B "known indirectly but corroborated" is 5x5x5's and Europol's 3; C "known
# indirectly" (uncorroborated) is Europol's 4, which cannot be judged; D "not known" likewise.
_UK3_INFO: Final = {"A": 2, "B": 3, "C": 5, "D": 5, "E": 4}


class CommonGrade(BaseModel):
    model_config = ConfigDict(frozen=True)

    reliability: int = Field(ge=1, le=5)
    credibility: int = Field(ge=1, le=5)


class _Grade(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Europol4x4(_Grade):
    scheme: Literal["europol-4x4"] = "europol-4x4"
    source: Literal["A", "B", "C", "X"]
    information: Literal["1", "2", "3", "4"]

    def common(self) -> CommonGrade:
        return CommonGrade(
            reliability=_EUROPOL_SOURCE[self.source],
            credibility=_EUROPOL_INFO[self.information],
        )


class Admiralty6x6(_Grade):
    """NATO / Admiralty code."""

    scheme: Literal["admiralty-6x6"] = "admiralty-6x6"
    source: Literal["A", "B", "C", "D", "E", "F"]
    information: Literal["1", "2", "3", "4", "5", "6"]

    def common(self) -> CommonGrade:
        return CommonGrade(
            reliability=_ADMIRALTY_SOURCE[self.source],
            credibility=_ADMIRALTY_INFO[self.information],
        )


class Uk5x5x5(_Grade):
    """UK 5x5x5: handling 5 means no further dissemination, refer to the originator."""

    scheme: Literal["uk-5x5x5"] = "uk-5x5x5"
    source: Literal["A", "B", "C", "D", "E"]
    intelligence: Literal["1", "2", "3", "4", "5"]
    handling: Literal["1", "2", "3", "4", "5"]

    def common(self) -> CommonGrade:
        return CommonGrade(
            reliability=_UK5_SOURCE[self.source], credibility=_UK5_INFO[self.intelligence]
        )


class Uk3x5x2(_Grade):
    """UK 3x5x2: handling P (lawful sharing permitted) or C (with conditions)."""

    scheme: Literal["uk-3x5x2"] = "uk-3x5x2"
    source: Literal["1", "2", "3"]
    intelligence: Literal["A", "B", "C", "D", "E"]
    handling: Literal["P", "C"]

    def common(self) -> CommonGrade:
        return CommonGrade(
            reliability=_UK3_SOURCE[self.source], credibility=_UK3_INFO[self.intelligence]
        )


Evaluation = Annotated[Europol4x4 | Admiralty6x6 | Uk5x5x5 | Uk3x5x2, Field(discriminator="scheme")]
"""An evaluation in one of the four schemes in use, chosen by ``scheme``."""
