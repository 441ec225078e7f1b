"""Reports in envelopes: decide whom to encrypt for, seal, and open back into a report.

The originator's node is the first of the three enforcement points: it wraps content keys only
for recipients its policy view allows, and wraps each withheld section (personal data that the
non-refoulement guard keeps from a partner, protected persons not released to it) for nobody
who may not read it. The broker then re-checks everything on the signed header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgpack
from pydantic import ValidationError

from policies import Decision
from policies.trust import TrustStore
from policies.view import PolicyStore
from schemas import EnvelopeHeader, Report, join, new_uuid7, partition
from schemas._validation import invalid
from schemas.errors import InputError, MalformedEnvelope

from .envelope import Opened, seal
from .keys import PublicEncryptionKey, SigningKey

__all__ = ["SealedReport", "open_report", "seal_report"]


@dataclass(frozen=True)
class SealedReport:
    header: EnvelopeHeader
    data: bytes
    decisions: Mapping[str, Decision]
    """The originator's decision for every candidate, allowed or not."""

    @property
    def recipients(self) -> list[str]:
        return list(self.header.recipients)


def _pack(data: Mapping[str, Any]) -> bytes:
    return msgpack.packb(data, use_bin_type=True)  # type: ignore[no-any-return]


def seal_report(
    report: Report,
    signer: SigningKey,
    candidates: Iterable[str],
    trust: TrustStore,
    policy: PolicyStore,
    now: datetime,
    *,
    refs: Iterable[str] = (),
) -> SealedReport:
    """Seal ``report`` for every candidate that policy allows and that has a current key."""
    if report.originator != signer.agency:
        raise InputError(
            f"the report names originator {report.originator} but is signed as {signer.agency}"
        )
    parts = partition(report)
    wanted = sorted(set(candidates) - {signer.agency})
    if not wanted:
        raise InputError("no candidate recipients: nobody has registered interest in this topic")
    draft = EnvelopeHeader(
        id=new_uuid7(),
        originator=signer.agency,
        kid=signer.kid,
        created=now,
        kind=report.kind,
        priority=report.priority,
        route=report.route,
        category=report.category,
        handling=report.handling,
        recipients=wanted,
        refs=sorted({*report.refs, *refs}),
        sections=parts.sections(),
    )
    decisions = {r: policy.decide(draft, r, now) for r in wanted}
    keys: dict[str, PublicEncryptionKey] = {}
    for agency, decision in decisions.items():
        if decision.allowed:
            current = trust.encryption_keys(agency, now)
            if current:
                keys[agency] = current[0]
    if not keys:
        reasons = "; ".join(
            f"{a}: {d.reasons[0].message}" for a, d in decisions.items() if d.reasons
        )
        raise InputError(f"policy allows none of the candidates ({reasons})")
    header = draft.model_copy(update={"recipients": sorted(keys)})
    sections = {
        sid: (
            _pack(body),
            [k for a, k in keys.items() if sid not in decisions[a].withheld_sections],
        )
        for sid, body in parts.section_bodies().items()
    }
    data = seal(header, _pack(parts.main), signer, list(keys.values()), sections)
    return SealedReport(header, data, decisions)


def open_report(opened: Opened) -> Report:
    """The report as this recipient may read it: withheld sections stay absent."""
    # The body is signed, but by a partner whose node may be buggy or hostile: whatever is in
    # it ends in a typed error, never an exception that would stop the receiving node.
    try:
        main = msgpack.unpackb(opened.body, raw=False, strict_map_key=True)
        sections = {
            k: msgpack.unpackb(v, raw=False, strict_map_key=False)
            for k, v in opened.sections.items()
        }
        return join(main, sections.get("personal-data"), sections.get("protected-persons"))
    except ValidationError as exc:
        raise invalid(exc, "the opened body is not a valid report") from exc
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, msgpack.FormatError,
            msgpack.StackError) as exc:  # fmt: skip
        raise MalformedEnvelope(
            f"the opened body is not a msgpack report: {type(exc).__name__}: {exc}"
        ) from exc
