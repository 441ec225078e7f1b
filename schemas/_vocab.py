"""Controlled vocabularies that appear in the signed envelope header and in NATS subjects.

Values are subject-safe slugs (ASCII, no '.', '*' or '>'), so a header value can be placed in a
subject token as it is. Report-body vocabularies live in ``_report_vocab``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Category", "Classification", "Kind", "Priority", "Route", "Tlp"]


class Kind(StrEnum):
    """What an envelope carries (DESIGN.md, "Envelope v1")."""

    ALERT = "alert"
    REPORT = "report"
    REQUEST = "request"
    RESPONSE = "response"
    RECEIPT = "receipt"
    RELEASE_REQUEST = "release-request"
    RELEASE = "release"
    RETRACTION = "retraction"
    STATISTICS = "statistics"


class Priority(StrEnum):
    """Urgent traffic is surfaced first at every hop (timeliness, 004 p.8(g))."""

    URGENT = "urgent"
    ROUTINE = "routine"


class Category(StrEnum):
    """The information categories of Smuggling of Migrants Protocol art. 10(1)(a)-(f)."""

    ROUTES = "routes"
    """(a) embarkation and destination points, routes, carriers and means of transport."""
    GROUPS = "groups"
    """(b) identity and methods of organizations or organized criminal groups."""
    DOCUMENTS = "documents"
    """(c) authenticity and proper form of travel documents; theft or misuse of blank documents."""
    CONCEALMENT = "concealment"
    """(d) means and methods of concealment and transportation; misuse of documents, detection."""
    LEGISLATION = "legislation"
    """(e) legislative experiences and practices and measures to prevent and combat."""
    SCITECH = "scitech"
    """(f) scientific and technological information useful to law enforcement."""


class Route(StrEnum):
    """Named migrant-smuggling routes used as topics (UNODC and Frontex usage).

    A report's detailed itinerary (ordered transit points) is in the report body; this is the
    coarse topic partners subscribe to.
    """

    CENTRAL_MED = "central-med"
    """North Africa (Libya, Tunisia) to Italy and Malta."""
    WESTERN_MED = "western-med"
    """Morocco and Algeria to Spain, including Ceuta and Melilla."""
    EASTERN_MED = "eastern-med"
    """Türkiye to Greece, Cyprus and Bulgaria."""
    WESTERN_AFRICAN_ATLANTIC = "western-african-atlantic"
    """West African coast to the Canary Islands."""
    WESTERN_BALKANS = "western-balkans"
    """Greece and Bulgaria through the Western Balkans to the Schengen area."""
    EASTERN_LAND_BORDERS = "eastern-land-borders"
    """Eastern land borders of the European Union."""
    CHANNEL = "channel"
    """Northern France and Belgium to the United Kingdom (small boats, lorries)."""
    SAHEL_NORTH_AFRICA = "sahel-north-africa"
    """West Africa through Niger, Mali and Chad towards Libya and Algeria."""
    HORN_GULF = "horn-gulf"
    """The Eastern Route: Horn of Africa through Yemen to the Gulf States."""
    HORN_SOUTHERN_AFRICA = "horn-southern-africa"
    """The Southern Route: Horn and East Africa to South Africa."""
    SOUTH_ASIA_EUROPE = "south-asia-europe"
    """South and Central Asia through Iran and Türkiye towards Europe."""
    SOUTHEAST_ASIA_PACIFIC = "southeast-asia-pacific"
    """South-East Asia by sea to Australia and New Zealand (Bali Process region)."""
    BAY_OF_BENGAL = "bay-of-bengal"
    """Bay of Bengal and Andaman Sea to Malaysia, Thailand and Indonesia."""
    AMERICAS_NORTH = "americas-north"
    """Central America and Mexico to the United States and Canada."""
    DARIEN = "darien"
    """South America through the Darién gap to Central America."""
    CARIBBEAN = "caribbean"
    """Island-hopping and sea routes in the Caribbean."""
    AIR = "air"
    """Air routes with fraudulent documents or via transit airports (004 p.13-15)."""
    OTHER = "other"
    """Any route not listed; describe it in the report's itinerary."""


class Tlp(StrEnum):
    """FIRST Traffic Light Protocol 2.0 dissemination labels."""

    CLEAR = "CLEAR"
    """No limit on disclosure (within Palermo: every federation member)."""
    GREEN = "GREEN"
    """The community (the federation), not public."""
    AMBER = "AMBER"
    """The recipient organisations and their clients, on a need-to-know basis."""
    AMBER_STRICT = "AMBER+STRICT"
    """The recipient organisation only."""
    RED = "RED"
    """The named recipients only."""


class Classification(StrEnum):
    """A report's protective marking, compared with each partner's accreditation."""

    UNCLASSIFIED = "unclassified"
    RESTRICTED = "restricted"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"  # noqa: S105 - a marking, not a password

    @property
    def rank(self) -> int:
        """Order of the markings: a partner accredited at rank r may receive ranks <= r."""
        return _CLASSIFICATION_RANK[self]


_CLASSIFICATION_RANK = {
    Classification.UNCLASSIFIED: 0,
    Classification.RESTRICTED: 1,
    Classification.CONFIDENTIAL: 2,
    Classification.SECRET: 3,
}
