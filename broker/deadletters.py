"""Dead letters in PLM_DEAD: what was refused or stranded, and republishing what a retry fixes.

A dead letter carries the envelope's bytes unchanged and the headers the broker wrote:
``Palermo-Reason-Code``, ``Palermo-Reason`` and ``Palermo-Subject`` (the subject it was published
on). Only ``redelivery_exhausted`` letters are republishable: the broker's outcome for the
envelope (its copies, or its refusal) could not be stored (a full stream, an outage), so the
broker decides it again. Every other code is a refusal, which republishing the same bytes would
only repeat.

An envelope given up keeps its replay marker in PLM_SEEN, rewritten as :data:`GIVEN_UP` (+ the
sequence it was accepted with): the same envelope published again (a republish, or the same bytes
by any other path) is then taken over by the broker (:func:`reclaim_marker`) rather than refused
as a replay, but only if its originator has not retracted it since (the retraction's void marker
in PLM_HOLD, broker/embargo.py): a retracted envelope is never delivered, whatever brings it back.
'palermo dead republish' checks the same marker first and refuses with that reason
(:func:`refuse_retracted`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgpack
import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg

from protocol.jspublish import WRONG_LAST_SEQUENCE
from protocol.transport import subject_originator
from schemas.errors import InputError, PalermoError, Replayed, RetractedByOriginator

from ._inspection import Outcome
from .embargo import PUB_SEQ_HEADER, retraction_of

__all__ = [
    "EXHAUSTED",
    "GIVEN_UP",
    "REPUBLISHABLE",
    "DeadLetter",
    "mark_given_up",
    "reclaim_marker",
    "refuse_retracted",
    "refuse_unrepublishable",
    "republish",
]

# Reason code of a dead letter for an envelope whose outcome could not be stored in max_deliver
# attempts (a full delivery stream, a server that stayed unreachable).
EXHAUSTED: Final[str] = "redelivery_exhausted"
REPUBLISHABLE: Final[frozenset[str]] = frozenset({EXHAUSTED})
GIVEN_UP: Final[bytes] = b"dead."
"""How the replay marker of an envelope given up begins: ``dead.<its own marker>``."""
_SEEN_STREAM: Final[str] = "PLM_SEEN"
_log = structlog.get_logger("palermo.broker")
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


async def retraction(js: JetStreamContext, letter: DeadLetter) -> RetractedByOriginator | None:
    """Why republishing ``letter`` would deliver nothing: its originator retracted the envelope
    (the void marker the broker wrote when it accepted the retraction). Read from the letter's
    unverified id and subject: the broker checks again, on the verified header, when it takes
    the envelope (:func:`reclaim_marker`)."""
    originator = subject_originator(letter.subject)
    if letter.envelope_id is None or originator is None:
        return None
    ident = await retraction_of(js, originator, letter.envelope_id)
    if ident is None:
        return None
    return RetractedByOriginator(letter.envelope_id, originator, ident)


async def refuse_retracted(js: JetStreamContext, letters: Iterable[DeadLetter]) -> None:
    """RetractedByOriginator for the first letter whose envelope its originator has retracted;
    callers check a whole selection before publishing any of it."""
    for letter in letters:
        refused = await retraction(js, letter)
        if refused is not None:
            raise refused


async def republish(js: JetStreamContext, letter: DeadLetter) -> bool:
    """Publish the envelope again on its original subject; False if JetStream already had this
    republish (the same dead letter republished twice within the duplicate window).

    Raises InputError for a refusal, RetractedByOriginator if its originator withdrew it."""
    refuse_unrepublishable([letter])
    await refuse_retracted(js, [letter])
    ack = await js.publish(
        letter.subject,
        letter.data,
        headers={"Nats-Msg-Id": f"republish.{letter.envelope_id or 'unknown'}.{letter.seq}"},
    )
    return not ack.duplicate


def _own_marker(o: Outcome) -> str | None:
    """What this message's replay marker holds: its PLM_PUB sequence (for a release, the one it
    was accepted with, as a release writes no marker of its own)."""
    if o.release:
        return (o.msg.headers or {}).get(PUB_SEQ_HEADER)
    return str(o.msg.metadata.sequence.stream)


async def mark_given_up(js: JetStreamContext, o: Outcome) -> None:
    """After ``o`` is dead-lettered as EXHAUSTED: rewrite the replay marker this very message
    wrote as given up (``dead.<marker>``), so that its republish from PLM_DEAD is neither
    refused as a replay of itself nor taken without :func:`reclaim_marker`'s checks. A marker
    another message wrote is kept: that one is a real replay. No marker at all (its writing
    may be what failed): one is written given up, for a verified envelope."""
    own = _own_marker(o)
    if o.envelope_id is None or own is None:
        return
    subject = f"plm.seen.{o.envelope_id}"
    try:
        try:
            marker = await js.get_last_msg(_SEEN_STREAM, subject)
            last = marker.seq or 0
            if marker.data != own.encode():
                return
        except nats.js.errors.NotFoundError:
            if o.error is not None:
                return  # never accepted: its id is not even authenticated
            last = 0
        # Exactly the marker read (or none), never one written after it.
        await js.publish(
            subject,
            GIVEN_UP + own.encode(),
            headers={"Nats-Expected-Last-Subject-Sequence": str(last)},
        )
    except (nats.errors.Error, TimeoutError) as exc:
        _log.warning("replay marker not marked given up: republishing this envelope will be "
                     "refused as a replay until the marker expires", envelope=o.envelope_id,
                     error=repr(exc))  # fmt: skip


async def reclaim_marker(
    js: JetStreamContext, o: Outcome, previous: RawStreamMsg
) -> PalermoError | None:
    """Phase 1 for a verified envelope whose replay marker ``previous`` another message wrote:
    None once the marker is this message's, else why it is refused.

    A marker the broker gave up (:func:`mark_given_up`) is taken over by the envelope coming
    back (a republish), unless its originator retracted it meanwhile: then it is refused,
    RetractedByOriginator, and never delivered. Any other marker makes it a replay; so does a
    given-up marker another message of the same envelope took first (exactly once). Errors
    other than that one are raised: the batch is redelivered."""
    assert o.envelope_id is not None
    assert o.header is not None
    data = previous.data or b""
    if not data.startswith(GIVEN_UP):
        return Replayed(o.envelope_id)
    originator = o.header.originator
    ident = await retraction_of(js, originator, o.envelope_id)
    if ident is not None:
        return RetractedByOriginator(o.envelope_id, originator, ident)
    try:
        await js.publish(
            f"plm.seen.{o.envelope_id}",
            str(o.msg.metadata.sequence.stream).encode(),
            headers={"Nats-Expected-Last-Subject-Sequence": str(previous.seq or 0)},
        )
    except nats.js.errors.APIError as exc:
        if exc.err_code != WRONG_LAST_SEQUENCE:
            raise
        return Replayed(o.envelope_id)
    return None
