"""protocol.crypto: HPKE interop with cryptography both ways, RFC 9180, signatures, AEAD."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from hypothesis import given
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError

from protocol import crypto
from protocol.envelope import _seal
from tests.envelope._factories import FEW, FUZZ, seed

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
INFOS = [b"", b"palermo/v1/stanza\x00", b"x" * 200, bytes(range(256)), "info ünïcode".encode()]
CONTENT_KEY = seed("content key")
RECIPIENT = X25519PrivateKey.from_private_bytes(seed("recipient"))
EPHEMERAL = X25519PrivateKey.from_private_bytes(seed("ephemeral"))

# RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
A11 = {
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "skEm": "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
    "pkEm": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
    "skRm": "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
    "pkRm": "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
    "shared_secret": "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
    "key_schedule_context": "00725611c9d98c07c03f60095cd32d400d8347d45ed67097bbad50fc56da742d07c"
    "b6cffde367bb0565ba28bb02c90744a20f5ef37f30523526106f637abb05449",
    "secret": "12fff91991e93b48de37e7daddb52981084bd8aa64289c3788471d9a9712f397",
    "key": "4531685d41d65f03dc48f6b8302c05b0",
    "base_nonce": "56d890e5accaaf011cff4b7d",
    "aad": "436f756e742d30",
    "pt": "4265617574792069732074727574682c20747275746820626561757479",
    "ct": "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c5"
    "12a",
}
A11_SUITE = b"HPKE" + bytes.fromhex("002000010001")


def _h(name: str) -> bytes:
    return bytes.fromhex(A11[name])


# --- HPKE interop with cryptography -----------------------------------------------------------


@pytest.mark.parametrize("info", INFOS)
def test_seal_from_parts_opens_with_cryptography(info: bytes) -> None:
    """Our RFC-written seal (fixed ephemeral) opens with cryptography's Suite.decrypt."""
    sealed = crypto.hpke_seal_x25519(RECIPIENT.public_key(), info, CONTENT_KEY, EPHEMERAL)
    assert CONTENT_KEY == SUITE.decrypt(sealed, RECIPIENT, info=info)


@pytest.mark.parametrize("info", INFOS)
def test_cryptography_encrypt_opens_with_ours(info: bytes) -> None:
    """cryptography's Suite.encrypt output opens with our hpke_open_x25519."""
    sealed = SUITE.encrypt(CONTENT_KEY, RECIPIENT.public_key(), info=info)
    assert CONTENT_KEY == crypto.hpke_open_x25519(RECIPIENT, info, sealed)


@pytest.mark.parametrize("info", INFOS)
def test_production_seal_opens_with_cryptography(info: bytes) -> None:
    """The production path (no ephemeral given) also opens with cryptography's Suite.decrypt."""
    sealed = crypto.hpke_seal_x25519(RECIPIENT.public_key(), info, CONTENT_KEY, None)
    assert CONTENT_KEY == SUITE.decrypt(sealed, RECIPIENT, info=info)
    assert CONTENT_KEY == crypto.hpke_open_x25519(RECIPIENT, info, sealed)


@FEW
@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=64),
    st.binary(max_size=300),
)
def test_interop_property(r_seed: bytes, e_seed: bytes, info: bytes, plaintext: bytes) -> None:
    """For any keys, info and plaintext, the RFC-written seal and cryptography agree."""
    recipient = X25519PrivateKey.from_private_bytes(r_seed)
    sealed = crypto.hpke_seal_x25519(
        recipient.public_key(), info, plaintext, X25519PrivateKey.from_private_bytes(e_seed)
    )
    assert plaintext == SUITE.decrypt(sealed, recipient, info=info)


@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=6, unique=True),
    st.binary(min_size=32, max_size=32),
)
@FEW
def test_one_ephemeral_for_many_recipients_is_rfc_9180_for_each(
    r_seeds: list[bytes], e_seed: bytes
) -> None:
    """Each stanza of a shared-ephemeral seal is SealBase with that ephemeral for its recipient:
    cryptography opens it with that recipient's key and info, and with no other."""
    recipients = [X25519PrivateKey.from_private_bytes(r) for r in r_seeds]
    infos = [b"info %d" % i for i in range(len(recipients))]
    eph = X25519PrivateKey.from_private_bytes(e_seed)
    sealed = crypto.hpke_seal_x25519_many(
        [(r.public_key(), i) for r, i in zip(recipients, infos, strict=True)], CONTENT_KEY, eph
    )
    for i, (recipient, info, one) in enumerate(zip(recipients, infos, sealed, strict=True)):
        assert eph.public_key().public_bytes_raw() == one[:32]
        assert one == crypto.hpke_seal_x25519(recipient.public_key(), info, CONTENT_KEY, eph)
        assert CONTENT_KEY == SUITE.decrypt(one, recipient, info=info)
        other = recipients[(i + 1) % len(recipients)]
        if other.public_key() != recipient.public_key():
            with pytest.raises(crypto.AuthError):
                crypto.hpke_open_x25519(other, info, one)


def test_fixed_ephemeral_is_deterministic() -> None:
    """A fixed ephemeral key gives byte-identical output twice."""
    first = crypto.hpke_seal_x25519(RECIPIENT.public_key(), b"i", CONTENT_KEY, EPHEMERAL)
    second = crypto.hpke_seal_x25519(RECIPIENT.public_key(), b"i", CONTENT_KEY, EPHEMERAL)
    assert first == second


def test_fresh_ephemeral_differs_each_time() -> None:
    """Without an injected ephemeral key two seals of the same input differ."""
    first = crypto.hpke_seal_x25519(RECIPIENT.public_key(), b"i", CONTENT_KEY, None)
    second = crypto.hpke_seal_x25519(RECIPIENT.public_key(), b"i", CONTENT_KEY, None)
    assert first != second


def test_stanza_layout() -> None:
    """enc || ct: the first 32 bytes are the ephemeral public key, 80 bytes in all."""
    sealed = crypto.hpke_seal_x25519(RECIPIENT.public_key(), b"i", CONTENT_KEY, EPHEMERAL)
    assert crypto.HPKE_X25519_STANZA_LEN == len(sealed)
    assert 80 == crypto.HPKE_X25519_STANZA_LEN
    assert EPHEMERAL.public_key().public_bytes_raw() == sealed[:32]


# --- RFC 9180 structure -----------------------------------------------------------------------


def test_suite_identifiers_are_rfc_9180() -> None:
    """KEM 0x0020, KDF 0x0001, AEAD 0x0002 (AES-256-GCM), written as the RFC's suite_id."""
    assert b"KEM\x00\x20" == crypto._KEM_SUITE
    assert b"HPKE\x00\x20\x00\x01\x00\x02" == crypto._HPKE_SUITE


def test_rfc_a11_keys_and_enc() -> None:
    """A.1.1: pkEm derives from skEm and our seal's enc is exactly pkEm."""
    eph = X25519PrivateKey.from_private_bytes(_h("skEm"))
    recipient = X25519PrivateKey.from_private_bytes(_h("skRm"))
    assert _h("pkRm") == recipient.public_key().public_bytes_raw()
    sealed = crypto.hpke_seal_x25519(recipient.public_key(), _h("info"), b"pt", eph)
    assert _h("pkEm") == sealed[:32]


def test_rfc_a11_kem_shared_secret() -> None:
    """A.1.1: ExtractAndExpand with our labelled HKDF gives the RFC's shared_secret."""
    eph = X25519PrivateKey.from_private_bytes(_h("skEm"))
    dh = eph.exchange(X25519PrivateKey.from_private_bytes(_h("skRm")).public_key())
    eae_prk = crypto._labeled_extract(crypto._KEM_SUITE, b"", b"eae_prk", dh)
    kem_context = _h("pkEm") + _h("pkRm")
    shared = crypto._labeled_expand(crypto._KEM_SUITE, eae_prk, b"shared_secret", kem_context, 32)
    assert _h("shared_secret") == shared


def test_rfc_a11_key_schedule_and_ciphertext() -> None:
    """A.1.1: key schedule context, secret, key, base_nonce and the first ciphertext match."""
    shared = _h("shared_secret")
    psk_id_hash = crypto._labeled_extract(A11_SUITE, b"", b"psk_id_hash", b"")
    info_hash = crypto._labeled_extract(A11_SUITE, b"", b"info_hash", _h("info"))
    context = b"\x00" + psk_id_hash + info_hash
    secret = crypto._labeled_extract(A11_SUITE, shared, b"secret", b"")
    key = crypto._labeled_expand(A11_SUITE, secret, b"key", context, 16)
    nonce = crypto._labeled_expand(A11_SUITE, secret, b"base_nonce", context, 12)
    assert _h("key_schedule_context") == context
    assert _h("secret") == secret
    assert _h("key") == key
    assert _h("base_nonce") == nonce
    assert _h("ct") == AESGCM(key).encrypt(nonce, _h("pt"), _h("aad"))


def _independent_seal(recipient_pub: bytes, eph: X25519PrivateKey, info: bytes, pt: bytes) -> bytes:
    """RFC 9180 SealBase for suite (0x20, 1, 2) written again on cryptography's HKDF."""

    def extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt or bytes(32), b"HPKE-v1" + suite + label + ikm, "sha256").digest()

    def expand(suite: bytes, prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
        labeled = n.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info
        return HKDFExpand(hashes.SHA256(), n, labeled).derive(prk)

    kem, hpke_id = b"KEM\x00\x20", b"HPKE\x00\x20\x00\x01\x00\x02"
    enc = eph.public_key().public_bytes_raw()
    dh = eph.exchange(X25519PublicKey.from_public_bytes(recipient_pub))
    shared = expand(
        kem, extract(kem, b"", b"eae_prk", dh), b"shared_secret", enc + recipient_pub, 32
    )
    ctx = (
        b"\x00"
        + extract(hpke_id, b"", b"psk_id_hash", b"")
        + extract(hpke_id, b"", b"info_hash", info)
    )
    secret = extract(hpke_id, shared, b"secret", b"")
    key = expand(hpke_id, secret, b"key", ctx, 32)
    nonce = expand(hpke_id, secret, b"base_nonce", ctx, 12)
    return enc + AESGCM(key).encrypt(nonce, pt, None)


@pytest.mark.parametrize("info", INFOS)
def test_seal_matches_independent_rfc_computation(info: bytes) -> None:
    """Byte for byte equal to a second RFC 9180 SealBase written on cryptography's HKDFExpand."""
    expected = _independent_seal(RECIPIENT.public_key().public_bytes_raw(), EPHEMERAL, info, b"k")
    assert expected == crypto.hpke_seal_x25519(RECIPIENT.public_key(), info, b"k", EPHEMERAL)


def test_expand_refuses_more_than_one_block() -> None:
    """The single-block HKDF-Expand is never asked for more than 32 bytes."""
    with pytest.raises(AssertionError):
        crypto._expand(bytes(32), b"info", 33)


# --- HPKE failures ----------------------------------------------------------------------------


def _stanza(info: bytes = b"right") -> bytes:
    return crypto.hpke_seal_x25519(RECIPIENT.public_key(), info, CONTENT_KEY, EPHEMERAL)


def test_open_wrong_info_is_auth_error() -> None:
    """Another info string (another envelope, recipient or part) does not open."""
    with pytest.raises(crypto.AuthError) as err:
        crypto.hpke_open_x25519(RECIPIENT, b"wrong", _stanza())
    assert "stanza" == str(err.value)


def test_open_wrong_key_is_auth_error() -> None:
    """Another recipient's private key does not open."""
    other = X25519PrivateKey.from_private_bytes(seed("other"))
    with pytest.raises(crypto.AuthError):
        crypto.hpke_open_x25519(other, b"right", _stanza())


@pytest.mark.parametrize("length", [0, 1, 32, 79, 81, 200])
def test_open_wrong_length_is_auth_error(length: int) -> None:
    """Truncated or extended stanzas are refused on length before any key use."""
    data = (_stanza() * 3)[:length]
    with pytest.raises(crypto.AuthError) as err:
        crypto.hpke_open_x25519(RECIPIENT, b"right", data)
    assert "stanza length" == str(err.value)


@FUZZ
@given(st.integers(min_value=0, max_value=79), st.integers(min_value=1, max_value=255))
def test_open_any_flipped_byte_is_auth_error(index: int, mask: int) -> None:
    """Any changed byte of enc or ct gives AuthError, never another exception."""
    data = bytearray(_stanza())
    data[index] ^= mask
    with pytest.raises(crypto.AuthError):
        crypto.hpke_open_x25519(RECIPIENT, b"right", bytes(data))


@FEW
@given(st.binary(min_size=80, max_size=80))
def test_open_random_stanza_is_auth_error(data: bytes) -> None:
    """Random 80-byte stanzas (including low-order points) give AuthError only."""
    with pytest.raises(crypto.AuthError):
        crypto.hpke_open_x25519(RECIPIENT, b"right", data)


def test_open_all_zero_enc_is_auth_error() -> None:
    """An all-zero (low-order) ephemeral key is refused as AuthError, not ValueError."""
    with pytest.raises(crypto.AuthError):
        crypto.hpke_open_x25519(RECIPIENT, b"right", bytes(80))


# --- key ids, digests, signatures -------------------------------------------------------------


def test_key_id_is_16_hex_chars_and_stable() -> None:
    """key_id: 16 lower-case hex chars, the first 8 bytes of SHA-256 of the raw key."""
    raw = RECIPIENT.public_key().public_bytes_raw()
    kid = crypto.key_id(raw)
    assert re.fullmatch(r"[0-9a-f]{16}", kid)
    assert kid == crypto.key_id(raw)
    assert hashlib.sha256(raw).hexdigest()[:16] == kid


def test_key_ids_differ_between_keys() -> None:
    """Two different public keys get two different key ids."""
    a = RECIPIENT.public_key().public_bytes_raw()
    b = EPHEMERAL.public_key().public_bytes_raw()
    assert crypto.key_id(a) != crypto.key_id(b)


def test_digest_is_domain_prefixed_sha256() -> None:
    """digest(domain, data) is SHA-256(domain || data)."""
    assert hashlib.sha256(b"dom\x00data").digest() == crypto.digest(b"dom\x00", b"data")


SIGNING = Ed25519PrivateKey.from_private_bytes(seed("signing"))
DOMAIN_A = b"palermo/v1/envelope-signature\x00"
DOMAIN_B = b"palermo/v1/certificate\x00"


def test_sign_verify_round_trip() -> None:
    """A signature verifies under the same key, domain and data."""
    sig = crypto.sign(SIGNING, DOMAIN_A, b"data")
    assert 64 == len(sig)
    crypto.verify(SIGNING.public_key(), sig, DOMAIN_A, b"data")


def test_sign_is_ed25519_over_domain_separated_digest() -> None:
    """The signed message is SHA-256(domain || data), checked with plain Ed25519."""
    sig = crypto.sign(SIGNING, DOMAIN_A, b"data")
    SIGNING.public_key().verify(sig, hashlib.sha256(DOMAIN_A + b"data").digest())


def test_signature_under_one_domain_fails_under_another() -> None:
    """Domain separation: the same bytes signed for one purpose do not verify for another."""
    sig = crypto.sign(SIGNING, DOMAIN_A, b"data")
    with pytest.raises(crypto.AuthError) as err:
        crypto.verify(SIGNING.public_key(), sig, DOMAIN_B, b"data")
    assert isinstance(err.value.__cause__, BadSignatureError)


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=256))
@FEW
def test_signatures_are_the_bytes_openssl_gives(key_seed: bytes, data: bytes) -> None:
    """Ed25519 is deterministic: libsodium's signature is OpenSSL's, and each verifies the other."""
    key = Ed25519PrivateKey.from_private_bytes(key_seed)
    ours = crypto.sign(key, DOMAIN_A, data)
    assert ours == key.sign(crypto.digest(DOMAIN_A, data))
    key.public_key().verify(ours, crypto.digest(DOMAIN_A, data))
    crypto.verify(key.public_key(), key.sign(crypto.digest(DOMAIN_A, data)), DOMAIN_A, data)


# The identity point, encoded: a small-order public key. "Signatures" for it with R = identity
# and S = 0 hold for every message under cofactorless verification, which OpenSSL performs.
_IDENTITY = (1).to_bytes(32, "little")
_TRIVIAL_SIG = _IDENTITY + bytes(32)


def test_small_order_public_key_is_refused() -> None:
    """libsodium refuses a small-order signer key whose trivial signature OpenSSL accepts."""
    weak = Ed25519PublicKey.from_public_bytes(_IDENTITY)
    weak.verify(_TRIVIAL_SIG, b"any message")  # OpenSSL: "valid" for anything
    with pytest.raises(crypto.AuthError):
        crypto.verify(weak, _TRIVIAL_SIG, DOMAIN_A, b"any message")


def test_domains_end_in_nul_and_none_prefixes_another() -> None:
    """Every signature/hash domain and info prefix ends in NUL, so none prefixes another."""
    domains = [_seal.DOMAIN_SIGNATURE, _seal.DOMAIN_HEADER, _seal.INFO_STANZA]
    assert all(d.endswith(b"\x00") for d in domains)
    assert not any(a != b and b.startswith(a) for a in domains for b in domains)
    assert crypto.digest(_seal.DOMAIN_SIGNATURE, b"x") != crypto.digest(_seal.DOMAIN_HEADER, b"x")


@pytest.mark.parametrize(
    ("key", "data"),
    [
        (Ed25519PrivateKey.from_private_bytes(seed("other signer")), b"data"),
        (SIGNING, b"data!"),
    ],
)
def test_signature_wrong_key_or_data_fails(key: Ed25519PrivateKey, data: bytes) -> None:
    """Another key or other data does not verify."""
    sig = crypto.sign(SIGNING, DOMAIN_A, b"data")
    with pytest.raises(crypto.AuthError):
        crypto.verify(key.public_key(), sig, DOMAIN_A, data)


@pytest.mark.parametrize("sig", [b"", bytes(63), bytes(64), bytes(65)])
def test_malformed_signature_is_auth_error(sig: bytes) -> None:
    """Signatures of the wrong length or all zero give AuthError."""
    with pytest.raises(crypto.AuthError):
        crypto.verify(SIGNING.public_key(), sig, DOMAIN_A, b"data")


# --- content keys and AEAD --------------------------------------------------------------------


def test_derive_part_key_is_rfc_5869_hkdf() -> None:
    """Part key = HKDF-SHA256(salt=envelope id, ikm=K, info='palermo/v1/part-key\\0'||part)."""
    salt = bytes(range(16))
    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"palermo/v1/part-key\x00body"
    ).derive(CONTENT_KEY)
    assert expected == crypto.derive_part_key(CONTENT_KEY, salt, b"body")


def test_part_keys_differ_by_part_and_salt() -> None:
    """Body and section keys, and keys of two envelopes, are all different."""
    keys = {
        crypto.derive_part_key(CONTENT_KEY, b"a" * 16, b"body"),
        crypto.derive_part_key(CONTENT_KEY, b"a" * 16, b"section:x"),
        crypto.derive_part_key(CONTENT_KEY, b"b" * 16, b"body"),
    }
    assert 3 == len(keys)


def test_aead_round_trip_and_zero_nonce() -> None:
    """aead_seal is AES-256-GCM with a 12-byte zero nonce; aead_open inverts it."""
    key = seed("aead")
    sealed = crypto.aead_seal(key, b"plain", b"aad")
    assert AESGCM(key).encrypt(bytes(12), b"plain", b"aad") == sealed
    assert len(b"plain") + crypto.AEAD_TAG_LEN == len(sealed)
    assert b"plain" == crypto.aead_open(key, sealed, b"aad")


@pytest.mark.parametrize(
    ("key", "ciphertext_edit", "aad"),
    [
        (seed("other"), lambda c: c, b"aad"),
        (seed("aead"), lambda c: c, b"other aad"),
        (seed("aead"), lambda c: c[:-1], b"aad"),
        (seed("aead"), lambda c: c[:5], b"aad"),
        (seed("aead"), lambda c: b"", b"aad"),
        (seed("aead"), lambda c: bytes([c[0] ^ 1]) + c[1:], b"aad"),
    ],
    ids=["wrong-key", "wrong-aad", "truncated", "shorter-than-tag", "empty", "flipped"],
)
def test_aead_failures_are_auth_error(
    key: bytes, ciphertext_edit: Callable[[bytes], bytes], aad: bytes
) -> None:
    """Wrong key, wrong AAD, truncation or a flipped bit give AuthError('body')."""
    sealed = crypto.aead_seal(seed("aead"), b"plain", b"aad")
    with pytest.raises(crypto.AuthError) as err:
        crypto.aead_open(key, ciphertext_edit(sealed), aad)
    assert "body" == str(err.value)


def test_random_bytes_length_and_freshness() -> None:
    """random_bytes gives n bytes, different each call."""
    assert 32 == len(crypto.random_bytes(32))
    assert crypto.random_bytes(32) != crypto.random_bytes(32)


def test_seal_to_a_low_order_recipient_key_is_refused() -> None:
    """An all-zero X25519 key would give an all-zero shared secret: sealing refuses it."""
    with pytest.raises(ValueError, match="low-order"):
        crypto.hpke_seal_x25519(X25519PublicKey.from_public_bytes(bytes(32)), b"i", b"k", None)
