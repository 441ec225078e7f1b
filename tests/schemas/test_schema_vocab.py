"""Controlled vocabularies: subject-safe values, the terms the seed papers name."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest

import schemas._terms as terms
from schemas import (
    Category,
    Classification,
    ConcealmentMethod,
    CrimeAgainstMigrants,
    DeathCause,
    DocumentFraud,
    GroupStructure,
    IdentifierKind,
    Kind,
    LegalStatus,
    PaymentMethod,
    PersonRole,
    Priority,
    ProtectionStatus,
    Route,
    Tlp,
)

SUBJECT_VOCABS = [Kind, Priority, Category, Route]
REPORT_VOCABS = [v for v in vars(terms).values() if isinstance(v, type) and issubclass(v, StrEnum)]


@pytest.mark.parametrize("vocab", SUBJECT_VOCABS, ids=lambda v: v.__name__)
def test_header_vocabularies_are_subject_tokens(vocab: type[StrEnum]) -> None:
    """Values placed in NATS subjects are lower-case ASCII slugs: no '.', '*' or '>'."""
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", v.value) for v in vocab)


@pytest.mark.parametrize("vocab", REPORT_VOCABS, ids=lambda v: v.__name__)
def test_report_vocabularies_are_slugs(vocab: type[StrEnum]) -> None:
    """Report-body values are stable lower-case slugs (age bands aside)."""
    pattern = r"[0-9]+(-[0-9]+|\+)|[a-z][a-z0-9-]*"
    assert all(re.fullmatch(pattern, v.value) for v in vocab)


def test_seed_terms_are_present() -> None:
    """Each term the brief and seed papers name is a value of its vocabulary."""
    expected: list[tuple[type[StrEnum], set[str]]] = [
        (DocumentFraud, {"counterfeit", "forged", "fraudulently-obtained", "impostor",
                         "stolen-blank"}),
        (PersonRole, {"organiser", "escort", "broker", "driver", "recruiter", "facilitator",
                      "financier", "corrupt-official", "smuggled-migrant", "witness", "victim"}),
        (LegalStatus, {"convicted", "suspected", "charged", "unknown"}),
        (DeathCause, {"drowning", "hypothermia", "vehicle-accident", "dehydration", "suffocation",
                      "shooting"}),
        (CrimeAgainstMigrants, {"homicide", "assault", "sexual-violence", "kidnapping",
                                "extortion", "abandonment", "other"}),
        (PaymentMethod, {"cash", "bank-transfer", "hawala", "money-transfer-service",
                         "cryptocurrency", "mobile-money"}),
        (IdentifierKind, {"phone", "messaging-handle", "social-media", "email", "crypto-wallet",
                          "bank-account", "iban"}),
        (GroupStructure, {"lone-operator", "loose-network", "organised-group"}),
        (ProtectionStatus, {"migrant", "refugee", "asylum-seeker", "unaccompanied-minor"}),
        (ConcealmentMethod, {"lorry-hidden-compartment", "shipping-container", "vessel-hold"}),
    ]  # fmt: skip
    for vocab, values in expected:
        assert values <= {v.value for v in vocab}, vocab.__name__


def test_only_witnesses_and_victims_are_protected_roles() -> None:
    """PersonRole.protected marks exactly the roles withheld unless released by name."""
    assert {PersonRole.WITNESS, PersonRole.VICTIM} == {r for r in PersonRole if r.protected}


def test_classification_ranks_in_order() -> None:
    """Markings compare by rank: unclassified < restricted < confidential < secret."""
    assert [0, 1, 2, 3] == [c.rank for c in Classification]


def test_category_and_tlp_order() -> None:
    """Categories follow art. 10(1)(a)-(f); TLP labels go from widest to narrowest."""
    assert ["ROUTES", "GROUPS", "DOCUMENTS", "CONCEALMENT", "LEGISLATION", "SCITECH"] == [
        c.name for c in Category
    ]
    assert ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"] == [t.value for t in Tlp]
