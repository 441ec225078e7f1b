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
from typing import Any, Final

import msgpack
from pydantic import ValidationError

from policies import (
    SUITE_BELOW_POLICY,
    Decision,
    Federation,
    FederationRules,
    Reason,
    check_disclosure,
    release_time,
    required_suite,
)
from protocol import crypto
from protocol.envelope import Opened, seal
from protocol.keys import PublicEncryptionKey, SigningKey
from protocol.trust import TrustStore
from protocol.view import PolicyStore
from schemas import (
    MAX_RECIPIENTS,
    PERSONAL_DATA,
    PROTECTED_PERSONS,
    ActionCode,
    EnvelopeHeader,
    Report,
    SectionInfo,
    join,
    new_uuid7,
    partition,
)
from schemas._handling import versioned_handling
from schemas._validation import invalid
from schemas.errors import (
    BodyMismatch,
    DisclosureControlBroken,
    InputError,
    MalformedEnvelope,
    TrustError,
)

__all__ = [
    "NO_USABLE_KEY",
    "SealedReport",
    "decide_report",
    "effective_report",
    "open_report",
    "seal_report",
    "sealing_key",
    "tear_line_report",
]

NO_USABLE_KEY: Final[str] = "no-usable-key"
"""Reason code of a candidate dropped at sealing: no current key, or only an unusable one."""


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


def effective_report(report: Report, federation: Federation | None) -> Report:
    """The report as its originator's node signs it.

    The handling block is read under the report's schema version (a block set on an ``iir/1.1``
    report takes 1.1's defaults), and an ``iir/1.1`` report whose originator set no action code
    gets the federation policy's default, if it has one: the signed header then carries the
    effective codes, so no hop has to know the federation's defaults (decision 0019).
    """
    try:
        handling = versioned_handling(report.schema_, report.handling)
    except ValueError as exc:
        raise InputError(f"the report's handling does not fit {report.schema_}: {exc}") from exc
    default = federation.rules.default_action if federation is not None else None
    if handling.action is None and default is not None:
        handling = handling.model_copy(update={"action": ActionCode(default)})
    if handling is report.handling:
        return report
    return report.model_copy(update={"handling": handling})


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
    report = effective_report(report, policy.federation)
    parts = partition(report)
    wanted = sorted(set(candidates) - {signer.agency})
    if not wanted:
        raise InputError("no candidate recipients: nobody has registered interest in this topic")
    if len(wanted) > MAX_RECIPIENTS:
        raise InputError(
            f"{len(wanted)} candidate recipients, but one envelope holds at most "
            f"{MAX_RECIPIENTS}; publish to fewer agencies at a time (--to, or rel_to groups)"
        )
    draft = _draft(report, signer, wanted, now, refs, parts.sections())
    # An embargoed report is judged as of its release, when the broker delivers it.
    at = release_time(report.handling, now)
    decisions = {r: policy.decide(draft, r, at) for r in wanted}
    keys: dict[str, PublicEncryptionKey] = {}
    for agency, decision in decisions.items():
        if decision.allowed:
            key, problem = sealing_key(trust, agency, now)
            if key is not None:
                keys[agency] = key
            else:
                # One partner's unusable key costs that partner this report, not everyone
                # theirs: it is dropped from the envelope and reported like a policy denial.
                decisions[agency] = Decision(agency, False, (Reason(NO_USABLE_KEY, problem),))
    suite = _require_suite(policy.federation, report, keys, decisions)
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
    data = seal(header, _pack(parts.main), signer, list(keys.values()), sections, suite=suite)
    return SealedReport(header, data, decisions)


def _require_suite(
    federation: Federation | None,
    report: Report,
    keys: dict[str, PublicEncryptionKey],
    decisions: dict[str, Decision],
) -> int | None:
    """Suite 2 if the federation requires it for this report (None: chosen from the keys).

    A recipient without a hybrid key then loses this report, reported like a policy denial,
    rather than costing every other recipient theirs; the broker would refuse a suite-1
    envelope to all of them (decision 0035).
    """
    least, why = required_suite(
        federation.rules if federation else FederationRules(), report.handling
    )
    if least == 1:
        return None
    for agency in [a for a, k in keys.items() if not k.hybrid]:
        del keys[agency]
        decisions[agency] = Decision(agency, False, (Reason(SUITE_BELOW_POLICY, (
            f"{why}, and {agency} has no hybrid ML-KEM-768 + X25519 key in the directory; it "
            "must publish one (palermo keys rotate --pq) before it can receive this"
        )),))  # fmt: skip
    return least


def _draft(
    report: Report,
    signer: SigningKey,
    wanted: list[str],
    now: datetime,
    refs: Iterable[str],
    sections: list[SectionInfo],
) -> EnvelopeHeader:
    """The header policy is decided on, before the recipients are narrowed to the allowed."""
    return EnvelopeHeader(
        id=new_uuid7(),
        originator=signer.agency,
        kid=signer.kid,
        created=now,
        kind=report.kind,
        priority=report.priority,
        route=report.route,
        category=report.category,
        handling=report.handling,
        schema_=report.schema_,
        recipients=wanted,
        refs=sorted({*report.refs, *refs}),
        sections=sections,
        suppression_k=report.statistics.suppression_k if report.statistics else None,
    )


def decide_report(
    report: Report,
    signer: SigningKey,
    candidates: Iterable[str],
    policy: PolicyStore,
    now: datetime,
) -> dict[str, Decision]:
    """The originator's decision for every candidate, without sealing anything: what
    :func:`seal_report` would decide (keys aside), for a caller that must know before it
    seals, or when nobody may receive."""
    report = effective_report(report, policy.federation)
    wanted = sorted(set(candidates) - {signer.agency})
    draft = (
        _draft(report, signer, wanted, now, (), partition(report).sections()) if wanted else None
    )
    # An embargoed report is decided as of its release, as seal_report decides it.
    when = release_time(report.handling, now)
    return {r: policy.decide(draft, r, when) for r in wanted} if draft is not None else {}


def tear_line_report(report: Report, original: str) -> Report:
    """The version of ``report`` below the tear-line, which ``refs`` the ``original`` envelope.

    Its body is the report body every recipient already gets (persons reduced to their role
    stubs, no identifiers, no links to persons), and it has no personal-data or
    protected-persons section: what :func:`schemas.partition` would seal separately is left
    out rather than withheld, so the derivative can go where personal data may not.
    """
    if original in report.refs:
        raise InputError(f"the report already refs {original}; it cannot be its own tear-line")
    main = dict(partition(report).main)
    main["refs"] = [*report.refs, original]
    try:
        derivative = join(main)
    except ValidationError as exc:
        raise InputError(
            f"the version without personal data does not make a valid report ({exc.error_count()} "
            f"errors, e.g. {exc.errors()[0]['msg']}); write the releasable version by hand"
        ) from exc
    if partition(derivative).sections():  # join only drops; a section here is a schemas bug
        raise InputError("the tear-line version still holds personal data; not sent")
    return derivative


def sealing_key(
    trust: TrustStore, agency: str, now: datetime
) -> tuple[PublicEncryptionKey | None, str]:
    """The key to wrap for ``agency`` (its newest current one), or None and why it has none."""
    try:
        current = trust.encryption_keys(agency, now)
    except TrustError as exc:  # not a member in good standing (revoked, expired certificate)
        return None, exc.reason
    if not current:
        return None, (
            f"{agency} has no current encryption key in the directory; it must publish a key "
            "bundle before it can receive"
        )
    if crypto.low_order_x25519(current[0].raw):
        # Sealing to a low-order point would give an all-zero shared secret: anyone could
        # unwrap the content key. Never fall back to an older key the agency replaced.
        return None, (
            f"encryption key {current[0].kid} of {agency} is a low-order X25519 point and "
            f"cannot be sealed to; {agency} must publish a new key bundle"
        )
    return current[0], ""


def open_report(opened: Opened) -> Report:
    """The report as this recipient may read it: withheld sections stay absent.

    The policy was decided on the signed header, so the body must say the same: its
    originator, kind, route, category, priority and handling must equal the header's, and its
    partition into sections must be the header's section list (for the sections opened here;
    none where the header lists none). Otherwise ``BodyMismatch``.
    """
    # The body is signed, but by a partner whose node may be buggy or hostile: whatever is in
    # it ends in a typed error, never an exception that would stop the receiving node.
    try:
        main = msgpack.unpackb(opened.body, raw=False, strict_map_key=True)
        sections = {
            k: msgpack.unpackb(v, raw=False, strict_map_key=False)
            for k, v in opened.sections.items()
        }
        report = join(main, sections.get(PERSONAL_DATA), sections.get(PROTECTED_PERSONS))
        # The sections this report would be sealed with, from what was opened: equal to the
        # header's for those sections, and nothing (personal data, protected persons) that the
        # header does not announce, since the broker's guards judged the header's list.
        found = partition(report).sections()
    except ValidationError as exc:
        raise invalid(exc, "the opened body is not a valid report") from exc
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, msgpack.FormatError,
            msgpack.StackError) as exc:  # fmt: skip
        raise MalformedEnvelope(
            f"the opened body is not a msgpack report: {type(exc).__name__}: {exc}"
        ) from exc
    _check_against_header(report, found, opened)
    k = opened.header.suppression_k
    if report.statistics is not None and k is not None:
        # The broker can only trust the header's k: the cells are checked here (decision 0024).
        problems = check_disclosure(report.statistics, k)
        if problems:
            raise DisclosureControlBroken(opened.header.id, k, problems)
    return report


_HEADER_FIELDS: Final[tuple[str, ...]] = (
    "schema_", "originator", "kind", "route", "category", "priority", "handling",
)  # fmt: skip


def _check_against_header(report: Report, found: list[SectionInfo], opened: Opened) -> None:
    header = opened.header
    for name in _HEADER_FIELDS:
        if getattr(report, name) != getattr(header, name):
            raise BodyMismatch(
                f"the report's {name.rstrip('_')} differs from the signed header's; policy "
                f"was decided on the header, so envelope {header.id} from {header.originator} "
                "is refused"
            )
    declared = report.statistics.suppression_k if report.statistics else None
    if declared != header.suppression_k:
        raise BodyMismatch(
            f"the return's suppression_k ({declared}) is not the signed header's "
            f"({header.suppression_k}); policy was decided on the header, so envelope "
            f"{header.id} from {header.originator} is refused"
        )
    expected = [s for s in header.sections if s.id in opened.sections]
    if found != expected:
        raise BodyMismatch(
            f"the report's sections ({_describe(found)}) are not the signed header's "
            f"({_describe(expected)}); the broker judged the header, so envelope {header.id} "
            f"from {header.originator} is refused"
        )


def _describe(sections: list[SectionInfo]) -> str:
    return (
        ", ".join(
            f"{s.id} [{' '.join(s.protected_nationalities)}]" if s.protected_nationalities else s.id
            for s in sections
        )
        or "none"
    )
