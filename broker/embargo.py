"""Embargo, hold and deliver (docs/broker.md, "Embargo: hold and deliver"; decision 0020).

An envelope whose ``not_before`` is in the future is verified, decided (as of its release) and
audited when it arrives, like any other; instead of copies in PLM_DLV the broker then stores
it once in PLM_HOLD as a JetStream message schedule (ADR-51, nats-server 2.12+):

- ``plm.hold.<originator>.<id>`` holds the envelope with ``Nats-Schedule: @at <not_before>``
  and ``Nats-Schedule-Target: plm.due.<originator>.<id>``. The schedule is stored in the stream,
  so it survives broker and server restarts; the server fires it once and removes it.
- At ``not_before`` the server writes the envelope to ``plm.due.<originator>.<id>``. The broker
  reads that subject with its durable consumer :data:`RELEASE_CONSUMER` and treats the
  envelope as if it had just been published: signature and keys checked again at the real
  time (an originator revoked since is dead-lettered with that reason), age counted from
  ``not_before``, policy decided again, audited, and only then copied to PLM_DLV.
- A retraction of a held envelope writes ``plm.void.<originator>.<id>`` and deletes the
  schedule. The marker is what counts: a release that finds it delivers nothing, even when
  the schedule had already fired before the retraction arrived. Subjects carry the originator,
  so an agency can only ever void its own envelopes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext

from schemas import EnvelopeHeader

from ._inspection import Outcome

__all__ = [
    "HOLD_STREAM",
    "PUB_SEQ_HEADER",
    "RELEASE_CONSUMER",
    "SUBJECT_HEADER",
    "cancel_hold",
    "due_subject",
    "hold_publication",
    "hold_subject",
    "release_checks",
    "retraction_of",
    "schedule_time",
    "void_publications",
    "void_subject",
    "voided",
]

HOLD_STREAM: Final[str] = "PLM_HOLD"
RELEASE_CONSUMER: Final[str] = "palermo-broker-release"
"""The broker replicas' shared durable pull consumer on ``plm.due.>`` (PLM_HOLD)."""
PUB_SEQ_HEADER: Final[str] = "Palermo-Pub-Seq"
"""Its PLM_PUB sequence when it was accepted (what its replay marker holds)."""
SUBJECT_HEADER: Final[str] = "Palermo-Subject"
"""The subject the envelope was published on; the server copies it to the released message."""
# Envelope ids are UUIDs, but refs of a retraction are only checked as strings: never put
# anything into a subject that could add tokens or wildcards.
_TOKEN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_log = structlog.get_logger("palermo.broker")


def hold_subject(originator: str, envelope_id: str) -> str:
    return f"plm.hold.{originator}.{envelope_id}"


def due_subject(originator: str, envelope_id: str) -> str:
    return f"plm.due.{originator}.{envelope_id}"


def void_subject(originator: str, envelope_id: str) -> str:
    return f"plm.void.{originator}.{envelope_id}"


def schedule_time(at: datetime) -> str:
    """``not_before`` as the RFC 3339 time of ``@at``, rounded up to the second: a release may
    come a moment late, never early."""
    whole = datetime.fromtimestamp(math.ceil(at.timestamp()), UTC)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


def hold_publication(
    header: EnvelopeHeader, data: bytes, subject: str, pub_seq: int
) -> tuple[str, bytes, dict[str, str]]:
    """The schedule that holds ``data`` until ``not_before``; one per envelope id.

    ``pub_seq`` is its PLM_PUB sequence, the content of the replay marker it was accepted with:
    a release dead-lettered after its last attempt forgets exactly that marker, so that
    'palermo dead republish' can send it again.
    """
    assert header.handling.not_before is not None
    return (
        hold_subject(header.originator, header.id),
        data,
        {
            "Nats-Msg-Id": f"hold.{header.id}",
            "Nats-Schedule": f"@at {schedule_time(header.handling.not_before)}",
            "Nats-Schedule-Target": due_subject(header.originator, header.id),
            SUBJECT_HEADER: subject,
            PUB_SEQ_HEADER: str(pub_seq),
        },
    )


def void_publications(header: EnvelopeHeader) -> list[tuple[str, bytes, dict[str, str]]]:
    """For a retraction: a marker per withdrawn id, so that a held copy is never released."""
    return [
        (
            void_subject(header.originator, ref),
            header.id.encode(),
            {"Nats-Msg-Id": f"void.{header.originator}.{ref}"},
        )
        for ref in header.refs
        if _TOKEN.match(ref)
    ]


async def retraction_of(js: JetStreamContext, originator: str, envelope_id: str) -> str | None:
    """The id of the retraction with which the originator withdrew this envelope (what its void
    marker holds), or None if the broker has accepted no retraction of it.

    Every accepted retraction writes the marker, held or not (:func:`void_publications`): it is
    also what keeps a retracted envelope from being delivered when it comes back from PLM_DEAD
    (broker/deadletters.py)."""
    if not _TOKEN.match(envelope_id):
        return None  # no marker is ever written for such an id
    try:
        marker = await js.get_last_msg(HOLD_STREAM, void_subject(originator, envelope_id))
    except nats.js.errors.NotFoundError:
        return None
    return (marker.data or b"").decode("ascii", "backslashreplace")


async def voided(js: JetStreamContext, originator: str, envelope_id: str) -> bool:
    """Whether the originator retracted this envelope while it was held."""
    return await retraction_of(js, originator, envelope_id) is not None


async def release_checks(js: JetStreamContext, outcomes: Sequence[Outcome]) -> set[int]:
    """Phase 1 of a release (instead of the replay marker, written when it was accepted): was
    it retracted while held? Returns the ``id()`` of outcomes that could not be checked."""
    failed: set[int] = set()
    for o in outcomes:
        if o.error is not None or o.originator is None or o.envelope_id is None:
            continue
        try:
            o.voided = await voided(js, o.originator, o.envelope_id)
        except (nats.errors.Error, TimeoutError) as exc:
            _log.warning("void marker unreadable; will retry", envelope=o.envelope_id,
                         error=repr(exc))  # fmt: skip
            failed.add(id(o))
    return failed


async def cancel_hold(js: JetStreamContext, header: EnvelopeHeader) -> None:
    """Delete the schedules a retraction withdraws (tidiness: the void marker already stops
    the release). A schedule already fired, or never made, is not an error."""
    for ref in header.refs:
        if not _TOKEN.match(ref):
            continue
        try:
            held = await js.get_last_msg(HOLD_STREAM, hold_subject(header.originator, ref))
            await js.delete_msg(HOLD_STREAM, held.seq or 0)
            _log.info("held envelope retracted before release", envelope=ref,
                      originator=header.originator)  # fmt: skip
        except nats.js.errors.NotFoundError:
            continue
        except (nats.errors.Error, TimeoutError) as exc:
            _log.warning("held schedule kept; its void marker stops the release", envelope=ref,
                         error=repr(exc))  # fmt: skip
