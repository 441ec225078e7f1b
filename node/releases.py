"""Onward dissemination: release requests, the originator's decision, and release envelopes.

A holder asks the originator (kind ``release-request``); the originator's node refuses at once
what its policy forbids (``policies.may_forward``) and holds the rest for an officer
(``palermo release pending / grant / deny``). A grant seals the report again for the new
recipient as a ``release`` envelope that refers to the original (docs/decisions/0008).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from schemas import AgencyId, EpochMillis
from schemas._types import UUIDv7

__all__ = ["ReleaseDecision", "ReleaseRequest"]


class ReleaseRequest(BaseModel):
    """The body of a ``release-request`` envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report: UUIDv7
    to: AgencyId
    purpose: Annotated[str, StringConstraints(min_length=3, max_length=2000)]


class ReleaseDecision(BaseModel):
    """The originator's answer, signed, sent back to the requester."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["release-decision"] = "release-decision"
    request: UUIDv7
    report: UUIDv7
    requester: AgencyId
    target: AgencyId
    decision: Literal["granted", "denied"]
    reason: Annotated[str, StringConstraints(max_length=4000)] | None = None
    release: UUIDv7 | None = None
    time: EpochMillis
