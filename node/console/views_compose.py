"""The compose form as data: form fields to a report, validation errors back to the fields, and
the recipient preview (who receives it, who does not and why, and the tear-line offer).

The report the form builds is validated by the same function ``palermo schema validate`` calls
(:func:`schemas.export.parse_report`), so the page shows exactly the field errors the CLI
prints; the preview's decisions are the ones ``palermo policy check`` prints
(``policies.decide``, through :func:`node.reports.decide_report`, which is what sealing
decides).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from policies import Decision, tear_line_candidates
from schemas import ActionCode, Category, PersonRole, Priority, Report, Route, Tlp
from schemas.errors import ReportInvalid
from schemas.export import parse_report

__all__ = [
    "COMPOSE_KINDS",
    "ComposeForm",
    "choices",
    "field_errors",
    "recipient_preview",
]

COMPOSE_KINDS: Final[tuple[str, ...]] = ("alert", "report")
# The form's fields, with the report path each fills: a validation error on that path (or
# below it) is shown next to the field; any other error in the summary above the form.
FIELD_PATHS: Final[dict[str, str]] = {
    "kind": "kind",
    "priority": "priority",
    "route": "route",
    "category": "category",
    "title": "title",
    "text": "narrative.text",
    "language": "narrative.language",
    "unit": "contact.unit",
    "tlp": "handling.tlp",
    "rel_to": "handling.rel_to",
    "action": "handling.action",
    "action_text": "handling.action_text",
    "embark_country": "itinerary.embarkation.0.country",
    "embark_place": "itinerary.embarkation.0.place",
    "dest_country": "itinerary.destination.0.country",
    "dest_place": "itinerary.destination.0.place",
    "person_role": "persons.0.role",
    "person_name": "persons.0.names",
    "person_nationality": "persons.0.nationality",
}
MAX_FIELD: Final[int] = 20_000


def choices() -> dict[str, list[str]]:
    """The values of the form's selects (the controlled vocabularies)."""
    return {
        "kind": list(COMPOSE_KINDS),
        "priority": [p.value for p in Priority],
        "route": [r.value for r in Route],
        "category": [c.value for c in Category],
        "tlp": [t.value for t in Tlp],
        "action": ["", *(a.value for a in ActionCode)],
        "person_role": ["", *(r.value for r in PersonRole)],
    }


class ComposeForm:
    """The posted form's values (trimmed, capped) and the report data they make."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self.values = {name: str(form.get(name, "")).strip()[:MAX_FIELD] for name in FIELD_PATHS}
        self.tear_line = str(form.get("tear_line", "")) == "on"

    def report_data(self, originator: str) -> dict[str, Any]:
        v = self.values
        handling: dict[str, Any] = {"tlp": v["tlp"] or "AMBER"}
        rel_to = [r.strip() for r in v["rel_to"].replace("\n", ",").split(",") if r.strip()]
        if rel_to:
            handling["rel_to"] = rel_to
        if v["action"]:
            handling["action"] = v["action"]
        if v["action_text"]:
            handling["action_text"] = v["action_text"]
        data: dict[str, Any] = {
            "schema": "iir/1",
            "originator": originator,
            "kind": v["kind"] or "report",
            "category": v["category"],
            "priority": v["priority"] or "routine",
            "route": v["route"],
            "title": v["title"],
            "handling": handling,
            "narrative": {"language": v["language"] or "en", "text": v["text"]},
            "contact": {"unit": v["unit"], "channel": "palermo"},
        }
        itinerary: dict[str, list[dict[str, str]]] = {}
        for key, prefix in (("embarkation", "embark"), ("destination", "dest")):
            point = {"country": v[f"{prefix}_country"].upper(), "place": v[f"{prefix}_place"]}
            if point["country"] or point["place"]:
                itinerary[key] = [{k: x for k, x in point.items() if x}]
        if itinerary:
            data["itinerary"] = itinerary
        if v["person_role"] or v["person_name"]:
            person: dict[str, Any] = {"ref": "p1", "role": v["person_role"]}
            if v["person_name"]:
                person["names"] = [v["person_name"]]
            if v["person_nationality"]:
                person["nationality"] = v["person_nationality"].upper()
            data["persons"] = [person]
        return data

    def report(self, originator: str) -> Report:
        """The report, or :class:`ReportInvalid` with ``palermo schema validate``'s errors."""
        return parse_report(json.dumps(self.report_data(originator)))


def field_errors(exc: ReportInvalid) -> tuple[dict[str, list[str]], list[str]]:
    """Each error on the form field whose report path it is on, the rest apart."""
    by_field: dict[str, list[str]] = {}
    other: list[str] = []
    for error in exc.errors:
        path = str(error.get("field", ""))
        message = str(error.get("message", "")).removeprefix("Value error, ")
        owner = next(
            (
                name
                for name, prefix in FIELD_PATHS.items()
                if path == prefix or path.startswith(prefix + ".")
            ),
            None,
        )
        if owner is None:
            other.append(f"{path}: {message}" if path else message)
        else:
            by_field.setdefault(owner, []).append(message)
    return by_field, other


def recipient_preview(
    decisions: Mapping[str, Decision], candidates: Sequence[str], members: Sequence[str]
) -> dict[str, Any]:
    """Who will receive the report, who will not and why (``palermo policy check``'s
    reasons), and who would get a tear-line version (refused only for personal data).

    ``candidates``: who publishing considers (the route's subscribers, or rel_to's
    all-members); ``members``: every other member in good standing, so the page can also say
    who is left out because they do not follow the topic.
    """
    receive = [
        {
            "agency": a,
            "withheld": list(d.withheld_sections),
            "obligations": [o.message for o in d.obligations],
        }
        for a, d in sorted(decisions.items())
        if d.allowed and a in candidates
    ]
    refused = [
        {"agency": a, "reasons": [{"code": str(r.code), "message": r.message} for r in d.reasons]}
        for a, d in sorted(decisions.items())
        if not d.allowed and a in candidates
    ]
    not_following = sorted(set(members) - set(candidates))
    considered = {a: d for a, d in decisions.items() if a in candidates}
    return {
        "receive": receive,
        "refused": refused,
        "not_following": not_following,
        "tear_line": tear_line_candidates(considered),
        "nobody": not receive,
    }
