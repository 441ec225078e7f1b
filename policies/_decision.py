"""What the engine answers: a decision with its reasons, obligations and withheld sections.

Plain frozen, slotted dataclasses rather than pydantic models: the broker builds one per
recipient per envelope, and these cost a fraction of a validated model to create.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from schemas import ActionCode, Classification, Handling, Tlp

from ._catalogue import OBLIGATIONS, ObligationCode

__all__ = ["Decision", "Obligation", "Reason", "obligations_for"]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a stable ``code`` (see ``ReasonCode``) and a message saying what to do about it."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


@dataclass(frozen=True, slots=True)
class Obligation:
    """A use restriction the receiving node enforces and shows (``ObligationCode``)."""

    code: str
    source: str
    message: str
    value: str | None = None
    """The code's parameter: the H3 code, the A3 action text, the marking, the purge time."""

    def to_dict(self) -> dict[str, str]:
        out = {"code": str(self.code), "source": str(self.source), "message": self.message}
        if self.value is not None:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one recipient."""

    recipient: str
    allowed: bool
    reasons: tuple[Reason, ...]
    obligations: tuple[Obligation, ...] = ()
    withheld_sections: tuple[str, ...] = ()
    """Section ids the recipient must not get a key for (only when allowed)."""
    audit_flags: tuple[str, ...] = ()
    """Facts the audit log must record, e.g. ``non-refoulement-override-used``."""
    agreements: tuple[str, ...] = ()
    """The legal basis relied on, as ``id@vN`` (empty on a voluntary basis or a denial)."""

    @property
    def decision(self) -> Literal["allow", "deny"]:
        return "allow" if self.allowed else "deny"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "recipient": self.recipient,
            "reasons": [r.to_dict() for r in self.reasons],
            "obligations": [o.to_dict() for o in self.obligations],
            "withheld_sections": list(self.withheld_sections),
            "audit_flags": [str(f) for f in self.audit_flags],
            "agreements": list(self.agreements),
        }


def _obligation(code: ObligationCode, value: str | None = None, **fmt: str) -> Obligation:
    source, template = OBLIGATIONS[code]
    return Obligation(code.value, source.value, template.format(**fmt) if fmt else template, value)


def obligations_for(handling: Handling) -> tuple[Obligation, ...]:
    """Every obligation the handling block puts on a recipient, in a fixed order."""
    out = [_obligation(ObligationCode.CRIME_PREVENTION_ONLY)] if handling.h0 else []
    if handling.h1:
        out.append(_obligation(ObligationCode.NO_JUDICIAL_DISCLOSURE))
    if handling.onward_forbidden:
        why = ["H2"] if handling.h2 else []
        if handling.tlp in (Tlp.AMBER_STRICT, Tlp.RED):
            why.append(f"TLP:{handling.tlp.value}")
        out.append(_obligation(ObligationCode.NO_ONWARD_DISSEMINATION, why=", ".join(why)))
    if handling.tlp is Tlp.AMBER:
        out.append(_obligation(ObligationCode.NEED_TO_KNOW))
    elif handling.tlp is Tlp.GREEN:
        out.append(_obligation(ObligationCode.COMMUNITY_ONLY))
    for r in handling.h3:
        out.append(_obligation(ObligationCode.OTHER_RESTRICTION, r.code, h3=r.code, text=r.text))
    if handling.deny_to:
        targets = ", ".join(handling.deny_to)
        out.append(_obligation(ObligationCode.NEVER_TO, targets, targets=targets))
    if handling.action is ActionCode.A1:
        out.append(_obligation(ObligationCode.NO_ACTION_WITHOUT_PERMISSION))
    elif handling.action is ActionCode.A2:
        out.append(_obligation(ObligationCode.COVERT_USE_ONLY))
    elif handling.action is ActionCode.A3:
        text = handling.action_text or ""
        out.append(_obligation(ObligationCode.OVERT_ACTION_AS_SPECIFIED, text, text=text))
    if handling.classification is not Classification.UNCLASSIFIED:
        marking = handling.classification.value
        out.append(_obligation(ObligationCode.PROTECTIVE_MARKING, marking, marking=marking.upper()))
    if handling.expires is not None:
        when = handling.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(_obligation(ObligationCode.PURGE_AT, when, when=when))
    return tuple(out)
