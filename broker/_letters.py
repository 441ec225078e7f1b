"""What the broker writes about a refused envelope: its dead letter (with reason headers) and
the ``Nats-Msg-Id`` that keeps a redelivery from duplicating it."""

from __future__ import annotations

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
