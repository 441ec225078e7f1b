"""What the broker writes about an envelope: its audit record, and for a refused one its dead
letter (with reason headers) and the ``Nats-Msg-Id`` that keeps a redelivery from duplicating
it."""

from __future__ import annotations

from typing import Any

from ._inspection import Outcome


def _header_value(text: str) -> str:
    """ASCII for a header value: reasons can quote untrusted subjects and names, and non-ASCII
    header values come back from nats-py's header parser as email Header objects, not str."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _dedup_ident(outcome: Outcome) -> str:
    """What makes a dead letter's or notice's ``Nats-Msg-Id`` unique.

    A refused envelope's id is unauthenticated: many forged copies can carry the id of one
    genuine envelope, and keyed on it only the first dead letter and notice would be stored
    (the rest silently deduplicated). The PLM_PUB sequence is unique per published message and
    the same on a redelivery, so a retry still never duplicates.
    """
    if outcome.error is None and outcome.envelope_id is not None:
        return outcome.envelope_id
    # A release's sequence is PLM_HOLD's, which may equal a PLM_PUB sequence.
    prefix = "due" if outcome.release else "seq"
    return f"{prefix}{outcome.msg.metadata.sequence.stream}"


def _dead_letter(
    outcome: Outcome, code: str, reason: str, ident: str
) -> tuple[str, bytes, dict[str, str]]:
    """The whole envelope to PLM_DEAD, with why (``ident`` makes its ``Nats-Msg-Id``)."""
    return (
        f"plm.dead.{outcome.originator or 'unknown'}.{code}",
        outcome.msg.data,
        {
            "Nats-Msg-Id": f"dead.{ident}",
            "Palermo-Reason-Code": code,
            "Palermo-Reason": _header_value(reason[:1000]),
            "Palermo-Subject": _header_value(outcome.subject or outcome.msg.subject),
        },
    )


def _audit_record(outcome: Outcome) -> dict[str, Any]:
    """What the audit entry records of one envelope: what it is, and each recipient's decision
    (or why the envelope itself was refused)."""
    header = outcome.header
    record: dict[str, Any] = {
        "type": "decision",
        "envelope": outcome.envelope_id,
        "originator": outcome.originator,
        "subject": outcome.subject or outcome.msg.subject,
        "delivery": outcome.msg.metadata.num_delivered,
    }
    if outcome.release:
        record["released"] = True
    if outcome.voided:
        record["retracted_before_release"] = True
    if header is not None:
        record |= {"kind": header.kind.value, "route": header.route.value,
                   "category": header.category.value, "tlp": header.handling.tlp.value,
                   "personal_data": header.contains_personal_data}  # fmt: skip
        if outcome.held and header.handling.not_before is not None:
            record["held_until"] = header.handling.not_before.isoformat()
        if header.handling.non_refoulement_override is not None:
            record["non_refoulement_override"] = (
                header.handling.non_refoulement_override.model_dump()
            )
    if outcome.error is not None:
        record["error"] = outcome.error.to_dict()
    else:
        # Each decision's record names its recipient; equal decisions share one record.
        record["decisions"] = [d for _, d in sorted(outcome.decisions.items())]
    return record
