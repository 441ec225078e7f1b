"""Issue 12 item 2: a replaced or revoked signing key controls nothing of its agency any more.

The thief of a revoked signing key publishes a key bundle carrying its own X25519 key, so that
every report sealed for the agency is sealed for the thief. Each trust document an agency signs
(key bundle, subscriptions, standing policy) is refused when its signing key is revoked or is
no longer the key of the agency's certificate, and what that key signed before is dropped when
the revocation or the new certificate arrives — on a live nats-server through the Directory,
across a restart, and in the pure stores. Item 6 (first half): a bundle with a small-order
X25519 key is refused when it is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest

from palermo.devfed import DevFederation
from policies import AgencyPolicy
from protocol import crypto
from protocol.directory import Directory
from protocol.keys import EncryptionKey, SigningKey
from protocol.trust import (
    ROOT,
    EncryptionKeyEntry,
    RevocationEntry,
    RevocationList,
    Subscriptions,
    TopicFilter,
    TrustStore,
    bundle_for,
    sign_document,
)
from protocol.view import PolicyStore
from schemas.errors import KeyNotValid, NotValidNow, Revoked, UnknownIssuer
from tests.harness import follow_directory, wait_for
from tests.trust._support import (
    DAY,
    ITA,
    ITA_ENC,
    NOW,
    ROOT_KEY,
    bundle,
    cert,
    encryption_key,
    entry,
    signed_bundle,
    signed_cert,
    signed_revocations,
    signing_key,
    store,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
AGENCY = "ITA-GDF"
THIEF_ENC = encryption_key(AGENCY, "thief")
NEW_ITA = signing_key(AGENCY, "new certificate")


def _kids(trust: TrustStore, agency: str = AGENCY, at: datetime = NOW) -> list[str]:
    return [k.kid for k in trust.encryption_keys(agency, at)]


def _stolen(kid: str | None = ITA.kid, at: datetime = NOW) -> RevocationEntry:
    return RevocationEntry(agency=AGENCY, kid=kid, reason="signing key stolen", revoked_at=at)


def _subs(seq: int = 1) -> Subscriptions:
    return Subscriptions(agency=AGENCY, seq=seq, issued=NOW, filters=[TopicFilter(route="*")])


def _standing(key: SigningKey = ITA, version: int = 2) -> dict[str, Any]:
    policy = AgencyPolicy.from_toml((EXAMPLES / f"{AGENCY}.toml").read_text())
    return sign_document(policy.model_copy(update={"version": version}), key, AGENCY)


# --- the pure stores ---------------------------------------------------------------------------


def test_bundle_signed_by_a_revoked_signing_key_is_refused() -> None:
    """The thief's bundle (its own X25519 key, signed with the revoked key) is refused."""
    trust = store()
    trust.add_bundle(signed_bundle())
    trust.set_revocations(signed_revocations(2, _stolen()))
    with pytest.raises(Revoked, match="revoked key signs nothing"):
        trust.add_bundle(signed_bundle(ITA, 2, entry(THIEF_ENC)))
    assert [] == _kids(trust)
    assert [] == _kids(trust, at=NOW - DAY)


def test_revoked_signing_key_signs_nothing_whatever_revoked_at_says() -> None:
    """A bundle is refused even where revoked_at is later: its signing time is the signer's."""
    trust = store()
    trust.set_revocations(signed_revocations(2, _stolen(at=NOW + DAY)))
    with pytest.raises(Revoked):
        trust.add_bundle(signed_bundle(ITA, 1, entry(THIEF_ENC)))
    assert {} == dict(trust.bundles)


def test_held_bundle_and_subscriptions_are_dropped_when_their_signing_key_is_revoked() -> None:
    """A revocation naming the signing key drops the bundle and subscriptions it signed."""
    trust = store()
    trust.add_bundle(signed_bundle())
    trust.set_subscriptions(sign_document(_subs(), ITA, AGENCY))
    assert [ITA_ENC.kid] == _kids(trust)
    trust.set_revocations(signed_revocations(2, _stolen()))
    assert ([], {}, {}) == (_kids(trust), dict(trust.bundles), dict(trust.subscriptions))


def test_revoking_an_encryption_key_keeps_the_bundle_that_lists_it() -> None:
    """Revoking one encryption key drops only that key, not the bundle its signer made."""
    spare = encryption_key(AGENCY, "spare")
    trust = store()
    trust.add_bundle(signed_bundle(ITA, 1, entry(), entry(spare, not_before=NOW - 2 * DAY)))
    trust.set_revocations(signed_revocations(2, _stolen(ITA_ENC.kid)))
    assert [spare.kid] == _kids(trust)


def test_new_certificate_with_a_new_key_drops_what_the_old_key_signed() -> None:
    """A new certificate (new serial, new signing key) drops the old key's bundle and
    subscriptions; bundles signed by the old key are refused, the new key's are used."""
    trust = store()
    trust.add_bundle(signed_bundle())
    trust.set_subscriptions(sign_document(_subs(), ITA, AGENCY))
    trust.add_certificate(signed_cert(NEW_ITA, serial=2))
    assert ([], {}, {}) == (_kids(trust), dict(trust.bundles), dict(trust.subscriptions))
    with pytest.raises(UnknownIssuer, match="certifies key"):
        trust.add_bundle(signed_bundle(ITA, 2, entry(THIEF_ENC)))
    fresh = encryption_key(AGENCY, "fresh")
    trust.add_bundle(sign_document(bundle(AGENCY, 2, entry(fresh)), NEW_ITA, AGENCY))
    assert [fresh.kid] == _kids(trust)


def test_same_key_in_a_renewed_certificate_keeps_the_bundle() -> None:
    """A renewed certificate for the same signing key changes nothing the key signed."""
    trust = store()
    trust.add_bundle(signed_bundle())
    trust.add_certificate(signed_cert(ITA, serial=2, not_after=NOW + 60 * DAY))
    assert [ITA_ENC.kid] == _kids(trust)


def test_standing_policy_goes_with_its_revoked_or_replaced_signing_key() -> None:
    """The policy view drops a standing policy whose signing key is revoked or replaced, and
    refuses one signed by such a key."""
    for change in ("revoked", "replaced"):
        trust = store()
        view = PolicyStore(ROOT_KEY.public, trust)
        view.set_agency_policy(_standing())
        assert [AGENCY] == sorted(view.agency_policies), change
        if change == "revoked":
            trust.set_revocations(signed_revocations(2, _stolen()))
        else:
            trust.add_certificate(signed_cert(NEW_ITA, serial=2))
        assert {} == view.agency_policies, change
        with pytest.raises((Revoked, UnknownIssuer)):
            view.set_agency_policy(_standing(ITA, version=3))
        assert {} == view.agency_policies, change


@pytest.mark.parametrize("kind", ["key-bundle", "subscriptions"])
def test_revoked_key_documents_do_not_come_back_on_load(kind: str) -> None:
    """load takes certificates, then revocations, then the rest, whatever order they come in:
    a document signed by the revoked key is refused, never held."""
    signed = {
        "key-bundle": signed_bundle(ITA, 2, entry(THIEF_ENC)),
        "subscriptions": sign_document(_subs(), ITA, AGENCY),
    }[kind]
    trust = TrustStore(ROOT_KEY.public, clock=lambda: NOW)
    with pytest.raises(Revoked, match=f"{AGENCY} is signed with key {ITA.kid}"):
        trust.load([signed, signed_revocations(2, _stolen()), signed_cert()])
    assert ([], {}) == (_kids(trust), dict(trust.subscriptions))


def test_member_signer_names_the_current_valid_key_only() -> None:
    """member_signer: the certificate for the current key; refusals for a revoked, replaced
    or out-of-validity key."""
    trust = store()
    assert cert() == trust.member_signer(AGENCY, ITA.kid, NOW)
    with pytest.raises(UnknownIssuer):
        trust.member_signer(AGENCY, NEW_ITA.kid, NOW)
    with pytest.raises(NotValidNow, match="not at"):
        trust.member_signer(AGENCY, ITA.kid, NOW + 31 * DAY)
    trust.set_revocations(signed_revocations(2, _stolen(None)))
    with pytest.raises(Revoked):
        trust.member_signer(AGENCY, ITA.kid, NOW)


# --- item 6: small-order X25519 keys -----------------------------------------------------------

_P = 2**255 - 19
_ORDER_8 = (
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
)
# The 12 encodings of small-order points cr.yp.to/ecdh.html#validate lists, and the seven of
# libsodium's list with the top bit set (RFC 7748 masks it, so they are the same points):
# every Diffie-Hellman with one gives the all-zero secret, so no publisher can seal to it.
_SEVEN = [0, 1, *_ORDER_8, _P - 1, _P, _P + 1]
SMALL_ORDER = [*_SEVEN, *(_P + u for u in _ORDER_8), 2 * _P - 1, 2 * _P, 2 * _P + 1,
               *(2**255 + u for u in _SEVEN)]  # fmt: skip


@pytest.mark.parametrize("value", SMALL_ORDER, ids=[f"u{i}" for i in range(len(SMALL_ORDER))])
def test_bundle_with_a_small_order_key_is_refused(value: int) -> None:
    """A bundle listing a small-order X25519 key is KeyNotValid naming the agency and kid."""
    raw = value.to_bytes(32, "little")
    kid = crypto.key_id(raw)
    bad = EncryptionKeyEntry(kid=kid, x25519=raw.hex(), not_before=NOW - DAY, not_after=NOW + DAY)
    trust = store()
    trust.add_bundle(signed_bundle())
    with pytest.raises(
        KeyNotValid, match=f"{AGENCY}: encryption key {kid} is (a small-order|not a canonical)"
    ):
        trust.add_bundle(signed_bundle(ITA, 2, entry(), bad))
    assert [ITA_ENC.kid] == _kids(trust)


# --- live: a real nats-server, the directory bucket, a node's Directory -------------------------


async def _put(url: str, key: str, signed: Mapping[str, Any]) -> None:
    """Write a document straight into the bucket, as any writer of it can (no local checks)."""
    nc = await nats.connect(url)
    kv = await nc.jetstream().key_value("PLM_DIR")
    await kv.put(key, json.dumps(signed, sort_keys=True).encode())
    await nc.close()


def _live_revocations(fed: DevFederation, *entries: RevocationEntry) -> dict[str, Any]:
    rl = RevocationList(seq=2, issued=datetime.now(UTC), entries=list(entries))
    return sign_document(rl, fed.root, ROOT)


def _bundle_seq2(key: SigningKey, enc: EncryptionKey) -> dict[str, Any]:
    """ITA-GDF's bundle seq 2 listing ``enc``, signed with ``key``."""
    return sign_document(bundle_for(AGENCY, [enc.public], now=datetime.now(UTC), days=30, seq=2),
                         key, AGENCY)  # fmt: skip


async def test_live_thief_of_a_revoked_key_gets_no_encryption_key(
    federated_url: str,
    fed: DevFederation,
) -> None:
    """On a live directory: the revocation of ITA-GDF's signing key drops the bundle it signed,
    the thief's bundle is refused, and a restarted process does not take it either."""
    url = federated_url
    ita = fed.agencies[AGENCY]
    thief = EncryptionKey.generate(AGENCY)
    nc = await nats.connect(url)
    directory = await follow_directory(nc, fed)
    trust = directory.store
    try:
        assert [ita.encryption.kid] == _kids(trust, at=datetime.now(UTC))
        stolen = RevocationEntry(agency=AGENCY, kid=ita.signing.kid, reason="stolen",
                                 revoked_at=datetime.now(UTC))  # fmt: skip
        await _put(url, "revocations", _live_revocations(fed, stolen))

        async def revoked() -> bool:
            return trust.revocations.seq == 2

        await wait_for(revoked, within=10)
        # The bundle the stolen key signed must go with the revocation.
        after_revocation = _kids(trust, at=datetime.now(UTC))

        await _put(url, "bundle.ITA-GDF", _bundle_seq2(ita.signing, thief))

        async def settled() -> bool:
            held = trust.bundles.get(AGENCY)
            return "bundle.ITA-GDF" in directory.rejected or (held is not None and held.seq == 2)

        await wait_for(settled, within=10)
        after_theft = (
            _kids(trust, at=datetime.now(UTC)),
            "revoked" in directory.rejected.get("bundle.ITA-GDF", ""),
        )
    finally:
        await directory.close()

    # A restart reads the bucket again: certificates, revocations, then the thief's bundle.
    again = TrustStore(fed.root.public)
    restarted = Directory(nc.jetstream(), again, PolicyStore(fed.root.public, again))
    await restarted.load()
    await nc.close()
    after_restart = (
        [k.kid for k in again.encryption_keys(AGENCY, datetime.now(UTC))],
        "bundle.ITA-GDF" in restarted.rejected,
    )
    assert ([], ([], True), ([], True)) == (after_revocation, after_theft, after_restart)


async def test_live_new_certificate_drops_the_old_keys_bundle(
    federated_url: str, fed: DevFederation
) -> None:
    """On a live directory: the root certifies a new signing key for ITA-GDF; the bundle the
    old key signed stops being used at once, and only a bundle by the new key is taken."""
    url = federated_url
    ita = fed.agencies[AGENCY]
    nc = await nats.connect(url)
    directory = await follow_directory(nc, fed)
    trust = directory.store
    try:
        assert [ita.encryption.kid] == _kids(trust, at=datetime.now(UTC))
        new_key = SigningKey.generate(AGENCY)
        held = trust.members[AGENCY]
        renewed = held.model_copy(
            update={"serial": held.serial + 1, "signing_key": new_key.public.raw.hex()}
        )
        await _put(url, "cert.ITA-GDF", sign_document(renewed, fed.root, ROOT))

        async def rotated() -> bool:
            return trust.members[AGENCY].serial == held.serial + 1

        await wait_for(rotated, within=10)
        assert [] == _kids(trust, at=datetime.now(UTC))

        fresh = EncryptionKey.generate(AGENCY)
        await _put(url, "bundle.ITA-GDF", _bundle_seq2(new_key, fresh))

        async def taken() -> bool:
            return (
                bool(_kids(trust, at=datetime.now(UTC))) or "bundle.ITA-GDF" in directory.rejected
            )

        await wait_for(taken, within=10)
        assert [fresh.kid] == _kids(trust, at=datetime.now(UTC))
    finally:
        await directory.close()
        await nc.close()


def test_revoking_another_agency_leaves_this_bundle_in_use() -> None:
    """Control: revoking MLT-AFM leaves ITA-GDF's bundle and its key in use."""
    trust = store(cert(), cert(signing_key("MLT-AFM")))
    trust.add_bundle(signed_bundle())
    other = RevocationEntry(agency="MLT-AFM", kid=None, reason="left", revoked_at=NOW - DAY)
    trust.set_revocations(signed_revocations(2, other))
    assert [ITA_ENC.kid] == _kids(trust)


def test_genuine_keys_are_accepted() -> None:
    """Control for the small-order test: genuine X25519 keys in a bundle are accepted."""
    trust = store()
    trust.add_bundle(signed_bundle(ITA, 1, entry(), entry(THIEF_ENC)))
    assert sorted([ITA_ENC.kid, THIEF_ENC.kid]) == sorted(_kids(trust))
