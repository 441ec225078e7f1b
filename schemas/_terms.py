"""Controlled vocabularies of the report body (DOMAIN.md gives the seed paragraph of each)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AgeBand",
    "Certainty",
    "ConcealmentMethod",
    "CrimeAgainstMigrants",
    "DeathCause",
    "DocumentFraud",
    "DocumentType",
    "GroupStructure",
    "IdentifierKind",
    "LegalStatus",
    "PaymentMethod",
    "PersonRole",
    "ProtectionStatus",
    "Sex",
    "TransportMode",
]


class Certainty(StrEnum):
    """Protocol art. 10(1)(a): routes and carriers "known to be or suspected of being used"."""

    KNOWN = "known"
    SUSPECTED = "suspected"


class TransportMode(StrEnum):
    SEA_INFLATABLE = "sea-inflatable"
    SEA_WOODEN_BOAT = "sea-wooden-boat"
    SEA_FISHING_VESSEL = "sea-fishing-vessel"
    SEA_MERCHANT_VESSEL = "sea-merchant-vessel"
    SEA_SAILING_YACHT = "sea-sailing-yacht"
    SEA_SMALL_BOAT = "sea-small-boat"
    LAND_LORRY = "land-lorry"
    LAND_VAN = "land-van"
    LAND_CAR = "land-car"
    LAND_BUS = "land-bus"
    LAND_TRAIN = "land-train"
    LAND_ON_FOOT = "land-on-foot"
    AIR_COMMERCIAL = "air-commercial"
    AIR_CHARTER = "air-charter"
    OTHER = "other"


class DocumentType(StrEnum):
    PASSPORT = "passport"
    NATIONAL_ID = "national-id"
    VISA = "visa"
    RESIDENCE_PERMIT = "residence-permit"
    TRAVEL_DOCUMENT_REFUGEE = "refugee-travel-document"
    SEAMAN_BOOK = "seaman-book"
    BREEDER_DOCUMENT = "breeder-document"
    """Birth certificates and other documents used to obtain genuine ones (002 p.24)."""
    OTHER = "other"


class DocumentFraud(StrEnum):
    """Protocol art. 10(1)(c)-(d): authenticity, theft or misuse of documents."""

    COUNTERFEIT = "counterfeit"
    """Wholly false reproduction."""
    FORGED = "forged"
    """Genuine document altered."""
    FRAUDULENTLY_OBTAINED = "fraudulently-obtained"
    """Genuine document obtained by false statements, corruption or breeder documents."""
    IMPOSTOR = "impostor"
    """Genuine document used by someone other than its holder (look-alike)."""
    STOLEN_BLANK = "stolen-blank"
    """Blank genuine document stolen and then personalised."""
    GENUINE = "genuine"
    """Examined and found genuine (negative results are intelligence too)."""
    UNVERIFIED = "unverified"
    """iir/1.1: suspected, not yet examined."""
    VERIFICATION_REQUESTED = "verification-requested"
    """iir/1.1: the issuing State has been asked to verify it (a request to the issuer)."""


class ConcealmentMethod(StrEnum):
    """Protocol art. 10(1)(d): means and methods of concealment."""

    LORRY_CARGO = "lorry-cargo"
    LORRY_COMPARTMENT = "lorry-hidden-compartment"
    VEHICLE_COMPARTMENT = "vehicle-hidden-compartment"
    CONTAINER = "shipping-container"
    VESSEL_HOLD = "vessel-hold"
    FALSE_WALL = "false-wall"
    UNDER_CARGO = "under-cargo"
    AIRCRAFT_HOLD = "aircraft-hold"
    DOCUMENT_ONLY = "documents-only"
    """No physical concealment: travels openly on false or misused documents."""
    OTHER = "other"


class PersonRole(StrEnum):
    """Smuggler roles from 004 p.21 and 002 p.15; migrants are not the targets (Protocol art. 5)."""

    ORGANISER = "organiser"
    RECRUITER = "recruiter"
    ESCORT = "escort"
    BROKER = "broker"
    DRIVER = "driver"
    BOAT_PILOT = "boat-pilot"
    FACILITATOR = "facilitator"
    DOCUMENT_FORGER = "document-forger"
    FINANCIER = "financier"
    CORRUPT_OFFICIAL = "corrupt-official"
    SMUGGLED_MIGRANT = "smuggled-migrant"
    WITNESS = "witness"
    VICTIM = "victim"
    SPONSOR = "sponsor"
    """iir/1.1: a relative or contact who pays for a migrant's journey (002 p.17)."""

    @property
    def protected(self) -> bool:
        """Witnesses and victims are withheld unless released by name."""
        return self in (PersonRole.WITNESS, PersonRole.VICTIM)


class LegalStatus(StrEnum):
    """Persons "convicted of or suspected of" art. 6 offences (000 p.22(b))."""

    CONVICTED = "convicted"
    CHARGED = "charged"
    SUSPECTED = "suspected"
    NOT_APPLICABLE = "not-applicable"
    UNKNOWN = "unknown"
    ACQUITTED = "acquitted"
    """iir/1.1: tried and acquitted (a negative result is intelligence too)."""


class ProtectionStatus(StrEnum):
    """Persons the non-refoulement guard protects (003 p.51; 004 p.28)."""

    MIGRANT = "migrant"
    ASYLUM_SEEKER = "asylum-seeker"
    REFUGEE = "refugee"
    UNACCOMPANIED_MINOR = "unaccompanied-minor"
    NONE = "none"
    """Not a migrant (e.g. a smuggler): the guard does not apply."""


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class AgeBand(StrEnum):
    UNDER_14 = "0-13"
    MINOR = "14-17"
    YOUNG_ADULT = "18-24"
    ADULT = "25-49"
    OLDER = "50+"
    UNKNOWN = "unknown"


class GroupStructure(StrEnum):
    """002 p.14-16: from lone operators to organised groups selling "packages"."""

    LONE_OPERATOR = "lone-operator"
    LOOSE_NETWORK = "loose-network"
    ORGANISED_GROUP = "organised-group"
    UNKNOWN = "unknown"


class PaymentMethod(StrEnum):
    """001 p.29; 002 p.17, p.51."""

    CASH = "cash"
    BANK_TRANSFER = "bank-transfer"
    MONEY_TRANSFER = "money-transfer-service"
    HAWALA = "hawala"
    CRYPTOCURRENCY = "cryptocurrency"
    MOBILE_MONEY = "mobile-money"
    IN_KIND = "in-kind"
    UNKNOWN = "unknown"


class IdentifierKind(StrEnum):
    PHONE = "phone"
    MESSAGING_HANDLE = "messaging-handle"
    SOCIAL_MEDIA = "social-media"
    EMAIL = "email"
    CRYPTO_WALLET = "crypto-wallet"
    BANK_ACCOUNT = "bank-account"
    IBAN = "iban"
    WEBSITE = "website"


class DeathCause(StrEnum):
    """000 p.14-15; 002 p.30."""

    DROWNING = "drowning"
    HYPOTHERMIA = "hypothermia"
    VEHICLE_ACCIDENT = "vehicle-accident"
    DEHYDRATION = "dehydration"
    SUFFOCATION = "suffocation"
    SHOOTING = "shooting"
    VIOLENCE = "violence"
    ILLNESS = "illness"
    UNKNOWN = "unknown"


class CrimeAgainstMigrants(StrEnum):
    HOMICIDE = "homicide"
    ASSAULT = "assault"
    SEXUAL_VIOLENCE = "sexual-violence"
    KIDNAPPING = "kidnapping"
    EXTORTION = "extortion"
    ABANDONMENT = "abandonment"
    TRAFFICKING = "trafficking"
    OTHER = "other"
