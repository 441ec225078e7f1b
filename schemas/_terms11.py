"""Controlled vocabularies added by IIR 1.1 (docs/schema.md gives each term's definition and
source). Every value here is new in ``iir/1.1``: an ``iir/1`` report cannot use them."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Aggravation",
    "BorderType",
    "CountOf",
    "DetectionMethod",
    "EventKind",
    "EventStatus",
    "LossKind",
    "Offence",
    "PaymentCondition",
    "PersonRelationKind",
    "ProceedingStage",
    "SourceType",
]


class EventKind(StrEnum):
    """What happened, or is expected to happen, at a point of a smuggling venture."""

    DEPARTURE = "departure"
    ARRIVAL = "arrival"
    TRANSIT = "transit"
    BORDER_CROSSING = "border-crossing"
    """Crossing or attempting to cross a border, at or between border crossing points."""
    DETECTION = "detection"
    """Persons, documents or a concealment found by a check (method in ``detection_methods``)."""
    INTERCEPTION = "interception"
    """A craft or vehicle stopped by the authorities (Protocol art. 8 for vessels)."""
    RESCUE = "rescue"
    """Search and rescue at sea or on land (Protocol art. 16; 000 p.14)."""
    DISEMBARKATION = "disembarkation"
    APPREHENSION = "apprehension"
    """Smugglers or facilitators taken into custody."""
    REFUSAL_OF_ENTRY = "refusal-of-entry"
    BOARDING = "boarding"
    """Boarding a flight, vessel or vehicle (air routes: check-in and gate, 004 p.13-15)."""
    MEETING = "meeting"
    """A meeting between smugglers, or with migrants (recruitment, hand-over)."""
    HAND_OVER = "hand-over"
    """Migrants passed from one smuggler or group to another (002 p.15)."""
    PREPARATION = "preparation"
    """Preparing or staging a boat, vehicle or group before a departure (002 p.15)."""
    SEIZURE = "seizure"
    """Boats, vehicles, documents or money seized by the authorities."""
    OTHER = "other"


class PersonRelationKind(StrEnum):
    """How one person of a report relates to another (``from_ref`` → ``to_ref``)."""

    IDENTIFIED = "identified"
    """``from_ref`` identified ``to_ref`` (e.g. a witness picking out a suspect)."""
    RELATIVE = "relative-of"
    RECRUITED = "recruited"
    """``from_ref`` recruited ``to_ref`` (as a migrant or into the group; 002 p.15)."""
    WORKS_FOR = "works-for"
    ASSOCIATE = "associate-of"
    TRAVELLED_WITH = "travelled-with"
    GUARDIAN = "guardian-of"
    """``from_ref`` is responsible for ``to_ref``, a minor (003 p.48)."""


class PaymentCondition(StrEnum):
    """When smugglers are paid (002 p.17: guarantee systems, "pay on arrival")."""

    UPFRONT = "upfront"
    INSTALMENTS = "in-instalments"
    ON_ARRIVAL = "on-arrival"
    """Held by a guarantor (hawaladar, shop) and released when the migrant arrives."""
    DEBT = "debt"
    """Paid later out of the migrant's work: a sign of exploitation."""


class EventStatus(StrEnum):
    """Whether an event was seen, is expected or planned, or is only reported."""

    OBSERVED = "observed"
    """Seen by the originator's own staff or sensors."""
    REPORTED = "reported"
    """Told to the originator (by a source, a partner), not observed by it."""
    EXPECTED = "expected"
    """Expected to happen (e.g. a departure "tonight"), on the originator's assessment."""
    PLANNED = "planned"
    """Planned by the smugglers, on information about their plans."""


class CountOf(StrEnum):
    """What a count of persons counts (distinct from a vessel's capacity)."""

    ABOARD = "aboard"
    DETECTED = "detected"
    INTERCEPTED = "intercepted"
    RESCUED = "rescued"
    DISEMBARKED = "disembarked"
    APPREHENDED = "apprehended"
    REFUSED_ENTRY = "refused-entry"
    DEAD = "dead"
    MISSING = "missing"


class DetectionMethod(StrEnum):
    """How persons, documents or concealments were detected (Protocol art. 10(1)(d), "ways of
    detecting them"; art. 11 border measures; 002 p.24 document examination)."""

    CO2_PROBE = "co2-probe"
    """Carbon dioxide measured inside a closed load space."""
    HEARTBEAT_DETECTOR = "heartbeat-detector"
    """Vibration sensors on a vehicle that pick up heartbeats."""
    SCANNER = "x-ray-scanner"
    """X-ray or gamma-ray imaging of a vehicle, container or luggage."""
    THERMAL_CAMERA = "thermal-camera"
    CANINE = "canine"
    """Detection dogs."""
    PHYSICAL_SEARCH = "physical-search"
    DOCUMENT_EXAMINATION = "document-examination-equipment"
    """UV and IR light, magnification, document readers at first or second line."""
    BIOMETRIC_CHECK = "biometric-check"
    """Face or fingerprint comparison against the document or a database."""
    DATABASE_CHECK = "database-check"
    """A hit in a database of lost and stolen documents or of wanted persons (000 p.22(b))."""
    RISK_PROFILE = "risk-profile"
    """Selected by a risk profile or passenger data analysis (004 p.13-15)."""
    AERIAL_SURVEILLANCE = "aerial-surveillance"
    MARITIME_PATROL = "maritime-patrol"
    RADAR = "radar"
    INTERVIEW = "interview"
    TIP_OFF = "tip-off"
    OTHER = "other"


class BorderType(StrEnum):
    """The kind of border where something happened (regional risk-analysis practice)."""

    SEA = "sea"
    LAND = "land"
    AIR = "air"


class SourceType(StrEnum):
    """Where the information came from, next to its evaluation code (002 p.34; 004 p.12)."""

    LIAISON_OFFICER = "liaison-officer"
    """An immigration or police liaison officer posted abroad (004 p.16-20)."""
    DEBRIEF = "debrief-interview"
    """A debriefing or interview of migrants or witnesses (000 p.11)."""
    INFORMANT = "informant"
    """A human source managed by the originator."""
    OPEN_SOURCE = "open-source"
    """Published or publicly available material, including social media (002 p.17)."""
    TECHNICAL = "technical"
    """Sensors, surveillance, intercepted communications."""
    DOCUMENT_EXAMINATION = "document-examination"
    """Forensic examination of travel or identity documents."""
    FINANCIAL = "financial"
    """Financial intelligence: transactions, suspicious transaction reports (001 p.17)."""
    OPERATIONAL = "operational"
    """The originator's own border checks, patrols and investigations."""
    PARTNER = "partner-agency"
    """Another agency, which remains the owner of the information (004 p.12(c))."""


class LossKind(StrEnum):
    """Protocol art. 10(1)(c): "the theft or related misuse of blank travel or identity
    documents"; 000 p.22(b) lost or stolen documents."""

    THEFT = "theft"
    LOSS = "loss"


class ProceedingStage(StrEnum):
    """How far criminal proceedings against a person have gone (000 p.22(b) "convicted of or
    suspected of")."""

    CHARGED = "charged"
    CONVICTED = "convicted"
    ACQUITTED = "acquitted"


class Offence(StrEnum):
    """Offences established under Protocol art. 6 and the Convention."""

    SMUGGLING = "smuggling-of-migrants"
    """Protocol art. 6(1)(a): procuring illegal entry for a financial or other material benefit."""
    PRODUCING_DOCUMENT = "producing-fraudulent-document"
    """Protocol art. 6(1)(b)(i): producing a fraudulent travel or identity document."""
    PROVIDING_DOCUMENT = "providing-fraudulent-document"
    """Protocol art. 6(1)(b)(ii): procuring, providing or possessing such a document."""
    ENABLING_STAY = "enabling-illegal-stay"
    """Protocol art. 6(1)(c): enabling a person to remain without meeting the requirements."""
    ATTEMPT = "attempt"
    """Protocol art. 6(2)(a): attempting an offence of art. 6(1)."""
    ACCOMPLICE = "participation-as-accomplice"
    """Protocol art. 6(2)(b): participating as an accomplice."""
    ORGANISING = "organizing-or-directing"
    """Protocol art. 6(2)(c): organizing or directing others to commit an offence of art. 6(1)."""
    ORGANISED_GROUP = "participation-in-organized-criminal-group"
    """Convention art. 5."""
    LAUNDERING = "money-laundering"
    """Convention art. 6."""
    CORRUPTION = "corruption"
    """Convention art. 8."""
    OBSTRUCTION = "obstruction-of-justice"
    """Convention art. 23."""
    ILLEGAL_ENTRY = "illegal-entry"
    """An offence of national law only. Protocol art. 5: a migrant is not liable under the
    Protocol for having been smuggled; record it when a court applied national law."""
    TRAFFICKING = "trafficking-in-persons"
    """Trafficking in Persons Protocol art. 5."""
    OTHER = "other"


class Aggravation(StrEnum):
    """Protocol art. 6(3): circumstances that States make aggravating."""

    ENDANGERING_LIFE = "endangering-life-or-safety"
    """Art. 6(3)(a): endangering, or likely to endanger, the lives or safety of the migrants."""
    INHUMAN_TREATMENT = "inhuman-or-degrading-treatment"
    """Art. 6(3)(b): inhuman or degrading treatment, including exploitation, of the migrants."""
