"""Embargo (``handling.not_before``): when an embargoed envelope is judged, and when it ages.

An embargoed envelope is accepted and held now and delivered at ``not_before`` (docs/broker.md,
"Embargo: hold and deliver"; decision 0020). Every enforcement point therefore judges it *as of
its release*: the originator's node when it seals it, the broker when it accepts it for holding
(and again, at the real time, when it releases it), the recipient's node when it arrives. And
its age (the broker's ``max_age``, a node's ``max_envelope_age``) counts from its release, not
from its creation: an envelope held a fortnight is not a fortnight old when it is delivered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas import Handling

__all__ = ["embargo_ahead", "envelope_age", "release_time"]


def release_time(handling: Handling, now: datetime) -> datetime:
    """The time an envelope is delivered: ``not_before`` if that is later than ``now``."""
    if handling.not_before is not None and handling.not_before > now:
        return handling.not_before
    return now


def embargo_ahead(handling: Handling, now: datetime) -> timedelta:
    """How long the envelope is still held (zero when it is not embargoed, or no longer)."""
    return release_time(handling, now) - now


def envelope_age(created: datetime, handling: Handling, now: datetime) -> timedelta:
    """Age for the age and replay limits: from ``not_before`` when it is later than ``created``."""
    start = created
    if handling.not_before is not None and handling.not_before > created:
        start = handling.not_before
    return now - start
