"""What the inbox and report pages show, as plain data: pure functions from the node's inbox
entries and opened reports to the dicts the templates render.

Kept apart from the handlers so that what an officer sees can be tested without a server, and
so that the templates only lay out values (every one escaped by Jinja's autoescape: a report is
partner-controlled input). No function here writes a report's content anywhere but into the
returned dict: not into a URL, not into a log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from policies import CATALOGUE
from schemas import Category, Kind, Report, Route, SectionKind, Tlp
from schemas.errors import InputError

from ..inbox import InboxEntry

__all__ = [
    "PERIODS",
    "TLP_COLOURS",
    "InboxFilter",
    "contrast_ratio",
    "fmt_ms",
    "inbox_rows",
    "report_view",
    "tlp_banner",
]

# FIRST TLP 2.0 ("Colour-coding in RGB"): the label's text colour, always on black. The console
# uses exactly these; tests/console/test_views.py computes their WCAG contrast on black.
TLP_COLOURS: Final[dict[str, str]] = {
    "CLEAR": "#FFFFFF",
    "GREEN": "#33FF00",
    "AMBER": "#FFC000",
    "AMBER+STRICT": "#FFC000",
    "RED": "#FF2B2B",
}
TLP_BACKGROUND: Final[str] = "#000000"
PERIODS: Final[dict[str, timedelta]] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
MAX_QUERY: Final[int] = 200
# Groups of the report view, in the order an analyst reads them (issue 17: itinerary,
# transport, persons by role, documents, finance, incidents), then the rest of the body.
GROUPS: Final[tuple[tuple[str, str], ...]] = (
    ("transport", "Transport"),
    ("documents", "Documents"),
    ("finance", "Finance"),
    ("incidents", "Incidents"),
    ("groups", "Organised groups"),
    ("concealment", "Concealment"),
    ("identifiers", "Identifiers"),
    ("events", "Events"),
    ("relations", "Relations"),
    ("legislation", "Legislation"),
    ("scitech", "Science and technology"),
    ("attachments", "Attachments"),
)
SECTION_WHY: Final[dict[str, str]] = {
    SectionKind.PERSONAL_DATA.value: "It holds personal data, and the originator's handling "
    "or the federation policy did not release personal data to your agency: the sender did "
    "not give you its key.",
    SectionKind.PROTECTED_PERSONS.value: "It identifies protected persons (witnesses, "
    "victims), who go only to agencies the originator released them to by name.",
}


def fmt_ms(ms: int | None) -> str:
    """An epoch-millisecond time for an officer: ``2026-11-21 02:00 UTC``."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _channel(hex_colour: str, i: int) -> float:
    c = int(hex_colour[1 + 2 * i : 3 + 2 * i], 16) / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast_ratio(fg: str, bg: str) -> float:
    """WCAG 2.x contrast ratio of two ``#RRGGBB`` colours (AA: at least 4.5 for text)."""

    def luminance(colour: str) -> float:
        r, g, b = (_channel(colour, i) for i in range(3))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def tlp_banner(codes: Sequence[str]) -> dict[str, Any]:
    """The banner of a report: its TLP label (with the class that colours it) and every other
    handling code with its meaning in plain words, from the policy catalogue."""
    tlp = next((c.removeprefix("TLP:") for c in codes if c.startswith("TLP:")), "CLEAR")
    return {
        "tlp": tlp,
        "label": f"TLP:{tlp}",
        "css": "tlp-" + tlp.lower().replace("+", "-"),
        "meaning": CATALOGUE[f"TLP:{tlp}"].meaning,
        "codes": [
            {"code": c, "meaning": CATALOGUE[c].meaning if c in CATALOGUE else ""}
            for c in codes
            if not c.startswith("TLP:")
        ],
    }


@dataclass(frozen=True)
class InboxFilter:
    """The inbox filters an officer chose (query parameters of ``GET /``), checked."""

    route: str | None = None
    category: str | None = None
    kind: str | None = None
    tlp: str | None = None
    originator: str | None = None
    period: str | None = None
    q: str | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> InboxFilter:
        """Unknown values are dropped with an error the page shows, never echoed raw."""
        errors: list[str] = []

        def pick(name: str, allowed: Iterable[str]) -> str | None:
            value = query.get(name, "").strip()
            if not value:
                return None
            if value not in set(allowed):
                errors.append(f"unknown {name}: choose one from the list")
                return None
            return value

        originator = query.get("originator", "").strip() or None
        if originator is not None and (len(originator) > 64 or not originator.isprintable()):
            errors.append("originator: an agency id such as ITA-GDF")
            originator = None
        q = query.get("q", "").strip() or None
        if q is not None and len(q) > MAX_QUERY:
            errors.append(f"search: at most {MAX_QUERY} characters")
            q = None
        return cls(
            route=pick("route", (r.value for r in Route)),
            category=pick("category", (c.value for c in Category)),
            kind=pick("kind", (k.value for k in Kind)),
            tlp=pick("tlp", (t.value for t in Tlp)),
            originator=originator,
            period=pick("period", PERIODS),
            q=q,
            errors=errors,
        )

    def keeps(self, entry: InboxEntry, now: datetime) -> bool:
        """Whether the entry passes every filter but the text search."""
        tlp = next((c.removeprefix("TLP:") for c in entry.codes if c.startswith("TLP:")), None)
        since = now - PERIODS[self.period] if self.period else None
        return (
            (self.route is None or entry.route == self.route)
            and (self.category is None or entry.category == self.category)
            and (self.kind is None or entry.kind == self.kind)
            and (self.tlp is None or tlp == self.tlp)
            and (self.originator is None or entry.originator == self.originator)
            and (since is None or entry.received_ms >= int(since.timestamp() * 1000))
        )


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def matches(report: Report | None, q: str) -> bool:
    """Full-text search over the decrypted report: every word of ``q`` appears (case-folded)
    in one of its text values. A purged report has no text left to match."""
    if report is None:
        return False
    haystack = "\n".join(_texts(report.to_wire())).casefold()
    return all(word in haystack for word in q.casefold().split())


def inbox_rows(
    entries: Sequence[tuple[InboxEntry, Report | None]], flt: InboxFilter, now: datetime
) -> list[dict[str, Any]]:
    """The inbox table: by arrival, newest first, urgent before routine (the urgent ones not
    yet opened or still live come first), filtered; each row with its TLP, handling codes and
    whether sections were withheld."""
    rows = []
    for entry, report in entries:
        if not flt.keeps(entry, now) or (flt.q and not matches(report, flt.q)):
            continue
        banner = tlp_banner(entry.codes)
        rows.append(
            {
                "id": entry.id,
                "title": report.title if report is not None else "(purged)",
                "originator": entry.originator,
                "kind": entry.kind,
                "route": entry.route,
                "category": entry.category,
                "urgent": entry.priority == "urgent",
                "received": fmt_ms(entry.received_ms),
                "received_ms": entry.received_ms,
                "tlp": banner,
                "codes": [c["code"] for c in banner["codes"]],
                "withheld": list(entry.withheld),
                "purged": entry.purged_ms is not None,
            }
        )
    rows.sort(key=lambda r: (not r["urgent"], -entry_ms(r)))
    return rows


def entry_ms(row: Mapping[str, Any]) -> int:
    ms = row["received_ms"]
    return ms if isinstance(ms, int) else 0


def _flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A nested part of a report as (label, text) pairs: ``vessel.name``, lists joined."""
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += _flat(v, f"{prefix}{k}." if prefix or k else k)
        return out
    label = prefix.rstrip(".").replace("_", " ")
    if isinstance(value, list):
        if all(not isinstance(v, Mapping | list) for v in value):
            return [(label, ", ".join(str(v) for v in value))] if value else []
        return [pair for i, v in enumerate(value, 1) for pair in _flat(v, f"{label} {i}.")]
    if isinstance(value, bool):
        return [(label, "yes" if value else "no")]
    return [(label, str(value))]


def _items(values: Sequence[Any]) -> list[list[tuple[str, str]]]:
    return [_flat(v.model_dump(mode="json", exclude_none=True)) for v in values]


def _persons_by_role(report: Report) -> list[dict[str, Any]]:
    roles: dict[str, list[list[tuple[str, str]]]] = {}
    for person in report.persons:
        fields = _flat(person.model_dump(mode="json", exclude_none=True, exclude={"role"}))
        roles.setdefault(person.role.value, []).append(fields)
    return [{"role": role, "items": items} for role, items in sorted(roles.items())]


def _itinerary(report: Report) -> list[dict[str, str]]:
    if report.itinerary is None:
        return []
    out = []
    for role in ("embarkation", "transit", "destination"):
        for p in getattr(report.itinerary, role):
            out.append(
                {
                    "role": role,
                    "place": p.place or "",
                    "country": p.country,
                    "unlocode": p.unlocode or "",
                    "certainty": p.certainty.value,
                }
            )
    return out


def _evaluation(report: Report) -> dict[str, Any] | None:
    if report.evaluation is None:
        return None
    grade = report.evaluation.common()
    codes = report.evaluation.model_dump(mode="json", exclude={"scheme"})
    return {
        "scheme": report.evaluation.scheme,
        "codes": [(k.replace("_", " "), str(v)) for k, v in codes.items()],
        "common": f"reliability {grade.reliability} of 5, credibility {grade.credibility} of 5 "
        "(1 is best)",
    }


def report_view(entry: InboxEntry, report: Report | None, now: datetime) -> dict[str, Any]:
    """Everything the report page shows but the thread and the map: banner, obligations in
    plain words, expiry, withheld sections with why, evaluation, and the fields by group."""
    handling = entry.header.get("handling", {})
    sections = {s["id"]: s.get("kind", "") for s in entry.header.get("sections", [])}
    view: dict[str, Any] = {
        "id": entry.id,
        "originator": entry.originator,
        "kind": entry.kind,
        "route": entry.route,
        "category": entry.category,
        "urgent": entry.priority == "urgent",
        "received": fmt_ms(entry.received_ms),
        "banner": tlp_banner(entry.codes),
        "action_text": handling.get("action_text"),
        "expires": fmt_ms(entry.expires_ms),
        "expired": entry.expires_ms is not None and entry.expires_ms <= now.timestamp() * 1000,
        "purged": fmt_ms(entry.purged_ms),
        "purge_reason": entry.purge_reason,
        "obligations": [
            {"code": o.get("code", ""), "message": o.get("message", ""), "value": o.get("value")}
            for o in entry.obligations
        ],
        "withheld": [
            {
                "section": s,
                "why": SECTION_WHY.get(sections.get(s, ""), "The sender did not give you its key."),
            }
            for s in entry.withheld
        ],
        "report": None,
    }
    if report is None:
        return view
    view["report"] = {
        "title": report.title,
        "observed": report.observed.strftime("%Y-%m-%d %H:%M UTC") if report.observed else "",
        "narrative": report.narrative.text,
        "language": report.narrative.language,
        "contact": _flat(report.contact.model_dump(mode="json", exclude_none=True)),
        "evaluation": _evaluation(report),
        "itinerary": _itinerary(report),
        "persons": _persons_by_role(report),
        "groups": [
            {"key": key, "title": title, "items": _items(getattr(report, key))}
            for key, title in GROUPS
            if getattr(report, key)
        ],
        "statistics": json.dumps(
            report.statistics.model_dump(mode="json"), indent=1, ensure_ascii=False
        )
        if report.statistics is not None
        else None,
    }
    return view


def thread_view(
    report_id: str,
    messages: Iterable[Mapping[str, Any]],
    release_requests: Iterable[Mapping[str, Any]],
    releases: Iterable[str],
    retracted: str | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The report's thread, oldest first: requests and responses that refer to it, release
    requests about it, the releases sent and its retraction."""
    from ..requests import time_left

    out: list[dict[str, Any]] = []
    for m in messages:
        if report_id not in m.get("refs", []):
            continue
        out.append(
            {
                "what": m["kind"],
                "direction": m["direction"],
                "from": m["from"],
                "to": m["to"],
                "when_ms": m["received_ms"],
                "text": str(m.get("text", m.get("answer", ""))),
                "deadline": time_left(m.get("deadline_ms"), now) if m["kind"] == "request" else "",
                "answered": m.get("answered_by") is not None,
            }
        )
    for r in release_requests:
        if r["report"] == report_id:
            out.append(
                {
                    "what": "release request",
                    "direction": "received",
                    "from": r["requester"],
                    "to": r["target"],
                    "when_ms": r["received_ms"],
                    "text": f"{r['purpose']} ({r['state']})",
                    "deadline": "",
                    "answered": r["state"] != "pending",
                }
            )
    out.sort(key=lambda t: t["when_ms"])
    for t in out:
        t["when"] = fmt_ms(t.pop("when_ms"))
    out += [
        {"what": "release", "direction": "sent", "from": "", "to": "", "when": "", "text": rid,
         "deadline": "", "answered": True}
        for rid in releases
    ]  # fmt: skip
    if retracted is not None:
        out.append(
            {"what": "retraction", "direction": "", "from": "", "to": "", "when": "",
             "text": retracted, "deadline": "", "answered": True}
        )  # fmt: skip
    return out


def check_report_id(value: str) -> str:
    """A report id from a URL: a UUID's characters only, so nothing else reaches a query."""
    if not (0 < len(value) <= 64) or any(c not in "0123456789abcdef-" for c in value):
        raise InputError("not a report id")
    return value
