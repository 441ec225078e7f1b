"""The node's onward dissemination: release requests, the originator's decision on them, the
release envelope a grant seals (decision 0008), and the requester's view of its decisions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError

from policies import may_forward
from protocol.trust import canonical_json, sign_document, verify_document
from schemas import ALL_MEMBERS, EnvelopeHeader, Kind, Report, to_epoch_ms
from schemas.errors import ContentUnreadable, InputError, PalermoError, UnknownReference

from ._asking import _Asking
from .releases import ReleaseDecision, ReleaseRequest
from .reports import SealedReport, seal_report

_log = structlog.get_logger("palermo.node")


class _Requests(_Asking):
    """Release requests and the originator's decisions on them."""

    # --- onward dissemination ---------------------------------------------------------------

    async def request_release(self, report_id: str, to: str, purpose: str) -> EnvelopeHeader:
        """Ask a report's originator to let us pass it on to ``to``."""
        entry, _ = self.inbox.show(report_id)
        request = ReleaseRequest(report=report_id, to=to, purpose=purpose)
        # The request names a partner and a purpose: RED, for the originator only.
        return await self._send_message(
            entry.originator, Kind.RELEASE_REQUEST, [report_id], request.model_dump(mode="json"),
            entry.route, entry.category, urgent=False,
        )  # fmt: skip

    async def release_status(self) -> list[dict[str, Any]]:
        """The release requests this node sent, each with the originator's signed decision
        (``pending`` until one comes back), newest first.

        A decision counts only from the originator's own subject
        (``plm.rcpt.<us>.release.<originator>``, which NATS lets only it publish to), signed
        by it, about a request we sent to it; anything else is ignored.
        """
        asked = self.inbox.messages(Kind.RELEASE_REQUEST.value, outgoing=True)
        mine = {row["id"]: row for row in asked}
        decisions: dict[str, ReleaseDecision] = {}
        me = self.identity.agency
        for msg in await self._rcpt_messages():
            try:
                signed = json.loads(msg.data)
                request_id = signed["document"]["request"]
                row = mine[request_id]
                originator = row["to"]
                cert = self.trust.members[originator]
                if msg.subject != f"plm.rcpt.{me}.release.{originator}":
                    continue
                answer = verify_document(
                    signed, ReleaseDecision, cert.public_signing_key, cert.agency
                )
            except (ValueError, KeyError, TypeError, RecursionError, PalermoError):
                continue
            if answer.requester == me and answer.report == row["report"]:
                decisions[request_id] = answer
        out = []
        for row in sorted(asked, key=lambda r: r["received_ms"], reverse=True):
            decided = decisions.get(row["id"])
            out.append(
                {
                    "request": row["id"],
                    "report": row["report"],
                    "originator": row["to"],
                    "target": row["target"],
                    "purpose": row["purpose"],
                    "asked_ms": row["received_ms"],
                    "decision": decided.decision if decided else "pending",
                    "reason": decided.reason if decided else None,
                    "release": decided.release if decided else None,
                    "decided_ms": to_epoch_ms(decided.time) if decided else None,
                }
            )
        return out

    async def _release_request(
        self, msg: Msg, body: bytes, header: EnvelopeHeader, now: datetime
    ) -> str:
        """As originator: refuse what policy forbids at once, hold the rest for an officer."""
        try:
            request = ReleaseRequest.model_validate_json(body)
        except ValueError as exc:  # pydantic's ValidationError, for bad JSON too
            return await self._refuse(msg, ContentUnreadable(
                header.kind.value, header.id,
                f"not the JSON of a release request (report, to, purpose): {_first_error(exc)}",
            ), header)  # fmt: skip
        try:
            original = self.inbox.sent_header(request.report)
        except InputError:
            return await self._refuse(msg, UnknownReference(
                f"{self.identity.agency} never sent report {request.report}: only its "
                "originator can release a report"
            ), header)  # fmt: skip
        holder = header.originator
        decision_reason: str | None
        if holder not in original.recipients:
            decision_reason = f"{holder} never received report {request.report}"
        elif (not_member := self._not_a_member(request.to, now)) is not None:
            # Not worth an officer's time: no grant could be sealed for it (decide_release).
            decision_reason = f"{request.to} cannot receive reports: {not_member}"
        else:
            assert self.policy.index is not None
            decision = may_forward(
                original, holder, request.to, self.policy.index, True, now,
                agency_policy=self.policy.agency_policies.get(self.identity.agency),
            )  # fmt: skip
            decision_reason = (
                None if decision.allowed else "; ".join(r.message for r in decision.reasons)
            )
        state = "pending" if decision_reason is None else "denied"
        self.inbox.add_release_request(
            header.id, request.report, holder, request.to, request.purpose, now, state,
            decision_reason,
        )  # fmt: skip
        if state == "denied":
            await self._release_answer(header.id, "denied", decision_reason)
        await msg.ack()
        return f"release-{state}"

    async def decide_release(self, request_id: str, grant: bool, reason: str = "") -> str | None:
        """An officer's decision on a pending request; a grant seals the report for the target.

        Returns the release envelope id on a grant. A grant that can no longer be sealed (the
        target was revoked, or lost its keys or its agreement, since the request came) raises
        InputError and leaves the request pending, to be denied.
        """
        release: tuple[Report, SealedReport] | None = None
        for pending in self.inbox.release_requests("pending") if grant else []:
            if pending["id"] == request_id:
                # Sealed before the grant is recorded: a grant must never be on record for a
                # release that could not be sent.
                if self.inbox.retracted(pending["report"]):
                    raise InputError(
                        f"report {pending['report']} was retracted; deny the request instead"
                    )
                report = self._release_report(pending)
                # Only the target of this grant, and refs to the original: a release is one
                # grant, never wider (policies refuse any other release, release-invalid).
                release = report, seal_report(report, self.identity.signing,
                                              [pending["target"]], self.trust, self.policy,
                                              datetime.now(UTC),
                                              refs=[pending["report"]])  # fmt: skip
        # Refuses an unknown or already decided request (so a grant always has its release).
        self.inbox.decide_release(request_id, "granted" if grant else "denied", reason)
        if not grant:
            await self._release_answer(request_id, "denied", reason or "refused by the originator")
            return None
        assert release is not None
        report, sealed = release
        await self._send_sealed(report, sealed)
        await self._release_answer(request_id, "granted", reason or None, sealed.header.id)
        return sealed.header.id

    def _release_report(self, row: Mapping[str, Any]) -> Report:
        """The report as released to a request's target: kind release, target added to rel_to."""
        report = self.inbox.sent_report(row["report"])
        original = self.inbox.sent_header(row["report"])
        rel_to = original.handling.rel_to
        if rel_to != [ALL_MEMBERS]:  # all-members already holds the target, and stands alone
            rel_to = sorted({*rel_to, row["target"]})
        # deny_to travels unchanged: an excluded target is refused at sealing, by the broker
        # and by the target's node, whatever the grant.
        handling = original.handling.model_copy(update={"rel_to": rel_to})
        return report.model_copy(update={"kind": Kind.RELEASE, "handling": handling})

    async def _release_answer(
        self, request_id: str, decision: str, reason: str | None, release: str | None = None
    ) -> None:
        [row] = [r for r in self.inbox.release_requests() if r["id"] == request_id]
        answer = ReleaseDecision(
            request=request_id, report=row["report"], requester=row["requester"],
            target=row["target"], decision=decision, reason=reason, release=release,
            time=datetime.now(UTC),
        )  # fmt: skip
        signed = sign_document(answer, self.identity.signing, self.identity.agency)
        await self._publish(
            f"plm.rcpt.{row['requester']}.release.{self.identity.agency}",
            canonical_json(signed),
            self._msg_id("release", request_id, decision),
            "answer a release request",
        )


def _first_error(exc: ValueError) -> str:
    """The first problem pydantic found, without the input it quotes (a short receipt)."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc']) or 'body'}: {first['msg']}"
    return type(exc).__name__
