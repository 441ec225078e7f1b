"""Trust documents round-trip, and every kind of forgery is refused with its typed error."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from policies import AgencyPolicy, Federation
from protocol.envelope import verify_envelope
from protocol.keys import EncryptionKey, SigningKey
from protocol.trust import (
    ROOT,
    EncryptionKeyEntry,
    KeyBundle,
    MembershipCertificate,
    RevocationEntry,
    RevocationList,
    TrustStore,
    sign_document,
    verify_document,
)
from protocol.view import PolicyStore
from schemas.errors import (
    KeyNotValid,
    NotValidNow,
    Revoked,
    SignatureInvalid,
    TrustError,
    UnknownIssuer,
)
from tests.harness import envelope

NOW = datetime.now(UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
ROOT_KEY = SigningKey.generate(ROOT)
ITA = SigningKey.generate("ITA-GDF")
ITA_ENC = EncryptionKey.generate("ITA-GDF")


def _cert(**over: Any) -> MembershipCertificate:
    base: dict[str, Any] = {
        "serial": 1,
        "agency": "ITA-GDF",
        "name": "Fictional Italian node",
        "country": "ITA",
        "groups": ["med-coastal"],
        "accreditation": "secret",
        "signing_key": ITA.public.raw.hex(),
        "not_before": NOW - timedelta(days=1),
        "not_after": NOW + timedelta(days=30),
    }
    return MembershipCertificate(**(base | over))


def _bundle(seq: int = 1, key: EncryptionKey = ITA_ENC, days: int = 30) -> KeyBundle:
    entry = EncryptionKeyEntry(
        kid=key.kid,
        x25519=key.public.raw.hex(),
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=days),
    )
    return KeyBundle(agency="ITA-GDF", seq=seq, issued=NOW, keys=[entry])


def _store() -> TrustStore:
    store = TrustStore(ROOT_KEY.public)
    store.add_certificate(sign_document(_cert(), ROOT_KEY, ROOT))
    return store


@pytest.mark.parametrize(
    "doc",
    [
        _cert(),
        _bundle(),
        RevocationList(seq=3, issued=NOW, entries=[]),
        Federation.from_toml(EXAMPLES.joinpath("federation.toml").read_text()),
        AgencyPolicy.from_toml(EXAMPLES.joinpath("ITA-GDF.toml").read_text()),
    ],
    ids=["certificate", "bundle", "revocations", "federation-policy", "agency-policy"],
)
def test_documents_round_trip_and_survive_reformatting(doc: Any) -> None:
    """Sign, reformat the JSON (indent, key order), verify: the same document comes back."""
    signer, name = (
        (ITA, "ITA-GDF") if doc.kind in ("key-bundle", "agency-policy") else (ROOT_KEY, ROOT)
    )
    signed = sign_document(doc, signer, name)
    reformatted = json.loads(json.dumps(signed, indent=4, sort_keys=False))
    assert doc == verify_document(reformatted, type(doc), signer.public, name)


def test_altered_field_is_refused() -> None:
    """Changing any field of a signed certificate breaks its signature."""
    signed = sign_document(_cert(), ROOT_KEY, ROOT)
    changes = [
        ("country", "LBY"),
        ("accreditation", "restricted"),
        ("serial", 2),
        ("groups", ["bali-process"]),
        ("not_after", 9_999_999_999_999),
    ]
    for field, value in changes:
        forged = copy.deepcopy(signed)
        forged["document"][field] = value
        with pytest.raises(SignatureInvalid):
            TrustStore(ROOT_KEY.public).add_certificate(forged)


def test_signed_by_a_non_root_is_refused() -> None:
    """A certificate signed by an agency key, or by another root, is refused."""
    with pytest.raises(UnknownIssuer):
        TrustStore(ROOT_KEY.public).add_certificate(sign_document(_cert(), ITA, "ITA-GDF"))
    other_root = SigningKey.generate(ROOT)
    with pytest.raises(UnknownIssuer, match="pinned the right federation root"):
        TrustStore(ROOT_KEY.public).add_certificate(sign_document(_cert(), other_root, ROOT))


def test_wrong_key_under_the_root_kid_is_refused() -> None:
    """A signature made by another key but labelled with the root's kid does not verify."""
    signed = sign_document(_cert(), SigningKey.generate(ROOT), ROOT)
    signed["signature"]["kid"] = ROOT_KEY.kid
    with pytest.raises(SignatureInvalid):
        TrustStore(ROOT_KEY.public).add_certificate(signed)


def test_expired_and_not_yet_valid_certificates() -> None:
    """Outside its validity a certificate is refused, and so is its key for envelopes."""
    for cert in (
        _cert(not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(days=1)),
        _cert(not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=60)),
    ):
        store = TrustStore(ROOT_KEY.public)
        store.add_certificate(sign_document(cert, ROOT_KEY, ROOT))
        with pytest.raises(NotValidNow):
            store.certificate("ITA-GDF", NOW)
        with pytest.raises(KeyNotValid):
            store.signing_key("ITA-GDF", ITA.kid, NOW)


def test_revoked_agency_and_revoked_key() -> None:
    """A revoked agency is refused; a revoked single key leaves the agency otherwise valid."""
    store = _store()
    store.add_bundle(sign_document(_bundle(), ITA, "ITA-GDF"))
    lost = RevocationEntry(agency="ITA-GDF", kid=ITA_ENC.kid, reason="lost laptop", revoked_at=NOW)
    one_key = RevocationList(seq=2, issued=NOW, entries=[lost])
    store.set_revocations(sign_document(one_key, ROOT_KEY, ROOT))
    assert [] == store.encryption_keys("ITA-GDF", NOW)
    assert store.certificate("ITA-GDF", NOW)
    whole = RevocationEntry(agency="ITA-GDF", reason="compromised", revoked_at=NOW)
    agency = RevocationList(seq=3, issued=NOW, entries=[whole])
    store.set_revocations(sign_document(agency, ROOT_KEY, ROOT))
    with pytest.raises(Revoked, match="compromised"):
        store.certificate("ITA-GDF", NOW)
    with pytest.raises(KeyNotValid):
        store.signing_key("ITA-GDF", ITA.kid, NOW)


def test_rollbacks_are_refused() -> None:
    """Older certificates, bundles, revocation lists and policies cannot replace newer ones."""
    store = _store()
    store.add_certificate(sign_document(_cert(serial=5), ROOT_KEY, ROOT))
    with pytest.raises(TrustError, match="rollback"):
        store.add_certificate(sign_document(_cert(serial=4), ROOT_KEY, ROOT))
    store.add_bundle(sign_document(_bundle(seq=2), ITA, "ITA-GDF"))
    with pytest.raises(TrustError, match="not newer"):
        store.add_bundle(
            sign_document(_bundle(seq=1, key=EncryptionKey.generate("ITA-GDF")), ITA, "ITA-GDF")
        )
    store.set_revocations(sign_document(RevocationList(seq=9, issued=NOW), ROOT_KEY, ROOT))
    with pytest.raises(TrustError, match="older"):
        store.set_revocations(sign_document(RevocationList(seq=8, issued=NOW), ROOT_KEY, ROOT))
    view = PolicyStore(ROOT_KEY.public, store)
    fed = Federation.from_toml(EXAMPLES.joinpath("federation.toml").read_text())
    view.set_federation(sign_document(fed, ROOT_KEY, ROOT))
    older = fed.model_copy(update={"version": fed.version - 1})
    with pytest.raises(TrustError, match="rollback"):
        view.set_federation(sign_document(older, ROOT_KEY, ROOT))


def test_bundle_forgeries() -> None:
    """Bundles signed by another key, for an unknown agency, or with a wrong kid are refused."""
    store = _store()
    with pytest.raises((UnknownIssuer, SignatureInvalid)):
        store.add_bundle(sign_document(_bundle(), SigningKey.generate("ITA-GDF"), "ITA-GDF"))
    stranger = KeyBundle(agency="GRC-HCG", seq=1, issued=NOW, keys=list(_bundle().keys))
    with pytest.raises(UnknownIssuer):
        store.add_bundle(sign_document(stranger, ITA, "GRC-HCG"))
    bad_entry = _bundle().keys[0].model_copy(update={"kid": "0" * 16})
    wrong_kid = KeyBundle(agency="ITA-GDF", seq=1, issued=NOW, keys=[bad_entry])
    with pytest.raises(TrustError, match="does not match"):
        store.add_bundle(sign_document(wrong_kid, ITA, "ITA-GDF"))


def test_malformed_signed_documents_say_what_is_wrong() -> None:
    """No signature block, no kind, or a field the schema does not know: each a clear TrustError."""
    store = _store()
    with pytest.raises(TrustError, match="palermo policy sign"):
        store.add_certificate({"document": _cert().model_dump(mode="json")})
    signed = sign_document(_cert(), ROOT_KEY, ROOT)
    with pytest.raises(TrustError, match="unknown trust document kind"):
        store.add({"document": {"kind": "mystery"}, "signature": signed["signature"]})


def test_trust_store_resolves_and_revokes_envelope_signers() -> None:
    """Envelopes verify against the store; after revocation the same envelope is refused."""
    from palermo.devfed import DevFederation

    # envelope() stamps the wall clock; NOW (import time) may be minutes earlier in a long run.
    now = datetime.now(UTC)
    fed = DevFederation.build(now)
    store = fed.trust_store()
    header, data = envelope(fed)
    assert header.id == verify_envelope(data, store, now=now).header.id
    entry = RevocationEntry(agency="ITA-GDF", reason="test", revoked_at=now - timedelta(seconds=1))
    revoked = RevocationList(seq=2, issued=now, entries=[entry])
    store.set_revocations(sign_document(revoked, fed.root, ROOT))
    with pytest.raises(KeyNotValid):
        verify_envelope(data, store, now=now)


def test_a_revoked_key_cannot_sign_by_backdating() -> None:
    """An envelope dated before the revocation but verified after it is refused."""
    from palermo.devfed import DevFederation
    from protocol.envelope import seal
    from schemas import EnvelopeHeader, Handling, new_uuid7

    fed = DevFederation.build(NOW)
    store = fed.trust_store()
    ita = fed.agencies["ITA-GDF"]
    entry = RevocationEntry(agency="ITA-GDF", reason="stolen", revoked_at=NOW - timedelta(hours=1))
    store.set_revocations(
        sign_document(RevocationList(seq=2, issued=NOW, entries=[entry]), fed.root, ROOT)
    )
    backdated = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.signing.kid,
        created=NOW - timedelta(days=2), kind="report", route="central-med", category="routes",
        handling=Handling(tlp="GREEN"), recipients=["MLT-AFM"],
    )  # fmt: skip
    data = seal(backdated, b"x", ita.signing, [fed.agencies["MLT-AFM"].encryption.public])
    with pytest.raises(KeyNotValid):
        verify_envelope(data, store, now=NOW)


def test_same_version_different_content_is_refused() -> None:
    """A second revocation list or certificate under the same number cannot replace the first."""
    store = _store()
    entry = RevocationEntry(agency="ITA-GDF", reason="compromised", revoked_at=NOW)
    store.set_revocations(
        sign_document(RevocationList(seq=2, issued=NOW, entries=[entry]), ROOT_KEY, ROOT)
    )
    with pytest.raises(TrustError, match="seq 3"):
        store.set_revocations(sign_document(RevocationList(seq=2, issued=NOW), ROOT_KEY, ROOT))
    assert store.revoked("ITA-GDF", None, NOW) is not None
    with pytest.raises(TrustError, match="new serial"):
        store.add_certificate(sign_document(_cert(country="MLT"), ROOT_KEY, ROOT))
    store.add_certificate(sign_document(_cert(), ROOT_KEY, ROOT))  # the same one again is fine


def test_load_keeps_the_newest_of_several_versions() -> None:
    """Given serials 2 then 1 in one batch, load ends with serial 2 instead of failing."""
    store = TrustStore(ROOT_KEY.public)
    store.load(
        [
            sign_document(_cert(serial=2), ROOT_KEY, ROOT),
            sign_document(_cert(serial=1), ROOT_KEY, ROOT),
        ]
    )
    assert 2 == store.members["ITA-GDF"].serial
