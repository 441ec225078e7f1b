"""Signed receipts a recipient's node sends back to the originator (delivered, refused, purged)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from schemas import AgencyId, EpochMillis
from schemas._types import UUIDv7

__all__ = ["MAX_RECEIPT_REASON", "Receipt"]

MAX_RECEIPT_REASON: Final[int] = 2000


class Receipt(BaseModel):
    """What a recipient tells the originator about one report, signed by the recipient."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["receipt"] = "receipt"
    envelope: UUIDv7
    originator: AgencyId
    recipient: AgencyId
    status: Literal["delivered", "opened", "refused", "purged"]
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$")] | None = None
    """With ``refused``: the machine-readable reason (an error or policy code)."""
    reason: Annotated[str, StringConstraints(max_length=MAX_RECEIPT_REASON)] | None = None
    time: EpochMillis
