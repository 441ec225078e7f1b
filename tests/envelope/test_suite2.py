"""Suite 2 (hybrid ML-KEM-768 + X25519, X-Wing): what differs from suite 1.

The shared behaviour (round trips, tampering, forgery, every refusal) is test_seal.py run again
under suite 2 (test_seal_suite2.py); here: choosing the suite, stanza sizes, opening each stanza
with ``cryptography``'s own HPKE from the spec's description, and hybrid key files.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import msgpack
import pytest
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol import crypto
from protocol.envelope import (
    SUITE_MLKEM768_X25519,
    SUITE_X25519,
    choose_suite,
    decode,
    open_envelope,
    seal,
)
from protocol.envelope._format import Stanza
from protocol.keys import EncryptionKey, HybridPrivateKey, load_private_key, save_private_key
from schemas.errors import AuthenticationFailed, InputError, KeyFileError
from tests.envelope._factories import (
    NOW,
    READERS,
    SIGNER,
    SIGNERS,
    encryption_key,
    header,
    section_info,
)

HYBRID = {a: encryption_key(a, hybrid=True) for a in READERS}
CLASSIC = {a: encryption_key(a, hybrid=False) for a in READERS}
BODY, PERSONAL = b"report body", b"persons: driver"


def _seal(keys: dict[str, EncryptionKey], suite: int | None = None, sections: bool = True) -> bytes:
    readers = {"personal-data": (PERSONAL, [keys[READERS[0]].public])} if sections else {}
    hdr = header(READERS, sections=[section_info()] if sections else [])
    return seal(hdr, BODY, SIGNER, [k.public for k in keys.values()], readers, suite=suite)


def test_every_recipient_hybrid_gives_suite_2() -> None:
    env = decode(_seal(HYBRID))
    assert SUITE_MLKEM768_X25519 == env.suite
    assert {crypto.HPKE_HYBRID_STANZA_LEN} == {
        len(s.enc) for s in (*env.rcpt, *env.sections[0].rcpt)
    }
    assert 1168 == crypto.HPKE_HYBRID_STANZA_LEN


def test_one_classic_recipient_gives_suite_1_and_hybrid_keys_open_it() -> None:
    """An envelope has one suite: with one X25519-only recipient it is suite 1, wrapped to the
    X25519 part of the hybrid keys, which their holders open (decision 0035)."""
    mixed = {**HYBRID, READERS[2]: CLASSIC[READERS[2]]}
    data = _seal(mixed)
    assert SUITE_X25519 == decode(data).suite
    for agency in READERS:
        assert BODY == open_envelope(data, [mixed[agency]], SIGNERS, now=NOW).body
    assert SUITE_X25519 == choose_suite(k.public for k in mixed.values())
    assert SUITE_X25519 == choose_suite([])


def test_suite_2_required_names_the_agency_without_a_hybrid_key() -> None:
    mixed = {**HYBRID, READERS[2]: CLASSIC[READERS[2]]}
    with pytest.raises(InputError, match=f"{READERS[2]}.*keys rotate --pq"):
        _seal(mixed, suite=2)
    with pytest.raises(InputError, match="suite 3 does not exist"):
        _seal(HYBRID, suite=3)


def test_suite_1_on_request_for_hybrid_recipients() -> None:
    data = _seal(HYBRID, suite=1)
    assert SUITE_X25519 == decode(data).suite
    assert BODY == open_envelope(data, [HYBRID[READERS[1]]], SIGNERS, now=NOW).body


def test_hybrid_kid_covers_both_parts() -> None:
    key = HYBRID[READERS[0]]
    assert key.public.mlkem_raw is not None
    assert 1184 == len(key.public.mlkem_raw)
    assert crypto.key_id(key.public.mlkem_raw + key.public.raw) == key.kid
    assert CLASSIC[READERS[0]].kid == crypto.key_id(key.public.raw) != key.kid


def test_suite_2_stanza_for_an_x25519_only_key_fails_authentication() -> None:
    """A receiver whose key under that kid is X25519 only (a forged or confused bundle) fails as
    one auth failure, never a crash."""
    data = _seal(HYBRID, sections=False)
    impostor = EncryptionKey.__new__(EncryptionKey)
    real = HYBRID[READERS[1]]
    for name, value in (
        ("agency", real.agency), ("private", real.private), ("mlkem", None),
        ("public", real.public), ("kid", real.kid), ("hybrid_private", None),
    ):  # fmt: skip
        object.__setattr__(impostor, name, value)
    with pytest.raises(AuthenticationFailed):
        open_envelope(data, [impostor], SIGNERS, now=NOW)


def test_every_stanza_opens_from_the_spec_with_cryptography_only() -> None:
    """Each suite-2 stanza is one RFC 9180 base-mode ciphertext (X-Wing, HKDF-SHA256,
    AES-256-GCM) that ``cryptography``'s HPKE opens; part keys and AAD as in suite 1."""
    data = _seal(HYBRID)
    env = decode(data)
    h = hashlib.sha256(b"palermo/v1/header\x00" + msgpack.packb(env.hdr)).digest()
    envelope_id = uuid.UUID(env.hdr["id"]).bytes
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)

    def part(agency: str, stanzas: tuple[Stanza, ...], name: bytes, ciphertext: bytes) -> bytes:
        me = HYBRID[agency]
        (stanza,) = [s for s in stanzas if s.agency == agency]
        info = b"\x00".join(
            [b"palermo/v1/stanza\x00" + envelope_id, agency.encode(), me.kid.encode(), name]
        )
        private = hpke.MLKEM768X25519PrivateKey(me.mlkem, me.private)
        content_key = suite.decrypt(stanza.enc, private, info=info)
        key = HKDF(
            hashes.SHA256(), 32, salt=envelope_id, info=b"palermo/v1/part-key\x00" + name
        ).derive(content_key)
        return AESGCM(key).decrypt(bytes(12), ciphertext, h + b"\x00" + name)

    for agency in READERS:
        assert BODY == part(agency, env.rcpt, b"body", env.body)
    sec = env.sections[0]
    assert PERSONAL == part(READERS[0], sec.rcpt, b"section:personal-data", sec.body)


def test_no_two_stanzas_share_a_kem_ciphertext() -> None:
    env = decode(_seal(HYBRID))
    encs = [s.enc[:1120] for s in (*env.rcpt, *env.sections[0].rcpt)]
    assert len(encs) == len(set(encs))


@pytest.mark.parametrize("passphrase", [None, b"pq passphrase"])
def test_hybrid_key_file_round_trip(tmp_path: Path, passphrase: bytes | None) -> None:
    from protocol.keys import KdfParams

    key = HYBRID[READERS[0]]
    path = tmp_path / "hybrid.pem"
    save_private_key(path, key.private_key(), passphrase, kdf=KdfParams(1, 1, 8))
    loaded = load_private_key(path, passphrase)
    assert isinstance(loaded, HybridPrivateKey)
    assert key.kid == EncryptionKey.from_private(READERS[0], loaded).kid
    if passphrase is None:
        assert 2 == path.read_bytes().count(b"-----BEGIN PRIVATE KEY-----")


def test_key_file_with_two_keys_of_the_wrong_kinds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.pem"
    one = CLASSIC[READERS[0]].private_key()
    save_private_key(tmp_path / "a.pem", one)
    path.write_bytes((tmp_path / "a.pem").read_bytes() * 2)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="holds 2 keys"):
        load_private_key(path)


def test_hybrid_open_refuses_a_stanza_of_the_wrong_length_before_any_key_use() -> None:
    key = HYBRID[READERS[0]]
    assert key.hybrid
    assert key.hybrid_private is not None
    with pytest.raises(crypto.AuthError, match="length"):
        crypto.hpke_open_hybrid(key.hybrid_private, b"info", bytes(80))
    with pytest.raises(crypto.AuthError, match="length"):
        crypto.hpke_open_x25519(key.private, b"info", bytes(crypto.HPKE_HYBRID_STANZA_LEN))


def test_split_der_reads_long_lengths_and_leaves_the_rest_to_the_parser() -> None:
    from protocol import keys

    long = b"\x30\x81\x80" + bytes(128)
    assert [long, b"\x30\x01x", b"junk"] == keys._split_der(long + b"\x30\x01x" + b"junk")


@pytest.mark.parametrize("length", [0, 80, 1120, 1167, 1169])
def test_suite_2_stanza_of_any_other_length_is_malformed(length: int) -> None:
    """A suite-2 stanza is exactly 1,168 bytes (MUST-012), checked before any key is used."""
    from dataclasses import replace

    from schemas.errors import MalformedEnvelope
    from tests.envelope._factories import resign

    env = decode(_seal(HYBRID, sections=False))
    short = replace(env.rcpt[0], enc=bytes(length))
    with pytest.raises(MalformedEnvelope, match="suite 2 stanzas are 1168"):
        decode(resign(replace(env, rcpt=(short, *env.rcpt[1:]))))
