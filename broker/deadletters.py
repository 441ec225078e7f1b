"""Dead letters in PLM_DEAD: what was refused or stranded, and republishing what a retry fixes.

A dead letter carries the envelope's bytes unchanged and the headers the broker wrote:
``Palermo-Reason-Code``, ``Palermo-Reason`` and ``Palermo-Subject`` (the subject it was published
on). Only ``redelivery_exhausted`` letters are republishable: the broker's outcome for the
envelope (its copies, or its refusal) could not be stored (a full stream, an outage), so the
broker decides it again. Every other code is a refusal, which republishing the same bytes would
only repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgpack
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg

from schemas.errors import InputError

from .service import EXHAUSTED

__all__ = ["REPUBLISHABLE", "DeadLetter", "refuse_unrepublishable", "republish"]

REPUBLISHABLE: Final[frozenset[str]] = frozenset({EXHAUSTED})
_PUBLISH_PREFIX: Final[str] = "plm.pub."


def _envelope_id(data: bytes) -> str | None:
    """The header's id, read without verifying anything (for display and for the message id)."""
    try:
        hdr = msgpack.unpackb(data, raw=False)["hdr"]
    except Exception:
        return None
    ident = hdr.get("id") if isinstance(hdr, dict) else None
    return ident if isinstance(ident, str) else None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of PLM_DEAD, as an operator sees it."""

    seq: int
    code: str
    reason: str
    subject: str
    envelope_id: str | None
    data: bytes

    @classmethod
    def of(cls, msg: RawStreamMsg) -> DeadLetter:
        headers = msg.headers or {}
        return cls(
            seq=int(msg.seq or 0),
            code=headers.get("Palermo-Reason-Code", "?"),
            reason=headers.get("Palermo-Reason", ""),
            subject=headers.get("Palermo-Subject", ""),
            envelope_id=headers.get("Palermo-Envelope-Id") or _envelope_id(msg.data or b""),
            data=msg.data or b"",
        )

    @property
    def republishable(self) -> bool:
        return self.code in REPUBLISHABLE and self.subject.startswith(_PUBLISH_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "code": self.code,
            "reason": self.reason,
            "subject": self.subject,
            "envelope_id": self.envelope_id,
            "republishable": self.republishable,
        }


def refuse_unrepublishable(letters: Iterable[DeadLetter]) -> None:
    """InputError naming every letter a republish cannot fix; callers check a whole selection
    before publishing any of it."""
    refused = [d for d in letters if not d.republishable]
    if refused:
        raise InputError(
            "; ".join(
                f"dead letter {d.seq} was refused with {d.code!r}: publishing the same envelope "
                "again would be refused again; the originator must fix the cause"
                for d in refused
            )
            + f" (only {', '.join(sorted(REPUBLISHABLE))} letters can be republished)"
        )


async def republish(js: JetStreamContext, letter: DeadLetter) -> bool:
    """Publish the envelope again on its original subject; False if JetStream already had this
    republish (the same dead letter republished twice within the duplicate window)."""
    refuse_unrepublishable([letter])
    ack = await js.publish(
        letter.subject,
        letter.data,
        headers={"Nats-Msg-Id": f"republish.{letter.envelope_id or 'unknown'}.{letter.seq}"},
    )
    return not ack.duplicate
