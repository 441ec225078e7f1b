"""TrustStore: validity, revocation, rollbacks, key rotation, load order, envelope signers."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from protocol.envelope import seal, verify_envelope
from protocol.keys import SigningKey
from protocol.trust import (
    ROOT,
    RevocationEntry,
    Subscriptions,
    TopicFilter,
    TrustStore,
    sign_document,
)
from schemas import EnvelopeHeader, Handling, new_uuid7, to_epoch_ms
from schemas.errors import (
    KeyNotValid,
    NotValidNow,
    Revoked,
    Rollback,
    SignatureInvalid,
    TrustError,
    UnknownIssuer,
    UnknownSigner,
)
from tests.trust._support import (
    DAY,
    ITA,
    ITA_ENC,
    MLT,
    MLT_ENC,
    MS,
    NOW,
    ROOT_KEY,
    bundle,
    cert,
    encryption_key,
    entry,
    revocations,
    sign_raw,
    signed_bundle,
    signed_cert,
    signed_revocations,
    signing_key,
    store,
)


def _kids(trust: TrustStore, agency: str, at: datetime) -> list[str]:
    return [k.kid for k in trust.encryption_keys(agency, at)]


# --- certificates: validity ---------------------------------------------------------------------


def test_valid_certificate_and_signing_key_are_returned() -> None:
    """Inside its validity a member's certificate and signing key are returned."""
    trust = store()
    assert cert() == trust.certificate("ITA-GDF", NOW)
    assert ITA.public.raw == trust.signing_key("ITA-GDF", ITA.kid, NOW).public_bytes_raw()
    assert {"ITA-GDF": cert()} == dict(trust.members)


@pytest.mark.parametrize(
    "at",
    [NOW - 30 * DAY - MS, NOW + 30 * DAY, NOW + 400 * DAY],
    ids=["not-yet-valid", "at-not-after", "long-expired"],
)
def test_certificate_outside_validity_is_not_valid_now(at: datetime) -> None:
    """Before not_before or from not_after on: NotValidNow, and KeyNotValid for envelopes."""
    trust = store()
    with pytest.raises(NotValidNow, match="renew"):
        trust.certificate("ITA-GDF", at)
    with pytest.raises(KeyNotValid, match="not valid"):
        trust.signing_key("ITA-GDF", ITA.kid, at)


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [(NOW - 60 * DAY, NOW - DAY), (NOW + DAY, NOW + 60 * DAY)],
    ids=["expired", "not-yet-valid"],
)
def test_expired_and_future_certificates_are_refused_at_now(
    not_before: datetime, not_after: datetime
) -> None:
    """A certificate held but expired (or not yet valid) refuses look-ups at NOW."""
    trust = store(cert(not_before=not_before, not_after=not_after))
    with pytest.raises(NotValidNow):
        trust.certificate("ITA-GDF", NOW)
    with pytest.raises(KeyNotValid):
        trust.signing_key("ITA-GDF", ITA.kid, NOW)
    with pytest.raises(NotValidNow):
        trust.encryption_keys("ITA-GDF", NOW)


def test_certificate_boundaries_are_inclusive_then_exclusive() -> None:
    """A certificate is valid from not_before (inclusive) to not_after (exclusive)."""
    trust = store()
    assert cert() == trust.certificate("ITA-GDF", NOW - 30 * DAY)
    assert cert() == trust.certificate("ITA-GDF", NOW + 30 * DAY - MS)


def test_unknown_agency_and_unknown_kid() -> None:
    """No certificate: UnknownIssuer; a kid the certificate does not name: UnknownSigner."""
    trust = store()
    with pytest.raises(UnknownIssuer, match="not a member"):
        trust.certificate("MLT-AFM", NOW)
    with pytest.raises(UnknownSigner):
        trust.signing_key("MLT-AFM", MLT.kid, NOW)
    with pytest.raises(UnknownSigner):
        trust.signing_key("ITA-GDF", MLT.kid, NOW)
    with pytest.raises(UnknownIssuer):
        trust.encryption_keys("MLT-AFM", NOW)


# --- revocation ---------------------------------------------------------------------------------


def test_revoked_agency_is_revoked_and_its_key_not_valid() -> None:
    """An agency on the revocation list: Revoked from certificate(), KeyNotValid for its key."""
    trust = store()
    trust.add_bundle(signed_bundle())
    gone = RevocationEntry(agency="ITA-GDF", reason="key compromised", revoked_at=NOW - DAY)
    trust.set_revocations(signed_revocations(2, gone))
    with pytest.raises(Revoked, match="key compromised"):
        trust.certificate("ITA-GDF", NOW)
    with pytest.raises(KeyNotValid):
        trust.signing_key("ITA-GDF", ITA.kid, NOW)
    with pytest.raises(Revoked):
        trust.encryption_keys("ITA-GDF", NOW)
    assert gone == trust.revoked("ITA-GDF", None, NOW)
    assert gone == trust.revoked("ITA-GDF", ITA.kid, NOW)


def test_revocation_takes_effect_at_revoked_at() -> None:
    """Before revoked_at the agency is still valid; from revoked_at on it is revoked."""
    trust = store()
    gone = RevocationEntry(agency="ITA-GDF", reason="left", revoked_at=NOW)
    trust.set_revocations(signed_revocations(2, gone))
    assert cert() == trust.certificate("ITA-GDF", NOW - MS)
    assert trust.revoked("ITA-GDF", None, NOW - MS) is None
    with pytest.raises(Revoked):
        trust.certificate("ITA-GDF", NOW)


def test_revoked_signing_kid_leaves_certificate_valid() -> None:
    """One revoked signing kid: the certificate stands, but the key is KeyNotValid."""
    trust = store()
    lost = RevocationEntry(agency="ITA-GDF", kid=ITA.kid, reason="lost laptop", revoked_at=NOW)
    trust.set_revocations(signed_revocations(2, lost))
    assert cert() == trust.certificate("ITA-GDF", NOW)
    with pytest.raises(KeyNotValid, match="revoked"):
        trust.signing_key("ITA-GDF", ITA.kid, NOW)
    assert ITA.public.raw == trust.signing_key("ITA-GDF", ITA.kid, NOW - MS).public_bytes_raw()


def test_revoked_encryption_kid_is_excluded() -> None:
    """A revoked encryption kid is no longer offered; the agency's other keys still are."""
    spare = encryption_key("ITA-GDF", "spare")
    trust = store()
    trust.add_bundle(signed_bundle(ITA, 1, entry(), entry(spare, not_before=NOW - 2 * DAY)))
    assert [ITA_ENC.kid, spare.kid] == _kids(trust, "ITA-GDF", NOW)
    lost = RevocationEntry(agency="ITA-GDF", kid=ITA_ENC.kid, reason="lost", revoked_at=NOW)
    trust.set_revocations(signed_revocations(2, lost))
    assert [spare.kid] == _kids(trust, "ITA-GDF", NOW)
    assert cert() == trust.certificate("ITA-GDF", NOW)


def test_revocation_of_another_agency_does_not_touch_this_one() -> None:
    """Revoking MLT-AFM leaves ITA-GDF's certificate and keys valid."""
    trust = store(cert(), cert(MLT))
    gone = RevocationEntry(agency="MLT-AFM", reason="left", revoked_at=NOW - DAY)
    trust.set_revocations(signed_revocations(2, gone))
    assert cert() == trust.certificate("ITA-GDF", NOW)
    with pytest.raises(Revoked):
        trust.certificate("MLT-AFM", NOW)


def test_revocation_list_rollback_is_refused() -> None:
    """A lower revocation list seq is refused, and the held list stays."""
    trust = store()
    gone = RevocationEntry(agency="ITA-GDF", reason="compromised", revoked_at=NOW - DAY)
    trust.set_revocations(signed_revocations(5, gone))
    with pytest.raises(TrustError, match="older") as info:
        trust.set_revocations(signed_revocations(4))
    assert Rollback is type(info.value)
    assert 5 == trust.revocations.seq
    with pytest.raises(Revoked):
        trust.certificate("ITA-GDF", NOW)


def test_revocation_list_signed_by_an_agency_is_refused() -> None:
    """Only the root may sign a revocation list."""
    with pytest.raises(UnknownIssuer):
        store().set_revocations(sign_document(revocations(9), ITA, ROOT))


# --- certificates: rollback and renewal ---------------------------------------------------------


def test_certificate_rollback_is_refused() -> None:
    """A certificate with a lower serial than the one held is refused and changes nothing."""
    trust = store()
    renewed = cert(serial=3, groups=["bali-process"])
    trust.add_certificate(sign_document(renewed, ROOT_KEY, ROOT))
    with pytest.raises(TrustError, match="rollback") as info:
        trust.add_certificate(signed_cert(serial=2))
    assert Rollback is type(info.value)
    assert renewed == trust.certificate("ITA-GDF", NOW)


def test_renewed_certificate_with_new_key_retires_the_old_kid() -> None:
    """After renewal with a new signing key, the old kid is unknown and the new one resolves."""
    new = SigningKey("ITA-GDF", signing_key("ITA-GDF", "2027").private)
    trust = store()
    trust.add_certificate(signed_cert(serial=2, signing_key=new.public.raw.hex()))
    with pytest.raises(UnknownSigner):
        trust.signing_key("ITA-GDF", ITA.kid, NOW)
    assert new.public.raw == trust.signing_key("ITA-GDF", new.kid, NOW).public_bytes_raw()


# --- key bundles ---------------------------------------------------------------------------------


def test_bundle_for_agency_without_certificate_is_unknown_issuer() -> None:
    """A bundle (even properly self-signed) for a non-member is refused."""
    with pytest.raises(UnknownIssuer, match="no membership certificate"):
        store().add_bundle(signed_bundle(MLT))


# signature block's (signer, kid) after MLT-AFM signed ITA-GDF's bundle, and the error expected
BY_OTHER_AGENCY: dict[str, tuple[str, str, type[TrustError]]] = {
    "signed as MLT-AFM": ("MLT-AFM", MLT.kid, UnknownIssuer),
    "claims ITA-GDF, MLT kid": ("ITA-GDF", MLT.kid, UnknownIssuer),
    "claims ITA-GDF, ITA kid": ("ITA-GDF", ITA.kid, SignatureInvalid),
}


@pytest.mark.parametrize("case", sorted(BY_OTHER_AGENCY))
def test_bundle_signed_by_another_agency_is_refused(case: str) -> None:
    """ITA-GDF's bundle signed with MLT-AFM's key is refused however it is labelled."""
    signer, kid, error = BY_OTHER_AGENCY[case]
    trust = store(cert(), cert(MLT))
    signed = sign_document(bundle("ITA-GDF"), MLT, "MLT-AFM")
    signed["signature"] |= {"signer": signer, "kid": kid}
    with pytest.raises(error):
        trust.add_bundle(signed)
    assert [] == trust.encryption_keys("ITA-GDF", NOW)


def test_bundle_replay_with_lower_seq_is_refused() -> None:
    """An older bundle (lower seq) cannot replace the one held."""
    newer = encryption_key("ITA-GDF", "newer")
    trust = store()
    trust.add_bundle(signed_bundle(ITA, 2, entry(newer)))
    with pytest.raises(TrustError, match="not newer") as info:
        trust.add_bundle(signed_bundle(ITA, 1))
    assert Rollback is type(info.value)
    assert [newer.kid] == _kids(trust, "ITA-GDF", NOW)


def test_bundle_same_seq_other_content_is_refused_same_bundle_is_idempotent() -> None:
    """Re-adding the held bundle is a no-op; another bundle with the same seq is refused."""
    trust = store()
    held = trust.add_bundle(signed_bundle())
    assert held == trust.add_bundle(signed_bundle())
    with pytest.raises(TrustError, match="not newer"):
        trust.add_bundle(signed_bundle(ITA, 1, entry(encryption_key("ITA-GDF", "other"))))


def test_bundle_entry_with_wrong_kid_is_refused() -> None:
    """An encryption key entry whose kid is not its key's id is refused; nothing is held."""
    wrong = entry().model_copy(update={"kid": MLT_ENC.kid})
    trust = store()
    with pytest.raises(TrustError, match="does not match") as info:
        trust.add_bundle(signed_bundle(ITA, 1, wrong))
    assert TrustError is type(info.value)
    assert [] == trust.encryption_keys("ITA-GDF", NOW)


# --- encryption keys and rotation ---------------------------------------------------------------


def test_encryption_keys_only_valid_at_time_newest_first() -> None:
    """Only keys valid at `at` are returned, the newest (latest not_before) first."""
    old, mid, new, future = (encryption_key("ITA-GDF", n) for n in ("old", "mid", "new", "fut"))
    trust = store()
    trust.add_bundle(
        signed_bundle(
            ITA,
            1,
            entry(mid, not_before=NOW - 5 * DAY, not_after=NOW + DAY),
            entry(old, not_before=NOW - 20 * DAY, not_after=NOW - DAY),
            entry(future, not_before=NOW + DAY, not_after=NOW + 20 * DAY),
            entry(new, not_before=NOW - DAY, not_after=NOW + 20 * DAY),
        )
    )
    assert [new.kid, mid.kid] == _kids(trust, "ITA-GDF", NOW)
    assert {"ITA-GDF"} == {k.agency for k in trust.encryption_keys("ITA-GDF", NOW)}
    assert [future.kid, new.kid] == _kids(trust, "ITA-GDF", NOW + DAY)
    assert [mid.kid, old.kid] == _kids(trust, "ITA-GDF", NOW - 2 * DAY)


def test_no_bundle_means_no_encryption_keys() -> None:
    """A member without a key bundle cannot receive: no keys."""
    assert [] == store().encryption_keys("ITA-GDF", NOW)


def test_rotation_overlap_then_only_the_new_key() -> None:
    """Bundle seq 2 adds a key: both during the overlap, only the new one after the old expires."""
    new = encryption_key("ITA-GDF", "rotated")
    old_end, new_start = NOW + 10 * DAY, NOW + 5 * DAY
    trust = store()
    trust.add_bundle(signed_bundle(ITA, 1, entry(not_after=old_end)))
    assert [ITA_ENC.kid] == _kids(trust, "ITA-GDF", NOW)
    trust.add_bundle(
        signed_bundle(
            ITA,
            2,
            entry(not_after=old_end),
            entry(new, not_before=new_start, not_after=NOW + 25 * DAY),
        )
    )
    assert [ITA_ENC.kid] == _kids(trust, "ITA-GDF", new_start - MS)
    assert [new.kid, ITA_ENC.kid] == _kids(trust, "ITA-GDF", new_start)
    assert [new.kid, ITA_ENC.kid] == _kids(trust, "ITA-GDF", old_end - MS)
    assert [new.kid] == _kids(trust, "ITA-GDF", old_end)
    assert [] == _kids(trust, "ITA-GDF", NOW + 25 * DAY)


# --- load ---------------------------------------------------------------------------------------

SUBS = Subscriptions(agency="MLT-AFM", seq=1, issued=NOW, filters=[TopicFilter(route="*")])
LOST = RevocationEntry(agency="ITA-GDF", kid=ITA_ENC.kid, reason="lost", revoked_at=NOW - DAY)
DOCUMENTS = [
    signed_cert(),
    signed_cert(MLT),
    signed_bundle(),
    signed_bundle(MLT, 1, entry(MLT_ENC)),
    signed_revocations(3, LOST),
    sign_document(SUBS, MLT, "MLT-AFM"),
]


def test_load_accepts_documents_in_any_order() -> None:
    """Every order of certificates, bundles, subscriptions and revocations loads the same state."""
    for order in itertools.permutations(DOCUMENTS):
        trust = TrustStore(ROOT_KEY.public, clock=lambda: NOW)
        trust.load(order)
        state = (
            sorted(trust.members),
            3 == trust.revocations.seq,
            _kids(trust, "ITA-GDF", NOW),
            _kids(trust, "MLT-AFM", NOW),
            dict(trust.subscriptions),
        )
        assert (["ITA-GDF", "MLT-AFM"], True, [], [MLT_ENC.kid], {"MLT-AFM": SUBS}) == state


def test_load_refuses_a_forged_document_and_unknown_kinds() -> None:
    """load verifies each document: a forgery or an unknown kind stops it with a TrustError."""
    forged = signed_bundle(MLT)
    forged["document"]["seq"] = 2
    with pytest.raises(SignatureInvalid):
        TrustStore(ROOT_KEY.public, clock=lambda: NOW).load([forged, *DOCUMENTS[:2]])
    mystery = sign_raw({"kind": "mystery"}, ROOT_KEY, ROOT)
    with pytest.raises(TrustError, match="unknown trust document kind"):
        TrustStore(ROOT_KEY.public).load([mystery])


# --- the envelope SignerResolver ----------------------------------------------------------------


def _sealed(trust: TrustStore, created: datetime = NOW) -> tuple[EnvelopeHeader, bytes]:
    header = EnvelopeHeader(
        id=new_uuid7(to_epoch_ms(created)),
        originator="ITA-GDF",
        kid=ITA.kid,
        created=created,
        kind="alert",
        priority="urgent",
        route="central-med",
        category="routes",
        handling=Handling(tlp="AMBER", rel_to=["group:med-coastal"], h2=True),
        recipients=["MLT-AFM"],
    )
    return header, seal(header, b"payload", ITA, trust.encryption_keys("MLT-AFM", NOW))


def _envelope_store() -> TrustStore:
    trust = store(cert(), cert(MLT))
    trust.add_bundle(signed_bundle(MLT, 1, entry(MLT_ENC)))
    return trust


def test_store_resolves_envelope_signers() -> None:
    """An envelope sealed by a member verifies with the TrustStore as its SignerResolver."""
    trust = _envelope_store()
    header, data = _sealed(trust)
    assert header == verify_envelope(data, trust, now=NOW + DAY).header


@pytest.mark.parametrize("kid", [None, ITA.kid], ids=["agency", "signing-kid"])
def test_envelope_refused_after_revocation(kid: str | None) -> None:
    """After the agency (or its signing kid) is revoked from before `created`, KeyNotValid."""
    trust = _envelope_store()
    _, data = _sealed(trust)
    assert verify_envelope(data, trust, now=NOW)
    gone = RevocationEntry(agency="ITA-GDF", kid=kid, reason="compromised", revoked_at=NOW - DAY)
    trust.set_revocations(signed_revocations(2, gone))
    with pytest.raises(KeyNotValid):
        verify_envelope(data, trust, now=NOW)


def test_envelope_from_unknown_or_expired_signer_is_refused() -> None:
    """No certificate: UnknownSigner; created after the certificate expired: KeyNotValid."""
    _, data = _sealed(_envelope_store())
    stranger = store(cert(MLT))
    with pytest.raises(UnknownSigner):
        verify_envelope(data, stranger, now=NOW)
    trust = _envelope_store()
    _, late = _sealed(trust, NOW + 31 * DAY)
    with pytest.raises(KeyNotValid):
        verify_envelope(late, trust, now=NOW + 31 * DAY)


def test_key_bundle_of_revoked_agency_is_refused() -> None:
    """A revoked agency's bundle is refused (issue 12 item 2), and it has no encryption keys."""
    trust = store()
    gone = RevocationEntry(agency="ITA-GDF", reason="compromised", revoked_at=NOW - DAY)
    trust.set_revocations(signed_revocations(2, gone))
    with pytest.raises(Revoked, match="revoked key signs nothing"):
        trust.add_bundle(signed_bundle())
    assert {} == dict(trust.bundles)
    with pytest.raises(Revoked):
        trust.encryption_keys("ITA-GDF", NOW)
