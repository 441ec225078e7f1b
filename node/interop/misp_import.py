"""A MISP event as an IIR draft, refused whole when its markings cannot be carried exactly.

The handling is the TLP tag, narrowed by the distribution, and the ``palermo-handling``
attribute when the event came from Palermo, which must then agree with every tag and with the
distribution :func:`node.interop.misp.distribution` gives it. Attributes may not carry markings
of their own (a TLP, a distribution other than "inherit event"): Palermo holds one handling per
report. Decision 0029 lists each case.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError
from pymisp import MISPEvent

from schemas import PERSONAL_DATA, PROTECTED_PERSONS, Handling, Tlp, join, parse_report
from schemas.errors import InputError

from .drafts import Defaults, Draft
from .errors import MarkingsUnmappable, Problem
from .misp import (
    _DISTRIBUTION_NAMES,
    _KIND_BY_TYPE,
    _TLP_TAGS,
    HANDLING_COMMENT,
    INHERIT,
    ORGANISATION_ONLY,
    PART_COMMENTS,
    REPORT_ID_COMMENT,
    SHARING_GROUP,
    _tags,
    distribution,
)

__all__ = ["import_event"]

_MARKING_NAMESPACES: Final = ("tlp:", "pap:", "palermo:")
_PALERMO_COMMENTS: Final = frozenset({HANDLING_COMMENT, REPORT_ID_COMMENT, *PART_COMMENTS.values()})
"""The attributes only a Palermo export writes: any of them makes an event Palermo's."""
MAX_EVENT_BYTES: Final[int] = 64 * 1024 * 1024
"""The largest MISP event (JSON) an import reads: an IIR is far smaller (its narrative is
capped), and PyMISP holds the whole event in memory several times over."""


def _load(event: MISPEvent | Mapping[str, Any] | str) -> MISPEvent:
    if isinstance(event, MISPEvent):
        loaded = event
    else:
        if isinstance(event, str) and len(event) > MAX_EVENT_BYTES:
            raise InputError(
                f"the MISP event is {len(event)} bytes, more than the {MAX_EVENT_BYTES} an "
                "import reads: split it into one event per report"
            )
        loaded = MISPEvent()
        try:
            # A deep copy: PyMISP pops keys out of the nested objects it is given.
            loaded.load(copy.deepcopy(dict(event)) if isinstance(event, Mapping) else event)
        except Exception as exc:  # PyMISP raises many unrelated types for bad input
            raise InputError(f"not a MISP event: {exc}") from exc
    # The uuid names the draft's file: anything but a UUID could name a path elsewhere.
    try:
        uuid.UUID(str(loaded.get("uuid", "")))
    except ValueError:
        raise InputError(
            f"not a MISP event: its uuid {str(loaded.get('uuid', ''))[:60]!r} is not a UUID"
        ) from None
    if loaded.get("distribution") is None:
        raise InputError("not a MISP event: it has no distribution (0-4)")
    attributes = [*loaded.attributes, *(a for o in loaded.objects for a in o.attributes)]
    tags = [*loaded.tags, *(t for a in attributes for t in getattr(a, "tags", []))]
    if not all(isinstance(getattr(t, "name", None), str) for t in tags):
        raise InputError("not a MISP event: every Tag needs a name (a string such as tlp:amber)")
    return loaded


class _Checker:
    def __init__(self, event: MISPEvent) -> None:
        self.event = event
        self.eid = f"event {event.get('uuid', '?')}"
        self.problems: list[Problem] = []

    def problem(self, where: str, why: str) -> None:
        self.problems.append((where, why))

    def tlp(self) -> Tlp | None:
        names = [t.name for t in self.event.tags]
        tlps = {n.lower() for n in names if n.lower().startswith("tlp:")}
        unknown = sorted(t for t in tlps if t not in _TLP_TAGS)
        if unknown:
            self.problem(self.eid, f"unknown TLP tag(s) {', '.join(unknown)}")
        known = {_TLP_TAGS[t] for t in tlps if t in _TLP_TAGS}
        if len(known) > 1:
            colours = ", ".join(sorted(f"TLP:{t.value}" for t in known))
            self.problem(self.eid, f"contradictory TLP tags ({colours}): exactly one is allowed")
        elif not tlps:
            self.problem(self.eid, "no TLP tag: Palermo needs the originator's TLP")
        elif len(known) == 1 and not unknown:
            return known.pop()
        return None

    def attributes(self) -> None:
        """No attribute may carry a marking of its own."""
        event_distribution = int(self.event.distribution)
        parts = [*self.event.objects, *self.event.attributes]
        parts += [a for o in self.event.objects for a in o.attributes]
        for attr in parts:
            where = f"attribute {attr.get('uuid', '?')}"
            given = attr.get("distribution")
            own = INHERIT if given is None else int(given)
            if own not in (INHERIT, event_distribution):
                self.problem(
                    where,
                    f"its own distribution ({_DISTRIBUTION_NAMES.get(own, own)}): Palermo holds "
                    "one handling per report",
                )
            for tag in getattr(attr, "tags", []):
                if tag.name.lower().startswith(("tlp:", "pap:")):
                    self.problem(where, f"its own {tag.name} tag: Palermo holds one per report")

    def handling(self, tlp: Tlp) -> dict[str, Any] | None:
        event = self.event
        given = int(event.distribution)
        block = _text(event, HANDLING_COMMENT)
        if block is None:
            palermo_tags = [t.name for t in event.tags if t.name.lower().startswith("palermo:")]
            ours = [a for a in event.attributes if _ours(a)]
            if palermo_tags or ours:
                self.problem(
                    self.eid,
                    "came from Palermo but its palermo-handling attribute was removed: its TLP "
                    "tag alone could be wider than the originator's handling",
                )
                return None
            return self._foreign(tlp, given)
        try:
            data = json.loads(block)
            handling = Handling.model_validate(data)
        except (ValueError, ValidationError) as exc:
            self.problem(self.eid, f"the palermo-handling attribute is not a handling block: {exc}")
            return None
        if handling.tlp is not tlp:
            self.problem(
                self.eid,
                f"contradictory TLP: the tag says TLP:{tlp.value}, the palermo-handling "
                f"attribute TLP:{handling.tlp.value}",
            )
            return None
        expected, members = distribution(handling)
        if given != expected:
            self.problem(
                self.eid,
                f"distribution '{_DISTRIBUTION_NAMES.get(given, given)}' cannot be mapped: the "
                f"handling ({' '.join(handling.codes())}, rel_to {list(handling.rel_to) or '[]'}) "
                f"gives '{_DISTRIBUTION_NAMES[expected]}'",
            )
        elif given == SHARING_GROUP:
            orgs = _sharing_group_orgs(event)
            if orgs != members:
                self.problem(
                    self.eid, f"sharing group {orgs} is not the handling's rel_to {members}"
                )
        return data if isinstance(data, dict) else None

    def _foreign(self, tlp: Tlp, given: int) -> dict[str, Any] | None:
        """Another tool's event: its TLP, made stricter by a narrow distribution."""
        if given == SHARING_GROUP:
            self.problem(
                self.eid,
                "a MISP sharing group names MISP organisations, not Palermo agencies: set the "
                "report's rel_to in Palermo and export it from there",
            )
            return None
        if given not in _DISTRIBUTION_NAMES or given == INHERIT:
            self.problem(self.eid, f"distribution {given} is not an event distribution")
            return None
        # Organisation only: onward dissemination needs the originator's permission (H2).
        return {"tlp": tlp.value} | ({"h2": True} if given == ORGANISATION_ONLY else {})

    def tags(self, report_handling: Handling, data: Mapping[str, Any]) -> None:
        """The readable palermo:/PAP tags must say what the handling attribute says."""
        from .misp import pap

        have = {t.name for t in self.event.tags if t.name.lower().startswith(("palermo:", "pap:"))}
        have.discard("palermo:retracted")
        report = parse_report(data)
        want = {t for t in _tags(report_handling, report, False) if not t.startswith("tlp:")}
        if have and have != want:
            extra, lost = sorted(have - want), sorted(want - have)
            self.problem(self.eid, f"tags contradict the handling (extra {extra}, missing {lost})")
        pap_tags = {t for t in have if t.lower().startswith("pap:")}
        if pap_tags and pap_tags != {pap(report_handling)}:
            self.problem(self.eid, f"PAP tag {sorted(pap_tags)} contradicts the action code")


def _ours(attr: Any) -> bool:
    """Whether an attribute is one only a Palermo export writes (by its comment)."""
    comment = attr.get("comment")
    return isinstance(comment, str) and comment in _PALERMO_COMMENTS


def _text(event: MISPEvent, comment: str) -> str | None:
    for attr in event.attributes:
        if attr.type == "text" and attr.get("comment") == comment:
            return str(attr.value)
    return None


def _sharing_group_orgs(event: MISPEvent) -> list[str]:
    group = getattr(event, "SharingGroup", None)
    if group is None:
        return []
    members = getattr(group, "SharingGroupOrg", None)
    if not isinstance(members, list):
        return []  # no organisations: never the rel_to of a sharing-group handling
    orgs = [o.Organisation for o in members if hasattr(o, "Organisation")]
    return sorted(str(getattr(org, "name", "")) for org in orgs)  # a nameless one never matches


def _report_data(checker: _Checker, defaults: Defaults) -> dict[str, Any] | None:
    event = checker.event
    main = _text(event, PART_COMMENTS["main"])
    if main is not None:
        parts = {}
        try:
            for section in (PERSONAL_DATA, PROTECTED_PERSONS):
                text = _text(event, PART_COMMENTS[section])
                parts[section] = None if text is None else json.loads(text)
            report = join(json.loads(main), parts[PERSONAL_DATA], parts[PROTECTED_PERSONS])
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            checker.problem(checker.eid, f"the palermo-iir attributes do not make a report: {exc}")
            return None
        return report.to_wire()
    missing = defaults.missing()
    if missing:
        checker.problem(
            checker.eid,
            f"not from Palermo, so the IIR's {', '.join(missing)} must be given "
            "(--originator, --category, --route)",
        )
        return None
    texts = [str(a.value) for a in event.attributes if a.type == "text"]
    identifiers = [
        {"kind": _KIND_BY_TYPE[a.type], "value": str(a.value)[:200]}
        for a in event.attributes
        if a.type in _KIND_BY_TYPE
    ]
    actors = [str(a.value) for a in event.attributes if a.type == "threat-actor"]
    data: dict[str, Any] = {
        "originator": defaults.originator,
        "category": defaults.category,
        "route": defaults.route,
        "title": str(event.info)[:200],
        "narrative": {"language": "en", "text": "\n\n".join(texts) or str(event.info)},
        "contact": {"unit": f"{defaults.contact_unit} from MISP", "channel": "misp"},
        "identifiers": identifiers,
    }
    if actors:
        data["groups"] = [{"ref": "x1", "names": actors[:20]}]
    return data


def import_event(
    event: MISPEvent | Mapping[str, Any] | str, *, defaults: Defaults | None = None
) -> Draft:
    """The event as an IIR draft; raises :class:`MarkingsUnmappable` listing each problem."""
    loaded = _load(event)
    checker = _Checker(loaded)
    if any(t.name.lower() == "palermo:retracted" for t in loaded.tags):
        checker.problem(checker.eid, "retracted by its originator: there is nothing to import")
        raise MarkingsUnmappable(checker.problems)
    # A retraction deletes every attribute and tags the event; a tag removal that did not sync
    # (or was made on purpose) must not bring the report back: a deleted Palermo attribute is
    # a retraction too.
    deleted = [a for a in loaded.attributes if _ours(a) and getattr(a, "deleted", False)]
    if deleted:
        for attr in deleted:
            checker.problem(
                f"attribute {attr.get('uuid', '?')}",
                f"its {attr.get('comment')} attribute is deleted: the report was retracted "
                "(or withdrawn in MISP), there is nothing to import",
            )
        raise MarkingsUnmappable(checker.problems)
    checker.attributes()
    tlp = checker.tlp()
    handling = None if tlp is None else checker.handling(tlp)
    data = _report_data(checker, defaults or Defaults())
    if handling is None or data is None:
        raise MarkingsUnmappable(checker.problems or [(checker.eid, "no handling")])
    data = data | {"handling": handling}
    try:
        report = parse_report(data)
    except InputError as exc:
        checker.problem(checker.eid, f"does not make a valid IIR: {exc.reason}")
        raise MarkingsUnmappable(checker.problems) from exc
    if _text(loaded, HANDLING_COMMENT) is not None:
        checker.tags(report.handling, data)
    if checker.problems:
        raise MarkingsUnmappable(checker.problems)
    return Draft(report, str(loaded.uuid), _text(loaded, REPORT_ID_COMMENT))
