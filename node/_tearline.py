"""Publishing with a tear-line: the report for the partners policy allows, and in the same step
a version without personal data for the partners refused only because of it.

Intelligence services write a tear-line so that what lies below it can go further than the
whole report. Here the line is drawn by the report's own partition (``schemas.partition``): the
body every recipient already gets is the releasable part, the personal-data and protected-
persons sections are not. The version below the line is a report of its own: its own envelope
id, ``refs`` naming the original, sealed only for the partners whose every refusal was about
personal data (``policies.tear_line_candidates``) and decided again, like any report, on its
own header here, at the broker and at the recipient. Retracting the original retracts it too
(:meth:`node._publishing._Publishing.retract_all`), and ``palermo status`` of the original
shows both (:meth:`node._status._Status.delivery_status`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from policies import Decision, Reason, tear_line_candidates
from protocol.trust import TrustStore
from schemas import Handling, Report
from schemas.errors import InputError

from ._publishing import _Publishing
from .reports import (
    NO_USABLE_KEY,
    SealedReport,
    decide_report,
    seal_report,
    sealing_key,
    tear_line_report,
)

__all__ = ["TearLinePublication"]


@dataclass(frozen=True)
class TearLinePublication:
    """What ``publish --tear-line`` sent: the original, and the tear-line version if anyone
    may receive it."""

    original: SealedReport
    tear_line: SealedReport | None
    decisions: Mapping[str, Decision]
    """The decision on the tear-line version for every candidate (refused only because of
    personal data); empty when nobody was."""

    @property
    def candidates(self) -> list[str]:
        return sorted(self.decisions)

    def to_dict(self) -> dict[str, object]:
        """The answer of ``palermo publish --tear-line --json`` and of the ingest API."""
        sealed = self.original
        return {
            "id": sealed.header.id,
            "recipients": sealed.recipients,
            "refused": _refused(sealed.decisions),
            "tear_line": {
                "id": self.tear_line.header.id if self.tear_line else None,
                "recipients": self.tear_line.recipients if self.tear_line else [],
                "refused": _refused(self.decisions),
            },
        }


def _refused(decisions: Mapping[str, Decision]) -> dict[str, list[dict[str, str]]]:
    return {a: [r.to_dict() for r in d.reasons] for a, d in decisions.items() if not d.allowed}


def _unusable(decision: Decision, trust: TrustStore, now: datetime) -> Decision:
    """An allowed decision turned into the refusal sealing gives a partner without a key."""
    if not decision.allowed:
        return decision
    problem = sealing_key(trust, decision.recipient, now)[1]
    return Decision(decision.recipient, False, (Reason(NO_USABLE_KEY, problem),))


class _TearLines(_Publishing):
    """``publish`` with a tear-line version for the partners refused only for personal data."""

    async def publish_tear_line(
        self,
        report: Report,
        handling: Handling | None = None,
        *,
        to: Sequence[str] | None = None,
    ) -> TearLinePublication:
        """Seal and publish ``report`` as :meth:`publish` does, and a version without its
        personal-data and protected-persons sections for exactly the partners refused only
        because of them, if policy allows them that version.

        Both are sealed before either is published: a typed error (nobody may receive the
        original; the version below the line is not a valid report) publishes nothing.
        """
        # The same preparation as publish: disclosure control, embargo cap, all-members.
        report, candidates, now = self.prepared(report, handling, to)
        try:
            original = seal_report(
                report, self.identity.signing, candidates, self.trust, self.policy, now
            )
        except InputError as exc:
            refused = decide_report(report, self.identity.signing, candidates, self.policy, now)
            if not tear_line_candidates(refused):
                raise
            # A version below the tear-line refs the report it was cut from: with nobody to
            # receive the report itself, there is nothing to cut from.
            raise InputError(
                f"{exc.reason}. A tear-line goes out with the report; as nobody may receive "
                f"the report itself, publish a version without personal data as a report of "
                f"its own for {', '.join(tear_line_candidates(refused))}"
            ) from exc
        below = tear_line_candidates(original.decisions)
        derivative: Report | None = None
        sealed: SealedReport | None = None
        decisions: dict[str, Decision] = {}
        if below:
            derivative = tear_line_report(report, original.header.id)
            decisions = decide_report(derivative, self.identity.signing, below, self.policy, now)
            if any(d.allowed for d in decisions.values()):
                try:
                    sealed = seal_report(
                        derivative, self.identity.signing, below, self.trust, self.policy, now
                    )
                except InputError:  # every partner allowed it lacks a usable key
                    decisions = {a: _unusable(d, self.trust, now) for a, d in decisions.items()}
                else:
                    decisions = dict(sealed.decisions)
        await self._send_sealed(report, original)
        if sealed is not None and derivative is not None:
            await self._send_sealed(derivative, sealed, tear_line_of=original.header.id)
        return TearLinePublication(original, sealed, decisions)
