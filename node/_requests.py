"""The node's requests and onward dissemination: questions between agencies, their answers,
release requests and the originator's decision on them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.msg import Msg
from pydantic import ValidationError

from policies import may_forward
from protocol.envelope import seal
from protocol.transport import publish_subject
from protocol.trust import canonical_json, sign_document
from schemas import EnvelopeHeader, Handling, Kind, Priority, Report, new_uuid7
from schemas.errors import ContentUnreadable, InputError, PalermoError, UnknownReference

from ._status import _Status
from .releases import ReleaseDecision, ReleaseRequest
from .reports import SealedReport, seal_report

_log = structlog.get_logger("palermo.node")


class _Requests(_Status):
    """Requests and responses; release requests and decisions."""

    # --- requests and responses ---------------------------------------------------------------

    async def _send_message(
        self, to: str, kind: Kind, refs: Sequence[str], content: dict[str, Any],
        route: str, category: str, urgent: bool,
    ) -> EnvelopeHeader:  # fmt: skip
        now = datetime.now(UTC)
        keys = self.trust.encryption_keys(to, now)
        if not keys:
            raise InputError(f"{to} has no current encryption key in the directory")
        header = EnvelopeHeader(
            id=new_uuid7(),
            originator=self.identity.agency,
            kid=self.identity.signing.kid,
            created=now,
            kind=kind,
            priority=Priority.URGENT if urgent else Priority.ROUTINE,
            route=route,
            category=category,
            handling=Handling(tlp="RED", rel_to=[to]),
            recipients=[to],
            refs=list(refs),
        )
        data = seal(header, json.dumps(content).encode(), self.identity.signing, [keys[0]])
        await self._publish(publish_subject(header), data, header.id, f"publish a {kind.value}")
        return header

    async def request(
        self, report_id: str, question: str, *, subject: str = "information", urgent: bool = False
    ) -> EnvelopeHeader:
        """Ask a report's originator for information or a document verification (003 p.49)."""
        entry, _ = self.inbox.show(report_id)
        return await self._send_message(
            entry.originator, Kind.REQUEST, [report_id],
            {"subject": subject, "text": question}, entry.route, entry.category, urgent,
        )  # fmt: skip

    async def respond(self, request_id: str, answer: str) -> EnvelopeHeader:
        """Answer a request, threaded to it and to the report it is about."""
        found = [m for m in self.inbox.messages("request") if m["id"] == request_id]
        if not found:
            raise InputError(f"no request {request_id}; see 'palermo requests'")
        req = found[0]
        report = self.inbox.sent_header(req["refs"][0])
        header = await self._send_message(
            req["from"], Kind.RESPONSE, [*req["refs"], request_id], {"text": answer},
            report.route.value, report.category.value, req["priority"] == "urgent",
        )  # fmt: skip
        self.inbox.mark_answered(request_id, header.id)
        return header

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

    def _not_a_member(self, agency: str, now: datetime) -> str | None:
        """Why ``agency`` is not a member in good standing at ``now``, or None if it is."""
        try:
            self.trust.certificate(agency, now)
        except PalermoError as exc:
            return exc.reason
        return None

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
                report = self._release_report(pending)
                release = report, seal_report(report, self.identity.signing,
                                              [pending["target"]], self.trust, self.policy,
                                              datetime.now(UTC))  # fmt: skip
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
        handling = original.handling.model_copy(
            update={"rel_to": sorted({*original.handling.rel_to, row["target"]})}
        )
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
