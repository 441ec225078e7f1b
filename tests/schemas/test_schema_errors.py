"""The error hierarchy: one root, stable codes, reasons that say what to fix."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import schemas.errors as errors
from schemas.errors import (
    AuthenticationFailed,
    ClockSkew,
    EnvelopeError,
    EnvelopeTooLarge,
    HeaderInvalid,
    InputError,
    PalermoError,
    Replayed,
    ReportInvalid,
    TrustError,
    UnknownSigner,
    UnsupportedSuite,
    UnsupportedVersion,
)

CLASSES = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, PalermoError)]


def test_every_error_has_one_root_and_a_unique_code() -> None:
    """All errors derive from PalermoError and no two share a code."""
    assert sorted(errors.__all__) == sorted(c.__name__ for c in CLASSES)
    codes = [c.code for c in CLASSES]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("error", "parent", "code", "data", "fragment"),
    [
        (EnvelopeTooLarge(2_000_000, 1_048_576), EnvelopeError, "too_large",
         {"size": 2_000_000, "limit": 1_048_576}, "over the limit of 1048576 bytes"),
        (UnsupportedVersion(2), EnvelopeError, "unsupported_version", {"version": 2}, "v1"),
        (UnsupportedSuite(9), EnvelopeError, "unsupported_suite", {"suite": 9},
         "suites 1 (X25519) and 2"),
        (UnknownSigner("ITA-GDF", "k1"), EnvelopeError, "unknown_signer",
         {"originator": "ITA-GDF", "kid": "k1"}, "'ITA-GDF'"),
        (Replayed("id-1"), EnvelopeError, "replayed", {"envelope_id": "id-1"}, "replay"),
        (ClockSkew(9000, 5000), EnvelopeError, "clock_skew",
         {"skew_ms": 9000, "tolerance_ms": 5000}, "NTP"),
        (AuthenticationFailed("aead"), EnvelopeError, "auth_failed", {"stage": "aead"},
         "failed authentication"),
        (HeaderInvalid("bad", [{"field": "id"}]), EnvelopeError, "header_invalid",
         {"errors": [{"field": "id"}]}, "bad"),
        (ReportInvalid("bad report"), InputError, "report_invalid", {"errors": []}, "bad report"),
        (TrustError("x"), PalermoError, "trust_error", {}, "x"),
    ],
)  # fmt: skip
def test_errors_carry_data_and_reasons(
    error: PalermoError, parent: type, code: str, data: dict[str, Any], fragment: str
) -> None:
    """Each error keeps its data as attributes, its code, and a reason naming the fix."""
    assert isinstance(error, parent)
    assert code == error.code
    assert data == {k: getattr(error, k) for k in data}
    assert fragment in error.reason
    assert error.reason == str(error)
    assert {"code": code, "reason": error.reason} == {
        k: v for k, v in error.to_dict().items() if k != "errors"
    }


def test_authentication_failure_hides_its_stage() -> None:
    """Whatever failed, the message is the same: the stage is for tests and the audit log."""
    assert AuthenticationFailed("signature").reason == AuthenticationFailed("aead").reason


def test_report_invalid_to_dict_lists_errors() -> None:
    """ReportInvalid.to_dict includes the per-field errors."""
    err = ReportInvalid("r", [{"field": "title", "message": "m", "type": "t"}])
    assert {"code": "report_invalid", "reason": "r", "errors": err.errors} == err.to_dict()
