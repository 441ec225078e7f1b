"""What tests send through a live stack: example reports, sealed envelopes of a dev federation,
signed documents, and doctored (hostile) envelopes with the refusal each must earn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.reports import SealedReport, seal_report
from node.service import Node
from palermo.devfed import DevFederation
from protocol import crypto
from protocol.envelope import Envelope, decode, encode, seal
from protocol.envelope._format import Stanza, signed_bytes
from protocol.envelope._seal import DOMAIN_SIGNATURE
from protocol.keys import SigningKey
from schemas import EnvelopeHeader, Handling, Report, new_uuid7
from schemas.export import parse_report

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
MED = ["ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM"]


def example(name: str = "01") -> Report:
    """The example report whose file name starts with ``name`` (``schemas/examples/``)."""
    return parse_report(next(EXAMPLES.glob(f"{name}*.json")).read_text())


def envelope(
    fed: DevFederation,
    originator: str = "ITA-GDF",
    recipients: Sequence[str] = ("MLT-AFM", "GRC-HCG", "ESP-GC", "LBY-DCIM", "AUS-ABF"),
    *,
    tlp: str = "AMBER",
    rel_to: Sequence[str] = ("group:med-coastal",),
    body: bytes = b"x" * 2048,
    route: str = "central-med",
    created: datetime | None = None,
    not_before: datetime | None = None,
) -> tuple[EnvelopeHeader, bytes]:
    """A sealed envelope, created now unless ``created`` says when (tests that verify at a fixed
    time must seal at it too: a long suite run moves the wall clock on), embargoed until
    ``not_before`` if given."""
    agency = fed.agencies[originator]
    header = EnvelopeHeader(
        id=new_uuid7(),
        originator=originator,
        kid=agency.signing.kid,
        created=created or datetime.now(UTC),
        kind="report",
        route=route,
        category="routes",
        handling=Handling(tlp=tlp, rel_to=list(rel_to), not_before=not_before),
        recipients=list(recipients),
    )
    keys = [fed.agencies[r].encryption.public for r in header.recipients]
    return header, seal(header, body, agency.signing, keys)


def seal_many(origin: Node, report: Report, to: list[str], n: int) -> list[SealedReport]:
    """``n`` copies of ``report`` sealed by ``origin`` (each its own envelope id)."""
    report = report.model_copy(update={"originator": origin.identity.agency})
    now = datetime.now(UTC)
    return [
        seal_report(report, origin.identity.signing, to, origin.trust, origin.policy, now)
        for _ in range(n)
    ]


def standing_policy_denying(fed: DevFederation, originator: str, target: str) -> dict[str, Any]:
    """``originator``'s standing policy one version up with a ``deny target`` rule added,
    signed by its key: what an agency publishes when it stops trusting a partner."""
    from policies import AgencyPolicy, DenyRule
    from protocol.trust import sign_document

    agency = fed.agencies[originator]
    held = AgencyPolicy.model_validate(agency.policy["document"]) if agency.policy else None
    policy = AgencyPolicy(
        agency=originator,
        version=held.version + 1 if held else 1,
        issued=datetime.now(UTC),
        rules=[
            *(held.rules if held else []),
            DenyRule(rule="deny", targets=[target], note="partner no longer trusted"),
        ],
    )
    return sign_document(policy, agency.signing, originator)


@dataclass(frozen=True)
class Case:
    """One hostile message: what is sent, where, and the refusal it must earn."""

    name: str
    data: bytes
    subject: str
    code: str
    fragment: str
    stage: str | None = None


def resign(env: Envelope, key: SigningKey) -> bytes:
    sig = crypto.sign(key.private, DOMAIN_SIGNATURE, signed_bytes(env))
    return encode(replace(env, sig=sig))


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def with_recipient(data: bytes, agency: str) -> bytes:
    """``agency`` added to hdr.recipients with a stanza copied from another recipient."""
    env = decode(data)
    hdr = {**env.hdr, "recipients": sorted([*env.hdr["recipients"], agency])}
    stanza = Stanza(agency, "0" * 16, env.rcpt[0].enc)
    rcpt = tuple(sorted([*env.rcpt, stanza], key=lambda s: (s.agency, s.kid)))
    return encode(replace(env, hdr=hdr, rcpt=rcpt))


def by_data(messages: Sequence[Any]) -> dict[bytes, list[Any]]:
    out: dict[bytes, list[Any]] = {}
    for m in messages:
        out.setdefault(bytes(m.data), []).append(m)
    return out


__all__ = [
    "EXAMPLES",
    "MED",
    "Case",
    "by_data",
    "envelope",
    "example",
    "flip",
    "resign",
    "seal_many",
    "standing_policy_denying",
    "with_recipient",
]
