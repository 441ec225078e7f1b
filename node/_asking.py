"""The node's requests for information and their answers: sent cold or about a report, with a
typed subject, a priority and a Directive (EU) 2023/977 art. 5(1) deadline (:mod:`node.requests`);
stored on both sides, so either side can list what is overdue, and watched for deadlines passing
(one log event and the ``palermo_node_requests_overdue`` metrics per request)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from policies import required_suite
from protocol.envelope import seal
from protocol.transport import publish_subject
from schemas import Category, EnvelopeHeader, Handling, Kind, Priority, Route, new_uuid7
from schemas.errors import InputError, PalermoError

from ._status import _Status
from .requests import (
    SUBJECT_CATEGORY,
    Access,
    Answer,
    DocumentVerdict,
    Question,
    RequestSubject,
    default_deadline,
    parse_deadline,
)

_log = structlog.get_logger("palermo.node")


def message_body(kind: Kind, body: bytes) -> dict[str, Any]:
    """A received request's or response's body, checked (ValueError, RecursionError if not)."""
    content = json.loads(body)
    # Nodes before typed subjects sent "document-verification" with the number in the text
    # only: read as a plain information request (no identifier, so no verdict owed).
    if isinstance(content, dict) and content.get("subject") == "document-verification":
        content = {**content, "subject": RequestSubject.INFORMATION.value}
    model = Question if kind is Kind.REQUEST else Answer
    return model.model_validate(content).model_dump(mode="json", exclude_none=True)


class _Asking(_Status):
    """Requests and responses, in and out, and their deadlines."""

    clock: Callable[[], datetime]
    """What "now" is for deadlines (tests move it; nothing here sleeps)."""

    async def _send_message(
        self, to: str, kind: Kind, refs: Sequence[str], content: dict[str, Any],
        route: str, category: str, urgent: bool, *, created: datetime | None = None,
    ) -> EnvelopeHeader:  # fmt: skip
        now = created or datetime.now(UTC)
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
        if kind is Kind.REQUEST:
            # Found out now, not as a dead letter later: a cold request goes to any member the
            # policy lets us send to (an agreement covering the category, data protection...).
            decision = self.policy.decide(header, to, now)
            if not decision.allowed:
                reasons = "; ".join(r.message for r in decision.reasons)
                raise InputError(f"policy does not let {to} receive this {kind.value}: {reasons}")
        # Requests and responses are TLP:RED: a federation may require suite 2 for them.
        least, why = required_suite(self.policy.rules, header.handling)
        if least > 1 and not keys[0].hybrid:
            raise InputError(
                f"{why}, and {to} has no hybrid ML-KEM-768 + X25519 key in the directory; it "
                "must publish one (palermo keys rotate --pq) before it can receive this"
            )
        data = seal(
            header,
            json.dumps(content).encode(),
            self.identity.signing,
            [keys[0]],
            suite=least if least > 1 else None,
        )
        await self._publish(publish_subject(header), data, header.id, f"publish a {kind.value}")
        if kind is not Kind.RESPONSE:
            # Kept to follow: the deadline and answer of a request, the decision on a release
            # request (whose body's "to" is the target, not the originator it goes to).
            kept = {**content, "route": route, "category": category}
            if kind is Kind.RELEASE_REQUEST:
                kept["target"] = content["to"]
            self.inbox.record_asked(header, kept, now)
        return header

    async def request(
        self,
        question: str,
        *,
        to: str | None = None,
        about: str | None = None,
        subject: RequestSubject | str = RequestSubject.INFORMATION,
        identifier: str | None = None,
        urgent: bool = False,
        access: Access | str = Access.INDIRECT,
        deadline: datetime | str | None = None,
        route: str | None = None,
        category: str | None = None,
    ) -> EnvelopeHeader:
        """Ask ``to`` (or the originator of report ``about``) a question; no prior report is
        needed (a cold request). The deadline defaults to art. 5(1): 8 hours if urgent on
        directly accessible data, 3 days if urgent on indirectly accessible data, 7 days
        otherwise; ``deadline`` (a time, or ``90m``/``12h``/``2d``) overrides it."""
        subject, access = RequestSubject(subject), Access(access)
        refs: list[str] = []
        if about is not None:
            entry, _ = self.inbox.show(about)
            to = to or entry.originator
            route, category, refs = route or entry.route, category or entry.category, [about]
        if to is None:
            raise InputError("a request names its recipient (--to AGENCY) or a report (about)")
        if to == self.identity.agency:
            raise InputError(f"{to} is this node's own agency; ask another member")
        now = datetime.now(UTC)
        if (problem := self._not_a_member(to, now)) is not None:
            raise InputError(f"{to} cannot receive requests: {problem}")
        if isinstance(deadline, str):
            deadline = parse_deadline(deadline, now)
        elif deadline is not None and deadline <= now:
            raise InputError(f"deadline {deadline.isoformat()} is not in the future")
        try:
            body = Question(subject=subject, identifier=identifier, text=question, access=access,
                            deadline=deadline or default_deadline(now, urgent, access))  # fmt: skip
        except ValidationError as exc:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise InputError(f"not a valid request: {problems}") from exc
        topic = Route(route or Route.OTHER).value
        category = Category(category or SUBJECT_CATEGORY[subject]).value
        return await self._send_message(
            to, Kind.REQUEST, refs, body.model_dump(mode="json", exclude_none=True), topic,
            category, urgent, created=now,
        )  # fmt: skip

    def _not_a_member(self, agency: str, now: datetime) -> str | None:
        """Why ``agency`` is not a member in good standing at ``now``, or None if it is."""
        try:
            self.trust.certificate(agency, now)
        except PalermoError as exc:
            return exc.reason
        return None

    async def respond(
        self, request_id: str, answer: str, *, verdict: DocumentVerdict | str | None = None
    ) -> EnvelopeHeader:
        """Answer a request received, threaded to it (and to the report it is about); a
        document verification is answered with a verdict, nothing else is."""
        req = self.inbox.thread(request_id)
        if (req["kind"], req["direction"]) != ("request", "received"):
            raise InputError(f"{request_id} is not a request received; see 'palermo requests'")
        subject = RequestSubject(req.get("subject", RequestSubject.INFORMATION))
        if subject is RequestSubject.VERIFY_DOCUMENT and verdict is None:
            choices = ", ".join(v.value for v in DocumentVerdict)
            raise InputError(f"a document verification is answered with a verdict ({choices})")
        if subject is not RequestSubject.VERIFY_DOCUMENT and verdict is not None:
            raise InputError(f"a verdict answers a document verification, not {subject.value}")
        body = Answer(text=answer, verdict=verdict)
        route, category = req.get("route"), req.get("category")
        if route is None or category is None:  # stored before deadlines: about our report
            report = self.inbox.sent_header(req["refs"][0])
            route, category = report.route.value, report.category.value
        header = await self._send_message(
            req["from"], Kind.RESPONSE, [*req["refs"], request_id],
            body.model_dump(mode="json", exclude_none=True), route, category,
            req["priority"] == "urgent",
        )  # fmt: skip
        self.inbox.mark_answered(request_id, header.id, header.created)
        return header

    def _store_message(self, header: EnvelopeHeader, content: dict[str, Any]) -> None:
        """A request or response received; a response also closes the request it answers (the
        first answer counts, at its signed time: the proof of when it was given)."""
        now = datetime.now(UTC)
        route, category = header.route.value, header.category.value
        self.inbox.add_message(header, {**content, "route": route, "category": category}, now)
        if header.kind is not Kind.RESPONSE:
            return
        for ref in header.refs:
            try:
                asked = self.inbox.thread(ref)
            except InputError:
                continue
            # Only the agency we asked can close our request.
            if (asked["direction"], asked["to"]) == ("sent", header.originator):
                self.inbox.mark_answered(ref, header.id, header.created)

    def check_overdue(self) -> list[dict[str, Any]]:
        """Requests past their deadline and unanswered, both directions; the first time one is
        seen overdue it is logged (``request overdue``) and counted. Sets the gauges."""
        now = self.clock()
        late = self.inbox.overdue(now)
        counts = {"received": 0, "sent": 0}
        for row in late:
            counts[row["direction"]] += 1
            if self.inbox.flag_overdue(row["id"], now):
                peer = row["from"] if row["direction"] == "received" else row["to"]
                _log.warning("request overdue", request=row["id"], direction=row["direction"],
                             peer=peer, priority=row["priority"], subject=row.get("subject"),
                             deadline_ms=row["deadline_ms"])  # fmt: skip
                self.metrics.requests_overdue_total.labels(direction=row["direction"]).inc()
        for direction, count in counts.items():
            self.metrics.requests_overdue.labels(direction=direction).set(count)
        return late
