"""Interoperability with threat-intelligence tools (issue 18): STIX 2.1 export and import, MISP
events offline, and the markings both share. Pure mapping: no I/O, no NATS; the CLI
(``node/cli/_stix.py``, ``_misp.py``) and the node's TAXII server read and write around it.

The rule everywhere: a handling code is never lost or widened by an export or an import, and
what cannot be mapped is refused with a reason per object (:class:`MarkingsUnmappable`).
"""

from __future__ import annotations

from .drafts import Defaults, Draft
from .errors import MarkingsUnmappable
from .markings import PALERMO_EXTENSION_ID, PALERMO_SCHEMA_URL, TLP2_MARKING_IDS, wider
from .misp import distribution, export_event
from .misp_import import import_event
from .stix_export import agency_identity_id, export_bundle, file_report_id, object_id
from .stix_import import import_bundle

__all__ = [
    "PALERMO_EXTENSION_ID",
    "PALERMO_SCHEMA_URL",
    "TLP2_MARKING_IDS",
    "Defaults",
    "Draft",
    "MarkingsUnmappable",
    "agency_identity_id",
    "distribution",
    "export_bundle",
    "export_event",
    "file_report_id",
    "import_bundle",
    "import_event",
    "object_id",
    "wider",
]
