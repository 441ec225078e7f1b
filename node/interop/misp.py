"""An IIR as a MISP event and back, offline, through PyMISP's object model (issue 18).

The handling travels three ways at once, so that a MISP instance enforces what it can and
Palermo gets back exactly what it sent: the MISP taxonomy tags (exactly one ``tlp:``, one
``PAP:``), the event's distribution and sharing group (the rule in :func:`distribution`,
decision 0029), and the whole handling block as a ``palermo-handling`` text attribute, with a
``palermo:`` machine tag per code for people reading the event. The report itself travels as its
sealing parts (body, personal-data, protected-persons: :func:`schemas.partition`), each a text
attribute tagged with its section, plus MISP attributes for what MISP users search (identifiers,
group names, places).

Import refuses, per event or attribute, anything Palermo cannot carry exactly: no or two TLP
tags, an attribute with its own TLP or distribution, a distribution the handling does not give
(``all communities`` for a report restricted to named agencies), contradictory tags.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, Final

import pycountry
from pymisp import MISPEvent, MISPObject, MISPSharingGroup

from schemas import (
    ALL_MEMBERS,
    PERSONAL_DATA,
    PROTECTED_PERSONS,
    ActionCode,
    Handling,
    Priority,
    Report,
    Tlp,
    join,
    partition,
)
from schemas.errors import InputError

from ._sections import section_map
from .markings import PALERMO_NAMESPACE

__all__ = [
    "HANDLING_COMMENT",
    "PART_COMMENTS",
    "REPORT_ID_COMMENT",
    "distribution",
    "export_event",
    "pap",
]

ORGANISATION_ONLY: Final = 0
THIS_COMMUNITY: Final = 1
CONNECTED: Final = 2
ALL_COMMUNITIES: Final = 3
SHARING_GROUP: Final = 4
INHERIT: Final = 5
_DISTRIBUTION_NAMES: Final = {
    0: "your organisation only",
    1: "this community only",
    2: "connected communities",
    3: "all communities",
    4: "sharing group",
    5: "inherit event",
}
HANDLING_COMMENT: Final = "palermo-handling"
REPORT_ID_COMMENT: Final = "palermo-report-id"
PART_COMMENTS: Final = {
    "main": "palermo-iir",
    PERSONAL_DATA: f"palermo-iir:{PERSONAL_DATA}",
    PROTECTED_PERSONS: f"palermo-iir:{PROTECTED_PERSONS}",
}
_PAP: Final[dict[ActionCode | None, str]] = {
    # PAP says what the recipient may do with the information; the action code says the same
    # for direct action. A1 (no action without permission) leaves only passive use: PAP:RED.
    ActionCode.A1: "PAP:RED",
    ActionCode.A2: "PAP:AMBER",
    ActionCode.A3: "PAP:GREEN",
    None: "PAP:CLEAR",
}
_TLP_TAGS: Final[dict[str, Tlp]] = {f"tlp:{t.value.lower()}": t for t in Tlp} | {
    "tlp:white": Tlp.CLEAR  # TLP 1.0's WHITE became CLEAR in 2.0
}
_IDENTIFIER_TYPES: Final[dict[str, str]] = {
    "phone": "phone-number",
    "email": "email",
    "website": "url",
    "iban": "iban",
    "bank-account": "bank-account-nr",
    "messaging-handle": "text",
    "social-media": "text",
    "crypto-wallet": "text",
}
REVOKED_TEXT: Final = "revoked"
_REVOKED_VALUES: Final[dict[str, str]] = {
    # A retracted report's attributes keep their uuids (so MISP deletes them) but not their
    # values: placeholders a MISP instance accepts for each type.
    "email": "revoked@palermo.invalid",
    "url": "https://palermo.invalid/revoked",
}
_KIND_BY_TYPE: Final[dict[str, str]] = {
    "phone-number": "phone",
    "email": "email",
    "email-src": "email",
    "url": "website",
    "iban": "iban",
    "bank-account-nr": "bank-account",
    "btc": "crypto-wallet",
}


def pap(handling: Handling) -> str:
    """The one PAP tag of a handling block."""
    return _PAP[handling.action]


def distribution(handling: Handling) -> tuple[int, list[str]]:
    """The MISP distribution a handling block allows, and the sharing group's members.

    The rule (decision 0029): never beyond the agency (``your organisation only``) under H2,
    TLP:AMBER+STRICT or TLP:RED, with a ``deny_to`` (MISP cannot exclude), an embargo
    (``not_before``: MISP cannot hold an event until a time), or with nobody in
    ``rel_to`` under TLP:AMBER; a sharing group of exactly the ``rel_to`` entries when they name
    agencies or groups; ``this community only`` (the federation's MISP community) for
    TLP:CLEAR and TLP:GREEN to every member. Never ``connected`` or ``all communities``: a MISP
    community beyond the federation is outside every Palermo handling.
    """
    if handling.onward_forbidden or handling.deny_to or handling.not_before is not None:
        # An embargo too: MISP cannot hold an event until a time, so shared with anyone it
        # would reach them before not_before (the rule must not depend on when it is asked).
        return ORGANISATION_ONLY, []
    if handling.rel_to and list(handling.rel_to) != [ALL_MEMBERS]:
        return SHARING_GROUP, list(handling.rel_to)
    if handling.tlp in (Tlp.CLEAR, Tlp.GREEN):
        return THIS_COMMUNITY, []
    return ORGANISATION_ONLY, []  # AMBER with an empty rel_to reaches nobody


def _tags(handling: Handling, report: Report, retracted: bool) -> list[str]:
    tags = [f"tlp:{handling.tlp.value.lower()}", pap(handling)]
    tags += [f'palermo:category="{report.category.value}"', f'palermo:route="{report.route.value}"']
    tags += [f"palermo:{code.lower()}" for code in handling.codes()[1:] if code[0] == "H"]
    if handling.action is not None:
        tags.append(f'palermo:action="{handling.action.value}"')
    tags += [f'palermo:rel-to="{entry}"' for entry in handling.rel_to]
    tags += [f'palermo:deny-to="{entry}"' for entry in handling.deny_to]
    tags.append(f'palermo:classification="{handling.classification.value}"')
    if handling.expires is not None:
        tags.append(f'palermo:expires="{handling.expires.isoformat()}"')
    if retracted:
        tags.append("palermo:retracted")
    return tags


def _uuid(report_id: str, role: str) -> str:
    return str(uuid.uuid5(PALERMO_NAMESPACE, f"{report_id}/misp/{role}"))


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def export_event(
    report: Report,
    *,
    report_id: str,
    created: datetime,
    modified: datetime,
    withhold: Collection[str] = (),
    retracted: bool = False,
) -> MISPEvent:
    """``report`` as a MISP event (arguments as :func:`node.interop.export_bundle`).

    Uuids are UUIDv5 from the report id, so a re-export updates the same event and attributes
    (newer ``timestamp``); a retraction exports every attribute and object as deleted, with
    placeholder values (the content is withdrawn, not sent again), and tags the event
    ``palermo:retracted``, so the deletion reaches the MISP side too.
    """
    sections = section_map(report, withhold)  # refuses an unknown section name
    parts = partition(report)
    bodies = {"main": parts.main}
    sealed = {PERSONAL_DATA: parts.personal_data, PROTECTED_PERSONS: parts.protected_persons}
    for sealed_id, body in sealed.items():
        if body is not None and sealed_id not in withhold:
            bodies[sealed_id] = body
    view = join(parts.main, bodies.get(PERSONAL_DATA), bodies.get(PROTECTED_PERSONS))
    handling = report.handling
    event = MISPEvent()
    event.uuid = _uuid(report_id, "event")
    event.info = f"revoked Palermo report {report_id}" if retracted else report.title
    event.date = (report.observed or created).date()
    event.timestamp = modified
    event.published = False
    event.analysis = 2
    event.threat_level_id = 1 if report.priority is Priority.URGENT else 2
    event.distribution, members = distribution(handling)
    if event.distribution == SHARING_GROUP:
        group = MISPSharingGroup()
        group.from_dict(
            name=f"palermo rel_to: {', '.join(members)}",
            uuid=str(uuid.uuid5(PALERMO_NAMESPACE, "sharing-group/" + "|".join(members))),
            SharingGroupOrg=[
                {"Organisation": {"name": m, "uuid": str(uuid.uuid5(PALERMO_NAMESPACE, m))}}
                for m in members
            ],
        )
        event.SharingGroup = group
    for tag in _tags(handling, report, retracted):
        event.add_tag(tag)

    def attribute(
        role: str, kind: str, value: str, comment: str, section: str | None = None
    ) -> None:
        if retracted and role not in ("handling", "report-id"):
            value = _REVOKED_VALUES.get(kind, REVOKED_TEXT)  # the content is withdrawn
        attr = event.add_attribute(
            kind,
            value,
            uuid=_uuid(report_id, role),
            comment=comment,
            to_ids=False,
            distribution=INHERIT,
            disable_correlation=kind == "text",
            timestamp=modified,
        )
        if isinstance(attr, list):  # PyMISP splits some composite values; ours are single
            raise InputError(f"MISP split the {role} value into {len(attr)} attributes")
        attr.deleted = retracted
        if section is not None:
            attr.add_tag(f'palermo:section="{section}"')

    block = handling.model_dump(mode="json", exclude_unset=True)
    attribute("handling", "text", _canonical(block), HANDLING_COMMENT)
    attribute("report-id", "text", report_id, REPORT_ID_COMMENT)
    for name, body in bodies.items():
        part_section = None if name == "main" else name
        attribute(f"part/{name}", "text", _canonical(body), PART_COMMENTS[name], part_section)
    attribute(
        "narrative", "text", report.narrative.text, f"narrative ({report.narrative.language})"
    )
    for index, ident in enumerate(report.identifiers):
        # Indexes of the whole report, so ids stay the same whatever is withheld.
        section = sections.items.get(("identifiers", index))
        if section in withhold:
            continue
        kind = _IDENTIFIER_TYPES[ident.kind.value]
        attribute(f"identifier/{index}", kind, ident.value, ident.kind.value, section)
    for actor in view.groups:
        for position, name in enumerate(actor.names):
            attribute(f"group/{actor.ref}/{position}", "threat-actor", name, f"group {actor.ref}")
    if view.itinerary is not None:
        for leg in ("embarkation", "transit", "destination"):
            for index, point in enumerate(getattr(view.itinerary, leg)):
                role = f"point/{leg}/{index}"
                obj = MISPObject("geolocation", standalone=False)
                obj.uuid = _uuid(report_id, role)
                obj.comment = leg
                obj.timestamp = modified
                country = pycountry.countries.get(alpha_3=point.country)
                values: dict[str, Any] = {
                    "countrycode": country.alpha_2 if country else point.country
                }
                if point.place:
                    values["city"] = REVOKED_TEXT if retracted else point.place
                if point.lat is not None and point.lon is not None:
                    values["latitude"] = 0 if retracted else point.lat
                    values["longitude"] = 0 if retracted else point.lon
                for relation, value in values.items():
                    # Uuids from the report id, as for the event's attributes: a re-export
                    # updates them, a retraction deletes them (random ones would pile up).
                    part = obj.add_attribute(
                        relation, value=value, uuid=_uuid(report_id, f"{role}/{relation}")
                    )
                    if part is not None:
                        part.deleted = retracted
                        part.timestamp = modified
                obj.deleted = retracted
                obj.distribution = INHERIT
                event.add_object(obj)
    return event
