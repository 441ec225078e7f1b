"""Signed receipts a recipient's node sends back to the originator (delivered, refused, purged)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from schemas import AgencyId, EpochMillis
from schemas._types import UUIDv7

__all__ = ["Receipt"]


class Receipt(BaseModel):
    """What a recipient tells the originator about one report, signed by the recipient."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["receipt"] = "receipt"
    envelope: UUIDv7
    originator: AgencyId
    recipient: AgencyId
    status: Literal["delivered", "opened", "refused", "purged"]
    reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    time: EpochMillis
