"""Key bundles with hybrid (ML-KEM-768 + X25519) keys: listed, checked, handed to sealers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey

from protocol import crypto
from protocol.envelope import SUITE_MLKEM768_X25519, choose_suite
from protocol.keys import EncryptionKey
from protocol.trust import EncryptionKeyEntry, bundle_for, sign_document
from schemas.errors import TrustError
from tests.trust._support import (
    DAY,
    ITA,
    ITA_ENC,
    NOW,
    _seed,
    bundle,
    entry,
    signed_bundle,
    store,
)

ITA_PQ = EncryptionKey(
    "ITA-GDF", ITA_ENC.private, MLKEM768PrivateKey.from_seed_bytes(_seed("pq") + _seed("pq z"))
)


def _hybrid_entry(key: EncryptionKey = ITA_PQ, **over: object) -> EncryptionKeyEntry:
    mlkem = key.public.mlkem_raw
    assert mlkem is not None
    fields: dict[str, object] = {
        "kid": key.kid,
        "x25519": key.public.raw.hex(),
        "mlkem768": mlkem.hex(),
        "not_before": NOW - DAY,
        "not_after": NOW + 10 * DAY,
    }
    return EncryptionKeyEntry.model_validate(fields | over)


def test_hybrid_key_is_handed_to_sealers_as_hybrid() -> None:
    trust = store()
    trust.add_bundle(signed_bundle(ITA, 1, _hybrid_entry()))
    (key,) = trust.encryption_keys("ITA-GDF", NOW)
    assert key.hybrid
    assert ITA_PQ.kid == key.kid
    assert SUITE_MLKEM768_X25519 == choose_suite([key])


def test_rotation_from_x25519_to_hybrid_lists_both_newest_first() -> None:
    """During the overlap the hybrid key comes first (senders use it) and the X25519 key
    stays, so what was sealed to it still opens."""
    trust = store()
    old = entry(ITA_ENC, NOW - 5 * DAY, NOW + 2 * DAY)
    trust.add_bundle(signed_bundle(ITA, 1, _hybrid_entry(), old))
    assert [ITA_PQ.kid, ITA_ENC.kid] == [k.kid for k in trust.encryption_keys("ITA-GDF", NOW)]
    assert [ITA_PQ.kid] == [k.kid for k in trust.encryption_keys("ITA-GDF", NOW + 3 * DAY)]


def test_bundle_without_mlkem_encodes_as_before() -> None:
    """A bundle of X25519 keys leaves ``mlkem768`` out: signatures made before it existed hold."""
    signed = signed_bundle(ITA, 1, entry())
    assert "mlkem768" not in signed["document"]["keys"][0]
    store().add_bundle(signed)


def test_bundle_for_writes_the_mlkem_part() -> None:
    doc = bundle_for("ITA-GDF", [ITA_PQ.public], now=NOW, days=30)
    assert ITA_PQ.public.mlkem_raw is not None
    assert ITA_PQ.public.mlkem_raw.hex() == doc.keys[0].mlkem768
    assert ITA_PQ.kid == doc.keys[0].public.kid


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"kid": ITA_ENC.kid}, "does not match"),  # the X25519 kid on a hybrid entry
        ({"mlkem768": "ff" * 1184}, "not a valid ML-KEM-768 key|does not match"),
    ],
)
def test_bundle_with_a_wrong_hybrid_entry_is_refused(over: dict[str, object], message: str) -> None:
    trust = store()
    with pytest.raises(TrustError, match=message):
        trust.add_bundle(sign_document(bundle("ITA-GDF", 1, _hybrid_entry(**over)), ITA, "ITA-GDF"))


def test_mlkem_key_of_the_wrong_length_fails_the_schema() -> None:
    with pytest.raises(ValueError, match="mlkem768"):
        _hybrid_entry(mlkem768="ab" * 1183)


def test_expired_hybrid_key_is_not_handed_out() -> None:
    trust = store()
    trust.add_bundle(signed_bundle(ITA, 1, _hybrid_entry(not_after=NOW + timedelta(hours=1))))
    assert [] == trust.encryption_keys("ITA-GDF", NOW + 2 * DAY)


def test_an_mlkem_key_cryptography_refuses_is_a_trust_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should ``cryptography`` refuse an ML-KEM key (it checks more in later versions), the
    bundle is refused with a reason, never an exception that stops a directory listener."""
    from cryptography.hazmat.primitives.asymmetric import mlkem

    def refuse(data: bytes) -> mlkem.MLKEM768PublicKey:
        raise ValueError("coefficient out of range")

    trust = store()
    signed = signed_bundle(ITA, 1, _hybrid_entry())
    refusing = type("Refusing", (), {"from_public_bytes": staticmethod(refuse)})
    monkeypatch.setattr("protocol._key_types.MLKEM768PublicKey", refusing)
    with pytest.raises(TrustError, match="not a valid ML-KEM-768 key"):
        trust.add_bundle(signed)


def _out_of_range(key: EncryptionKey = ITA_PQ) -> tuple[str, bytes]:
    """The hybrid key's ML-KEM part with its first coefficient set to 4095 (not below q), and
    the kid that covers exactly those bytes: only the FIPS 203 check can refuse it."""
    mlkem = key.public.mlkem_raw
    assert mlkem is not None
    bad = bytes([0xFF, mlkem[1] | 0x0F]) + mlkem[2:]
    return crypto.key_id(bad + key.public.raw), bad


def test_mlkem_key_failing_the_fips_203_modulus_check_is_refused() -> None:
    """FIPS 203 7.2: an encapsulation key whose coefficients are not all below q is refused
    when its bundle arrives, whatever ``cryptography`` would have done with it."""
    kid, bad = _out_of_range()
    assert not crypto.mlkem768_modulus_ok(bad)
    assert crypto.mlkem768_modulus_ok(ITA_PQ.public.mlkem_raw or b"")
    assert not crypto.mlkem768_modulus_ok(bytes(1183))
    signed = signed_bundle(ITA, 1, _hybrid_entry(kid=kid, mlkem768=bad.hex()))
    with pytest.raises(TrustError, match=r"not below q = 3329"):
        store().add_bundle(signed)


def test_the_modulus_check_does_not_rely_on_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with a ``cryptography`` that would load any 1,184 bytes, the key is refused."""
    from cryptography.hazmat.primitives.asymmetric import mlkem

    def load_anything(data: bytes) -> mlkem.MLKEM768PublicKey:
        raise AssertionError("the FIPS 203 check must come first")

    kid, bad = _out_of_range()
    signed = signed_bundle(ITA, 1, _hybrid_entry(kid=kid, mlkem768=bad.hex()))
    accepting = type("Accepting", (), {"from_public_bytes": staticmethod(load_anything)})
    monkeypatch.setattr("protocol._key_types.MLKEM768PublicKey", accepting)
    with pytest.raises(TrustError, match=r"not below q = 3329"):
        store().add_bundle(signed)
