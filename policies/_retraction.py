"""Who may receive a retraction: every member the originator names, subject only to membership.

A retraction withdraws a report the originator sent earlier. Deciding it like a report would let
the very policy change that motivated it (a ``deny X`` rule added to a standing policy, an
agreement ended, a lower accreditation) block it, and X would keep the report (issue 12, item 9).
So the engine is not asked: the broker allows a retraction to any recipient holding a current,
valid, unrevoked membership certificate, and the receiving node acts on it without a policy
check. What keeps this from being a way round policy: a retraction carries no sections and
names exactly one report in ``refs``, and a node purges only a report it holds from that same
originator; to anyone else it is an empty message (see docs/broker.md, "Retractions").
"""

from __future__ import annotations

from schemas import EnvelopeHeader, Kind
from schemas.errors import PolicyError

from ._catalogue import ReasonCode
from ._decision import Decision, Reason
from ._messages import reason

__all__ = ["NOT_CERTIFIED", "decide_retraction"]

NOT_CERTIFIED = "recipient-not-certified"
"""The reason code of a recipient without a current, valid, unrevoked certificate (as for any
envelope; see ``PolicyStore.decide``)."""


def decide_retraction(header: EnvelopeHeader, recipient: str, not_member: str | None) -> Decision:
    """May ``recipient`` receive this retraction? ``not_member`` is why the recipient holds no
    current, valid, unrevoked certificate (None if it does): the caller looks that up."""
    if header.kind is not Kind.RETRACTION:
        raise PolicyError(f"decide_retraction() takes retractions, not a {header.kind.value}")
    if recipient == header.originator:
        kind = header.kind.value
        return Decision(recipient, False, (reason(ReasonCode.SELF, agency=recipient, kind=kind),))
    if len(header.refs) != 1 or header.sections:
        return Decision(
            recipient,
            False,
            (
                Reason(
                    ReasonCode.RETRACTION_INVALID,
                    "a retraction names exactly the one report it withdraws in refs and carries "
                    "no sections; send one retraction per report ('palermo retract')",
                ),
            ),
        )
    if not_member is not None:
        return Decision(recipient, False, (Reason(NOT_CERTIFIED, not_member),))
    allowed = reason(
        ReasonCode.ALLOWED,
        agency=recipient,
        tlp=header.handling.tlp.value,
        kind=header.kind.value,
        originator=header.originator,
        grounds="as a member: a withdrawal reaches its recipients whatever the policy says now",
    )
    return Decision(recipient, True, (allowed,))
