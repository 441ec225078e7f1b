"""Markings shared by the STIX and MISP mappings: the official TLP 2.0 marking definitions, the
Palermo extension-definition and section markings, and the one comparison every import uses,
"is this handling wider than that one?".

The TLP 2.0 marking definitions are the OASIS ones (cti-stix-common-objects,
``extension-definition-specifications/tlp-2.0``): fixed ids, created 2022-10-01, each a
``property-extension`` of ``extension-definition--60a3c5c5-...``. Partners' tools recognise TLP
by these ids, so they are written out exactly, never generated.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

import stix2

from schemas import ALL_MEMBERS, ActionCode, Handling, Tlp

__all__ = [
    "PALERMO_EXTENSION_ID",
    "PALERMO_IDENTITY_ID",
    "PALERMO_NAMESPACE",
    "PALERMO_SCHEMA_URL",
    "SECTION_MARKING_IDS",
    "TLP1_MARKING_IDS",
    "TLP2_EXTENSION_ID",
    "TLP2_MARKING_IDS",
    "TLP_RANK",
    "palermo_objects",
    "section_marking",
    "tlp_marking",
    "wider",
]

TLP2_EXTENSION_ID: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_MARKING_IDS: Final[dict[Tlp, str]] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1_MARKING_IDS: Final[dict[str, Tlp]] = {
    # The STIX 2.1 spec's TLP 1.0 constants, read on import only (FIRST's 1.0 -> 2.0 guidance:
    # WHITE became CLEAR; the other colours kept their meaning). Export writes TLP 2.0 only.
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": Tlp.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": Tlp.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": Tlp.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": Tlp.RED,
}
TLP_RANK: Final[dict[Tlp, int]] = {
    Tlp.CLEAR: 0,
    Tlp.GREEN: 1,
    Tlp.AMBER: 2,
    Tlp.AMBER_STRICT: 3,
    Tlp.RED: 4,
}

PALERMO_SCHEMA_URL: Final = "https://palermo.invalid/schemas/stix/palermo-handling.schema.json"
"""Names (does not locate: ``.invalid``) the JSON schema shipped as
``schemas/stix/palermo-handling.schema.json``; a node's TAXII server also serves it."""
PALERMO_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, PALERMO_SCHEMA_URL)
"""UUIDv5 namespace of every id Palermo derives (objects, markings, MISP uuids)."""
PALERMO_IDENTITY_ID: Final = f"identity--{uuid.uuid5(PALERMO_NAMESPACE, 'palermo')}"
PALERMO_EXTENSION_ID: Final = (
    f"extension-definition--{uuid.uuid5(PALERMO_NAMESPACE, 'palermo-handling/1')}"
)
SECTION_MARKING_IDS: Final[dict[str, str]] = {
    section: f"marking-definition--{uuid.uuid5(PALERMO_NAMESPACE, f'section/{section}')}"
    for section in ("personal-data", "protected-persons")
}
_FIXED_CREATED: Final = "2026-12-01T00:00:00.000Z"
"""When the Palermo definitions were first published: fixed, so re-exports do not fork them."""


def tlp_marking(tlp: Tlp) -> stix2.MarkingDefinition:
    """The official TLP 2.0 marking-definition object for ``tlp``."""
    return stix2.MarkingDefinition(
        id=TLP2_MARKING_IDS[tlp],
        created="2022-10-01T00:00:00.000Z",
        name=f"TLP:{tlp.value}",
        extensions={
            TLP2_EXTENSION_ID: {
                "extension_type": "property-extension",
                "tlp_2_0": tlp.value.lower(),
            }
        },
    )


def section_marking(section: str) -> stix2.MarkingDefinition:
    """The marking applied (granularly) to the properties that came from a sealed section."""
    return stix2.MarkingDefinition(
        id=SECTION_MARKING_IDS[section],
        created=_FIXED_CREATED,
        created_by_ref=PALERMO_IDENTITY_ID,
        name=f"Palermo sealed section: {section}",
        extensions={
            PALERMO_EXTENSION_ID: {"extension_type": "property-extension", "section": section}
        },
    )


def palermo_objects() -> list[Any]:
    """The Palermo identity and extension-definition every exported bundle carries."""
    identity = stix2.Identity(
        id=PALERMO_IDENTITY_ID,
        created=_FIXED_CREATED,
        modified=_FIXED_CREATED,
        name="Palermo federation",
        identity_class="system",
        description="Defines the Palermo handling extension and sealed-section markings.",
    )
    extension = stix2.ExtensionDefinition(
        id=PALERMO_EXTENSION_ID,
        created=_FIXED_CREATED,
        modified=_FIXED_CREATED,
        created_by_ref=PALERMO_IDENTITY_ID,
        name="palermo-handling",
        description=(
            "The originator's Palermo handling block (SIENA H-codes, action code, rel_to, "
            "deny_to, expiry, classification), the personal-data flags and the IIR item an "
            "object was made from. A recipient must honour it as the originator's restrictions."
        ),
        schema=PALERMO_SCHEMA_URL,
        version="1.0.0",
        extension_types=["property-extension"],
    )
    return [identity, extension]


def _reach(h: Handling) -> frozenset[str] | None:
    """Who may receive: None for every member, else the rel_to entries (empty: nobody)."""
    if list(h.rel_to) == [ALL_MEMBERS]:
        return None
    if not h.rel_to:
        return None if h.tlp in (Tlp.CLEAR, Tlp.GREEN) else frozenset()
    return frozenset(h.rel_to)


def wider(new: Handling, old: Handling) -> list[str]:
    """Each way in which ``new`` would allow more than ``old`` (empty: never wider).

    Sets are compared by their entries (a group is not expanded to its members), which can only
    call a handling wider when it is not: the safe side for an import.
    """
    out = []
    if TLP_RANK[new.tlp] < TLP_RANK[old.tlp]:
        out.append(f"TLP:{new.tlp.value} is wider than TLP:{old.tlp.value}")
    old_reach, new_reach = _reach(old), _reach(new)
    if old_reach is not None and (new_reach is None or not new_reach <= old_reach):
        out.append("rel_to reaches agencies or groups the original did not")
    if not set(old.deny_to) <= set(new.deny_to):
        out.append(f"deny_to loses {', '.join(sorted(set(old.deny_to) - set(new.deny_to)))}")
    if old.h0 and not new.h0:
        out.append("H0 (crime prevention only) is lost")
    if new.judicial_use and not old.judicial_use:
        out.append("H1 is lost (judicial use permitted)")
    if old.h2 and not new.h2:
        out.append("H2 (no dissemination without permission) is lost")
    if not set(old.h3) <= set(new.h3):
        out.append("an H3 restriction is lost")
    if new.action != old.action and new.action is not ActionCode.A1:
        out.append(f"action code {old.action} becomes {new.action}")
    if new.classification.rank < old.classification.rank:
        out.append(f"classification {old.classification} lowered to {new.classification}")
    if old.not_before is not None and (new.not_before is None or new.not_before < old.not_before):
        out.append("the embargo (not_before) is shortened or lost")
    if old.expires is not None and (new.expires is None or new.expires > old.expires):
        out.append("the expiry is extended or lost")
    old_override = old.non_refoulement_override
    new_override = new.non_refoulement_override
    if new_override is not None and (
        old_override is None or not set(new_override.agencies) <= set(old_override.agencies)
    ):
        out.append("a non-refoulement override reaches agencies the original did not")
    if not set(new.protected_released_to) <= set(old.protected_released_to):
        out.append("protected persons are released to agencies the original did not name")
    return out
