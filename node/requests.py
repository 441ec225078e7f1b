"""Requests between agencies and their answers: typed subjects, priorities and deadlines.

Directive (EU) 2023/977 art. 5(1) sets how long a Single Point of Contact may take to answer a
request for information: **8 hours** for urgent requests on information *directly* accessible
to it, **3 calendar days** for urgent requests on *indirectly* accessible information, and
**7 calendar days** for every other request. The requester's node writes the deadline into the
request (these defaults, or an earlier or later one an officer chose), counted from the
request's signed ``created`` time: the moment it was sent, which on a live federation is the
moment it reaches the recipient's stream (art. 5(1) counts from receipt). Both nodes then judge
"overdue" against the same signed instant.

A request needs no prior report (a *cold* request): it names its recipient and what
it asks about. Answers to a document verification carry a structured result
(:class:`DocumentVerdict`), so a requester's system can act on "counterfeit" without reading
prose. No I/O here: :mod:`node._requests` sends and receives these bodies.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from schemas import Category, EpochMillis
from schemas.errors import InputError

__all__ = [
    "DEADLINE_DIRECT_URGENT",
    "DEADLINE_INDIRECT_URGENT",
    "DEADLINE_OTHER",
    "Access",
    "Answer",
    "DocumentVerdict",
    "Question",
    "RequestSubject",
    "default_deadline",
    "parse_deadline",
    "time_left",
]

DEADLINE_DIRECT_URGENT: Final[timedelta] = timedelta(hours=8)
"""Art. 5(1)(a): urgent requests for directly accessible information."""
DEADLINE_INDIRECT_URGENT: Final[timedelta] = timedelta(days=3)
"""Art. 5(1)(b): urgent requests for indirectly accessible information."""
DEADLINE_OTHER: Final[timedelta] = timedelta(days=7)
"""Art. 5(1)(c): every other request."""
MAX_DEADLINE: Final[timedelta] = timedelta(days=90)
"""The latest deadline an officer may set: a request nobody need answer for months is a note."""


class RequestSubject(StrEnum):
    """What a request asks for; the first six need the identifier they are about."""

    VERIFY_DOCUMENT = "verify-document"
    """Is this travel or identity document number genuine? Answered with a DocumentVerdict."""
    IDENTIFY_PERSON = "identify-person"
    IDENTIFY_VESSEL = "identify-vessel"
    """A vessel's name, IMO or MMSI number."""
    IDENTIFY_PHONE = "identify-phone"
    IDENTIFY_WALLET = "identify-wallet"
    """A crypto-asset wallet address."""
    ROUTE_UPDATE = "route-update"
    """What is new on the request's route (the header's route)."""
    INFORMATION = "information"
    """Anything else, in the request's text."""


_NEEDS_IDENTIFIER: Final[frozenset[RequestSubject]] = frozenset(
    {
        RequestSubject.VERIFY_DOCUMENT,
        RequestSubject.IDENTIFY_PERSON,
        RequestSubject.IDENTIFY_VESSEL,
        RequestSubject.IDENTIFY_PHONE,
        RequestSubject.IDENTIFY_WALLET,
    }
)

SUBJECT_CATEGORY: Final[dict[RequestSubject, Category]] = {
    RequestSubject.VERIFY_DOCUMENT: Category.DOCUMENTS,
    RequestSubject.IDENTIFY_PERSON: Category.GROUPS,
    RequestSubject.IDENTIFY_VESSEL: Category.ROUTES,
    RequestSubject.IDENTIFY_PHONE: Category.GROUPS,
    RequestSubject.IDENTIFY_WALLET: Category.GROUPS,
    RequestSubject.ROUTE_UPDATE: Category.ROUTES,
    RequestSubject.INFORMATION: Category.ROUTES,
}
"""The Protocol art. 10(1) category a cold request travels under when none is given."""


class Access(StrEnum):
    """Whether the recipient holds the information itself (the Directive's "directly
    accessible information") or must obtain it from another authority or party ("indirectly
    accessible")."""

    DIRECT = "direct"
    INDIRECT = "indirect"


class DocumentVerdict(StrEnum):
    """The structured result of a document verification."""

    GENUINE = "genuine"
    COUNTERFEIT = "counterfeit"
    """Made in whole by someone other than the issuer."""
    FORGED = "forged"
    """A genuine document altered."""
    FRAUDULENTLY_OBTAINED = "fraudulently-obtained"
    """Issued by the issuer on false grounds (false breeder documents, impostor)."""
    REPORTED_STOLEN_OR_LOST = "reported-stolen-or-lost"
    UNKNOWN = "unknown"
    """The document number is not known to the recipient, or cannot be checked."""


Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class Question(BaseModel):
    """The body of a ``request`` envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: RequestSubject = RequestSubject.INFORMATION
    identifier: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    """The document number, name, vessel, phone number or wallet address asked about."""
    text: Text
    access: Access = Access.INDIRECT
    deadline: EpochMillis | None = None
    """Absent only in requests from nodes before deadlines (they read as 7 days)."""

    @model_validator(mode="after")
    def _identifier_when_needed(self) -> Question:
        if self.subject in _NEEDS_IDENTIFIER and not self.identifier:
            raise ValueError(
                f"a {self.subject.value} request names what it is about (--identifier)"
            )
        return self


class Answer(BaseModel):
    """The body of a ``response`` envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: Text
    verdict: DocumentVerdict | None = None
    """Given exactly when the request was a document verification."""


def default_deadline(sent: datetime, urgent: bool, access: Access) -> datetime:
    """The art. 5(1) deadline of a request sent at ``sent``."""
    if not urgent:
        return sent + DEADLINE_OTHER
    return sent + (DEADLINE_DIRECT_URGENT if access is Access.DIRECT else DEADLINE_INDIRECT_URGENT)


_DURATION = re.compile(r"^(\d{1,4})([mhd])$")
_UNITS: Final[dict[str, str]] = {"m": "minutes", "h": "hours", "d": "days"}


def parse_deadline(text: str, sent: datetime) -> datetime:
    """An officer's deadline: a duration from now (``90m``, ``12h``, ``2d``) or an RFC 3339 time
    with a time zone; it must lie in the future and within MAX_DEADLINE."""
    match = _DURATION.match(text.strip())
    if match:
        deadline = sent + timedelta(**{_UNITS[match[2]]: int(match[1])})
    else:
        try:
            deadline = datetime.fromisoformat(text.strip())
        except ValueError:
            deadline = sent.replace(tzinfo=None)  # refused just below, with the same words
        if deadline.tzinfo is None:
            raise InputError(
                f"deadline {text!r} is neither a duration (90m, 12h, 2d) nor a time with a "
                "time zone (2026-05-01T12:00:00Z)"
            )
    if deadline <= sent:
        raise InputError(f"deadline {deadline.isoformat()} is not in the future")
    if deadline - sent > MAX_DEADLINE:
        raise InputError(
            f"deadline {deadline.isoformat()} is more than {MAX_DEADLINE.days} days away"
        )
    return deadline


def time_left(deadline_ms: int | None, now: datetime) -> str:
    """``due in 7h 59m`` or ``overdue by 1d 2h`` (minutes precision), for an officer."""
    if deadline_ms is None:
        return "no deadline"
    seconds = deadline_ms // 1000 - int(now.timestamp())
    word = "due in" if seconds >= 0 else "overdue by"
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h", f"{mins}m"] if not days else [f"{hours}h"]
    return f"{word} {' '.join(parts)}"
