"""protocol.envelope._seal: seal/open round trips, sections, tampering, forgery, every refusal."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from protocol.envelope import _format, _seal
from protocol.envelope._format import Section, Stanza, decode, encode
from protocol.envelope._seal import (
    DEFAULT_MAX_CLOCK_SKEW_MS,
    StaticSigners,
    check_signature,
    inspect_envelope,
    open_envelope,
    seal,
    verify_envelope,
)
from protocol.keys import PublicEncryptionKey, SigningKey
from schemas import Handling
from schemas.errors import (
    AuthenticationFailed,
    ClockSkew,
    EnvelopeError,
    EnvelopeTooLarge,
    HeaderInvalid,
    InputError,
    KeyNotValid,
    MalformedEnvelope,
    NonCanonicalEncoding,
    NotARecipient,
    PalermoError,
    Replayed,
    UnknownSigner,
)
from tests.envelope._factories import (
    FEW,
    FUZZ,
    KEYS,
    NOW,
    POOL,
    READERS,
    SIGNER,
    SIGNERS,
    encryption_key,
    flip,
    header,
    open_as,
    publics,
    resign,
    sealed,
    section_info,
    signing_key,
)

BODY = b"report body " * 10
PERSONAL = b"persons: driver, nationality LBY"
# Three readers; the personal-data section is wrapped for the first only.
SEALED = sealed(READERS, BODY, sections={"personal-data": (PERSONAL, READERS[:1])})
ENV = decode(SEALED)
OUTSIDER = "AUS-ABF"


def _auth_failed(data: bytes, agency: str = READERS[0], **kwargs: Any) -> str:
    with pytest.raises(AuthenticationFailed) as err:
        open_as(data, agency, **kwargs)
    assert "auth_failed" == err.value.code
    return err.value.stage


def _typed(exc: BaseException) -> None:
    assert isinstance(exc, EnvelopeError)
    assert type(exc) is not EnvelopeError


# --- round trips ------------------------------------------------------------------------------


def test_every_recipient_opens_the_body() -> None:
    """Each of the three recipients opens the body and sees the signed header."""
    for agency in READERS:
        opened = open_as(SEALED, agency)
        assert BODY == opened.body
        assert ENV.hdr["id"] == opened.header.id
        assert "ITA-GDF" == opened.header.originator


def test_section_opened_by_its_reader_and_withheld_from_others() -> None:
    """The section's reader gets it; the other recipients get the body and see it withheld."""
    first = open_as(SEALED, READERS[0])
    assert {"personal-data": PERSONAL} == dict(first.sections)
    assert () == first.withheld
    for agency in READERS[1:]:
        opened = open_as(SEALED, agency)
        assert {} == dict(opened.sections)
        assert ("personal-data",) == opened.withheld
        assert BODY == opened.body


@FEW
@given(st.binary(max_size=2048), st.sets(st.sampled_from(POOL), min_size=1, max_size=20))
def test_round_trip_random_bodies_and_recipient_sets(body: bytes, recipients: set[str]) -> None:
    """For any body and 1..20 recipients, every recipient opens exactly that body."""
    data = sealed(sorted(recipients), body)
    for agency in recipients:
        assert body == open_as(data, agency).body
    for agency in set(POOL) - recipients:
        with pytest.raises(NotARecipient):
            open_as(data, agency)


@FEW
@given(
    st.sets(st.sampled_from(POOL), min_size=1, max_size=12).flatmap(
        lambda rs: st.tuples(
            st.just(sorted(rs)),
            st.sets(st.sampled_from(sorted(rs))),
            st.sets(st.sampled_from(sorted(rs))),
        )
    ),
    st.binary(max_size=200),
)
def test_sections_for_random_subsets(
    choice: tuple[list[str], set[str], set[str]], plain: bytes
) -> None:
    """Each section opens for exactly its readers and is reported withheld for the others."""
    recipients, pd_readers, pp_readers = choice
    sections = {
        "personal-data": (plain, sorted(pd_readers)),
        "protected-persons": (plain[::-1], sorted(pp_readers)),
    }
    data = sealed(recipients, b"body", sections=sections)
    for agency in recipients:
        opened = open_as(data, agency)
        expected_open = {
            sid: text for sid, (text, readers) in sections.items() if agency in readers
        }
        assert expected_open == dict(opened.sections)
        assert tuple(sorted(set(sections) - set(expected_open))) == opened.withheld


def test_empty_body_and_empty_section() -> None:
    """Empty plaintexts seal and open (body = bare 16-byte tag)."""
    data = sealed(READERS, b"", sections={"personal-data": (b"", READERS)})
    opened = open_as(data, READERS[1])
    assert (b"", {"personal-data": b""}) == (opened.body, dict(opened.sections))


def test_opened_repr_hides_plaintext() -> None:
    """Opened's repr shows neither the body nor the section plaintexts."""
    text = repr(open_as(SEALED, READERS[0]))
    assert "report body" not in text
    assert "persons" not in text


def test_verify_envelope_is_the_broker_view() -> None:
    """verify_envelope checks everything but decryption and reports the wrapped agencies."""
    verified = verify_envelope(SEALED, SIGNERS, now=NOW)
    assert len(SEALED) == verified.size
    assert ENV == verified.envelope
    assert frozenset(READERS) == verified.stanza_agencies()
    assert frozenset(READERS[:1]) == verified.stanza_agencies("personal-data")
    assert frozenset() == verified.stanza_agencies("no-such-section")


def test_inspect_then_check_signature() -> None:
    """inspect_envelope + check_signature equal verify_envelope; a bad signed part fails."""
    item = inspect_envelope(SEALED, SIGNERS, now=NOW)
    assert _format.signed_prefix(SEALED) == item.signed
    assert verify_envelope(SEALED, SIGNERS, now=NOW) == check_signature(item)
    with pytest.raises(AuthenticationFailed) as err:
        check_signature(replace(item, signed=item.signed + b"x"))
    assert "signature" == err.value.stage


def test_key_rotation_either_key_opens() -> None:
    """An agency holding its old and new keys opens envelopes wrapped for either."""
    old, new = encryption_key("MLT-AFM"), encryption_key("MLT-AFM", 1)
    hdr = header(["MLT-AFM"])
    for wrapped_for in ([old], [new], [old, new]):
        data = seal(hdr, BODY, SIGNER, [k.public for k in wrapped_for])
        assert BODY == open_envelope(data, [old, new], SIGNERS, now=NOW).body
        assert BODY == open_envelope(data, [wrapped_for[-1]], SIGNERS, now=NOW).body


def test_right_agency_wrong_kid_is_not_a_recipient() -> None:
    """A key of the right agency but another kid finds no stanza: NotARecipient, naming the
    key it was sealed for and the rotation advice (the one case where it applies)."""
    other = encryption_key(READERS[0], 7)
    with pytest.raises(NotARecipient) as err:
        open_envelope(SEALED, [other], SIGNERS, now=NOW)
    assert KEYS[READERS[0]].kid in err.value.reason
    assert other.kid in err.value.reason
    assert "key rotation" in err.value.reason


def test_non_recipient_is_not_a_recipient() -> None:
    """An agency with no stanza gets NotARecipient naming the envelope and itself, and no
    advice about key rotation: there was none (issue 15 item 10)."""
    with pytest.raises(NotARecipient) as err:
        open_as(SEALED, OUTSIDER)
    assert ENV.hdr["id"] in err.value.reason
    assert OUTSIDER in err.value.reason
    assert "not sealed for this agency" in err.value.reason
    assert "rotat" not in err.value.reason
    assert "not_a_recipient" == err.value.code


def test_empty_identity_is_not_a_recipient() -> None:
    """No keys at all: NotARecipient."""
    with pytest.raises(NotARecipient):
        open_envelope(SEALED, [], SIGNERS, now=NOW)


def test_fixed_randomness_gives_identical_envelopes() -> None:
    """With content keys and ephemerals fixed, sealing is byte for byte reproducible."""

    def rand() -> _seal._Randomness:
        return _seal._Randomness(
            content_keys=[bytes([i]) * 32 for i in range(4)],
            ephemerals=[X25519PrivateKey.from_private_bytes(bytes([i + 9]) * 32) for i in range(8)],
        )

    hdr = header(READERS)
    first = seal(hdr, BODY, SIGNER, publics(READERS), _randomness=rand())
    assert first == seal(hdr, BODY, SIGNER, publics(READERS), _randomness=rand())
    assert first != seal(hdr, BODY, SIGNER, publics(READERS))


# --- independent check of the spec (docs/envelope-v1.md section 3) ----------------------------


def test_envelope_opens_from_the_spec_with_cryptography_only() -> None:
    """Signature, header hash, stanza info, part key and AAD are as the spec describes."""
    env = ENV
    signed = _format.signed_prefix(SEALED)
    SIGNER.public.key.verify(
        env.sig, hashlib.sha256(b"palermo/v1/envelope-signature\x00" + signed).digest()
    )
    h = hashlib.sha256(b"palermo/v1/header\x00" + msgpack.packb(env.hdr)).digest()
    envelope_id = uuid.UUID(env.hdr["id"]).bytes
    agency = READERS[0]
    me = KEYS[agency]
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)

    def part_plaintext(stanzas: tuple[Stanza, ...], part: bytes, ciphertext: bytes) -> bytes:
        (stanza,) = [s for s in stanzas if s.agency == agency]
        info = (
            b"palermo/v1/stanza\x00"
            + envelope_id
            + b"\x00"
            + agency.encode()
            + b"\x00"
            + me.kid.encode()
            + b"\x00"
            + part
        )
        content_key = suite.decrypt(stanza.enc, me.private, info=info)
        key = HKDF(
            hashes.SHA256(), 32, salt=envelope_id, info=b"palermo/v1/part-key\x00" + part
        ).derive(content_key)
        return AESGCM(key).decrypt(bytes(12), ciphertext, h + b"\x00" + part)

    assert BODY == part_plaintext(env.rcpt, b"body", env.body)
    sec = env.sections[0]
    assert PERSONAL == part_plaintext(sec.rcpt, b"section:personal-data", sec.body)


def test_header_digest_sorts_unless_told_it_is_sorted() -> None:
    """header_digest of an unsorted header equals that of its canonical form."""
    shuffled = dict(reversed(list(ENV.hdr.items())))
    assert _seal.header_digest(ENV.hdr, hdr_sorted=True) == _seal.header_digest(shuffled)


# --- tampering --------------------------------------------------------------------------------


@FUZZ
@given(st.integers(min_value=0, max_value=len(SEALED) - 1), st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_is_refused_with_a_typed_error(index: int, mask: int) -> None:
    """Changing any byte with any mask never opens and raises a typed EnvelopeError."""
    tampered = flip(SEALED, index, mask)
    with pytest.raises(PalermoError) as err:
        open_as(tampered, READERS[0])
    _typed(err.value)


@FUZZ
@given(st.integers(min_value=0, max_value=len(SEALED) - 1), st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_fails_broker_verification(index: int, mask: int) -> None:
    """The broker's verify_envelope refuses every single-byte change too."""
    with pytest.raises(PalermoError) as err:
        verify_envelope(flip(SEALED, index, mask), SIGNERS, now=NOW)
    _typed(err.value)


@pytest.mark.parametrize("where", ["body", "section", "stanza", "sig"])
def test_flip_in_each_part_fails_the_signature(where: str) -> None:
    """A flipped bit in the body, a section, a stanza or the signature: 'signature'."""
    offsets = {
        "body": SEALED.index(ENV.body) + 3,
        "section": SEALED.index(ENV.sections[0].body) + 3,
        "stanza": SEALED.index(ENV.rcpt[1].enc) + 40,
        "sig": len(SEALED) - 1,
    }
    assert "signature" == _auth_failed(flip(SEALED, offsets[where]))


def test_valid_header_change_fails_the_signature() -> None:
    """A header edit that still passes the schema (priority) is caught by the signature."""
    assert "priority" not in ENV.hdr  # routine, the default, is left out
    doctored = encode(replace(ENV, hdr={**ENV.hdr, "priority": "urgent"}))
    assert "signature" == _auth_failed(doctored)


def test_truncated_signed_envelope_is_malformed() -> None:
    """Dropping the last byte is malformed, not an auth failure."""
    with pytest.raises(MalformedEnvelope):
        open_as(SEALED[:-1], READERS[0])


def _without(agency: str, env: _format.Envelope = ENV) -> _format.Envelope:
    hdr = {**env.hdr, "recipients": [a for a in env.hdr["recipients"] if a != agency]}
    return replace(env, hdr=hdr, rcpt=tuple(s for s in env.rcpt if s.agency != agency))


def test_removing_a_recipient_from_header_and_stanzas_breaks_the_signature() -> None:
    """Dropping a recipient consistently from hdr and rcpt: AuthenticationFailed('signature')."""
    assert "signature" == _auth_failed(encode(_without(READERS[2])))


def test_adding_a_recipient_with_a_stanza_breaks_the_signature() -> None:
    """Adding an outsider to hdr.recipients with a stanza of its own: 'signature'."""
    stanza = Stanza(OUTSIDER, KEYS[OUTSIDER].kid, ENV.rcpt[0].enc)
    hdr = {**ENV.hdr, "recipients": sorted([*ENV.hdr["recipients"], OUTSIDER])}
    rcpt = tuple(sorted([*ENV.rcpt, stanza], key=lambda s: (s.agency, s.kid)))
    doctored = encode(replace(ENV, hdr=hdr, rcpt=rcpt))
    assert "signature" == _auth_failed(doctored)
    with pytest.raises(AuthenticationFailed) as err:
        open_as(doctored, OUTSIDER)
    assert "signature" == err.value.stage


def test_adding_a_recipient_without_a_stanza_is_malformed() -> None:
    """A listed recipient with no stanza is malformed (checked before the signature)."""
    hdr = {**ENV.hdr, "recipients": sorted([*ENV.hdr["recipients"], OUTSIDER])}
    with pytest.raises(MalformedEnvelope) as err:
        open_as(encode(replace(ENV, hdr=hdr)), READERS[0])
    assert f"no key stanza for listed recipients: {OUTSIDER}" in err.value.reason


def test_removing_a_stanza_is_malformed() -> None:
    """Dropping one recipient's stanza (header unchanged) is malformed, naming the recipient."""
    rcpt = tuple(s for s in ENV.rcpt if s.agency != READERS[1])
    with pytest.raises(MalformedEnvelope) as err:
        open_as(encode(replace(ENV, rcpt=rcpt)), READERS[0])
    assert READERS[1] in err.value.reason


def test_stanza_for_a_non_recipient_is_malformed() -> None:
    """A stanza for an agency not in hdr.recipients is malformed."""
    extra = Stanza(OUTSIDER, KEYS[OUTSIDER].kid, ENV.rcpt[0].enc)
    rcpt = tuple(sorted([*ENV.rcpt, extra], key=lambda s: (s.agency, s.kid)))
    with pytest.raises(MalformedEnvelope) as err:
        open_as(encode(replace(ENV, rcpt=rcpt)), READERS[0])
    assert f"stanza for {OUTSIDER}" in err.value.reason


def test_more_than_four_stanzas_for_one_agency_is_malformed() -> None:
    """Five stanzas for one agency are malformed."""
    five = tuple(Stanza(READERS[0], f"{i:016x}", ENV.rcpt[0].enc) for i in range(5))
    rcpt = tuple(sorted([*five, *ENV.rcpt[1:]], key=lambda s: (s.agency, s.kid)))
    with pytest.raises(MalformedEnvelope) as err:
        open_as(encode(replace(ENV, rcpt=rcpt)), READERS[1])
    assert "more than 4 stanzas" in err.value.reason


def test_sections_differing_from_header_are_malformed() -> None:
    """A sealed section the header does not list (or the reverse) is malformed."""
    no_sections = {k: v for k, v in ENV.hdr.items() if k != "sections"}
    for doctored in (replace(ENV, sections=()), replace(ENV, hdr=no_sections)):
        with pytest.raises(MalformedEnvelope) as err:
            open_as(encode(doctored), READERS[0])
        assert "sections do not match" in err.value.reason


def test_section_wrapped_for_a_non_recipient_is_malformed() -> None:
    """A section stanza for an agency outside the recipients is malformed."""
    stray = Stanza(OUTSIDER, KEYS[OUTSIDER].kid, ENV.rcpt[0].enc)
    sec = replace(ENV.sections[0], rcpt=(stray,))
    with pytest.raises(MalformedEnvelope) as err:
        open_as(encode(replace(ENV, sections=(sec,))), READERS[0])
    assert "wrapped for non-recipients" in err.value.reason


# Two envelopes between the same parties, for swapping parts.
OTHER = decode(sealed(READERS, b"another body", sections={"personal-data": (b"x", READERS)}))


def _stanza_of(stanzas: tuple[Stanza, ...], agency: str) -> Stanza:
    (stanza,) = [s for s in stanzas if s.agency == agency]
    return stanza


def _swap_stanza(env: _format.Envelope, donor: _format.Envelope, agency: str) -> _format.Envelope:
    theirs = _stanza_of(donor.rcpt, agency)
    return replace(env, rcpt=tuple(theirs if s.agency == agency else s for s in env.rcpt))


def test_stanza_swapped_between_envelopes() -> None:
    """Another envelope's stanza: 'signature'; even re-signed, the info binding gives 'stanza'."""
    doctored = _swap_stanza(ENV, OTHER, READERS[0])
    assert "signature" == _auth_failed(encode(doctored))
    assert "stanza" == _auth_failed(resign(doctored))


def test_stanza_moved_from_body_to_section() -> None:
    """A body stanza placed in a section: 'signature'; re-signed, the section gives 'stanza'."""
    agency = READERS[1]
    moved = _stanza_of(ENV.rcpt, agency)
    sec_rcpt = tuple(sorted([*ENV.sections[0].rcpt, moved], key=lambda s: (s.agency, s.kid)))
    doctored = replace(ENV, sections=(replace(ENV.sections[0], rcpt=sec_rcpt),))
    assert "signature" == _auth_failed(encode(doctored), agency)
    assert "stanza" == _auth_failed(resign(doctored), agency)


def test_stanza_moved_between_recipients() -> None:
    """One recipient's enc under another recipient's name, re-signed: 'stanza'."""
    a, b = READERS[0], READERS[1]
    enc_b = _stanza_of(ENV.rcpt, b).enc
    rcpt = tuple(replace(s, enc=enc_b) if s.agency == a else s for s in ENV.rcpt)
    assert "stanza" == _auth_failed(resign(replace(ENV, rcpt=rcpt)), a)


def test_one_ephemeral_per_part_and_a_fresh_one_per_envelope() -> None:
    """The body's stanzas share one ephemeral key; a section and another envelope do not."""
    body_encs = {s.enc[:32] for s in ENV.rcpt}
    assert 1 == len(body_encs)
    assert len(ENV.rcpt) > 1
    assert body_encs.isdisjoint({s.enc[:32] for s in ENV.sections[0].rcpt})
    assert body_encs.isdisjoint({s.enc[:32] for s in OTHER.rcpt})


def test_bodies_swapped_between_envelopes() -> None:
    """Another envelope's body: 'signature'; re-signed, the body tag fails: 'body'."""
    doctored = replace(ENV, body=OTHER.body)
    assert "signature" == _auth_failed(encode(doctored))
    assert "body" == _auth_failed(resign(doctored))


def test_section_bodies_swapped_between_envelopes() -> None:
    """Another envelope's section body, re-signed: 'body'."""
    sec = replace(ENV.sections[0], body=OTHER.sections[0].body)
    assert "body" == _auth_failed(resign(replace(ENV, sections=(sec,))))


def test_body_moved_into_a_section_is_refused() -> None:
    """The body ciphertext copied into the section (same reader), re-signed: 'body'."""
    sec = replace(ENV.sections[0], body=ENV.body)
    assert "body" == _auth_failed(resign(replace(ENV, sections=(sec,))))


def test_header_change_resigned_breaks_the_body_binding() -> None:
    """A re-signed header change (priority) leaves the body bound to the old header: 'body'."""
    assert "body" == _auth_failed(resign(replace(ENV, hdr={**ENV.hdr, "priority": "urgent"})))


def test_stanzas_of_other_agencies_are_ignored() -> None:
    """A garbage stanza for another recipient does not stop this recipient opening."""
    rcpt = tuple(
        replace(s, enc=bytes(len(s.enc))) if s.agency == READERS[2] else s for s in ENV.rcpt
    )
    data = resign(replace(ENV, rcpt=rcpt))
    assert BODY == open_as(data, READERS[0]).body
    assert "stanza" == _auth_failed(data, READERS[2])


# --- signer and time --------------------------------------------------------------------------

ATTACKER = signing_key("LBY-DCIM")


def test_forged_originator_signed_with_another_agencys_key() -> None:
    """Header names ITA-GDF and its kid, signature by LBY-DCIM's key: 'signature'."""
    forged = resign(ENV, SigningKey("ITA-GDF", ATTACKER.private))
    signers = StaticSigners.of([SIGNER.public, ATTACKER.public])
    with pytest.raises(AuthenticationFailed) as err:
        open_envelope(forged, [KEYS[READERS[0]]], signers, now=NOW)
    assert "signature" == err.value.stage


def test_forged_originator_with_own_kid_is_unknown_signer() -> None:
    """Header names ITA-GDF with the attacker's kid: no such key for ITA-GDF: UnknownSigner."""
    impostor = SigningKey("ITA-GDF", ATTACKER.private)
    hdr = header(READERS, signer=impostor)
    data = seal(hdr, BODY, impostor, publics(READERS))
    signers = StaticSigners.of([SIGNER.public, ATTACKER.public])
    with pytest.raises(UnknownSigner) as err:
        open_envelope(data, [KEYS[READERS[0]]], signers, now=NOW)
    assert ("ITA-GDF", ATTACKER.kid) == (err.value.originator, err.value.kid)


def test_unknown_kid_is_unknown_signer() -> None:
    """A signer key id not in the resolver: UnknownSigner naming originator and kid."""
    rotated = signing_key("ITA-GDF", 1)
    data = seal(header(READERS, signer=rotated), BODY, rotated, publics(READERS))
    with pytest.raises(UnknownSigner) as err:
        open_as(data, READERS[0])
    assert ("ITA-GDF", rotated.kid) == (err.value.originator, err.value.kid)
    assert rotated.kid in err.value.reason


def test_unknown_originator_is_unknown_signer() -> None:
    """An originator the resolver has never heard of: UnknownSigner."""
    stranger = signing_key("NZL-INZ")
    data = seal(header(READERS, signer=stranger), BODY, stranger, publics(READERS))
    with pytest.raises(UnknownSigner):
        verify_envelope(data, SIGNERS, now=NOW)


def test_created_in_the_future_beyond_skew() -> None:
    """Created more than 5 minutes ahead: ClockSkew with the skew and tolerance in ms."""
    ahead = DEFAULT_MAX_CLOCK_SKEW_MS + 1
    data = sealed(READERS, created=NOW + timedelta(milliseconds=ahead))
    with pytest.raises(ClockSkew) as err:
        open_as(data, READERS[0])
    assert (ahead, DEFAULT_MAX_CLOCK_SKEW_MS) == (err.value.skew_ms, err.value.tolerance_ms)


def test_created_in_the_future_within_skew() -> None:
    """Exactly at the tolerance, and in the past, the envelope opens."""
    for created in (NOW + timedelta(minutes=5), NOW - timedelta(days=3)):
        assert b"report body" == open_as(sealed(READERS, created=created), READERS[0]).body


def test_custom_clock_skew() -> None:
    """max_clock_skew_ms is honoured."""
    data = sealed(READERS, created=NOW + timedelta(seconds=2))
    with pytest.raises(ClockSkew):
        open_as(data, READERS[0], max_clock_skew_ms=1000)
    assert b"report body" == open_as(data, READERS[0], max_clock_skew_ms=2000).body


def test_replayed_when_seen() -> None:
    """seen(id) True: Replayed carrying the envelope id; seen is asked about that id."""
    asked: list[str] = []

    def seen(envelope_id: str) -> bool:
        asked.append(envelope_id)
        return True

    with pytest.raises(Replayed) as err:
        open_as(SEALED, READERS[0], seen=seen)
    assert ENV.hdr["id"] == err.value.envelope_id
    assert [ENV.hdr["id"]] == asked


def test_not_replayed_when_not_seen() -> None:
    """seen(id) False: the envelope opens."""
    assert BODY == open_as(SEALED, READERS[0], seen=lambda _: False).body


def test_replay_cache_is_not_consulted_for_forgeries() -> None:
    """A forged envelope fails authentication before the replay check is made."""
    asked: list[str] = []

    def seen(envelope_id: str) -> bool:
        asked.append(envelope_id)
        return True

    forged = flip(SEALED, len(SEALED) - 1)
    with pytest.raises(AuthenticationFailed):
        open_as(forged, READERS[0], seen=seen)
    assert [] == asked


def test_max_size_on_open() -> None:
    """open refuses an envelope over its max_size before parsing."""
    with pytest.raises(EnvelopeTooLarge) as err:
        open_as(SEALED, READERS[0], max_size=100)
    assert (len(SEALED), 100) == (err.value.size, err.value.limit)


# --- seal refuses inconsistent input ----------------------------------------------------------


def _seal_with(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "header": header(READERS, sections=[section_info()]),
        "body": BODY,
        "signer": SIGNER,
        "recipients": publics(READERS),
        "sections": {"personal-data": (PERSONAL, publics(READERS[:1]))},
    }
    args.update(overrides)
    return seal(**args)


@pytest.mark.parametrize(
    ("recipients", "words"),
    [
        (READERS[:2], "exactly the header's recipients"),
        ((*READERS, OUTSIDER), "exactly the header's recipients"),
        ((), "exactly the header's recipients"),
    ],
    ids=["missing", "extra", "none"],
)
def test_seal_recipient_keys_must_match_header(recipients: tuple[str, ...], words: str) -> None:
    """Recipient keys must cover exactly header.recipients."""
    with pytest.raises(InputError) as err:
        _seal_with(recipients=publics(recipients))
    assert words in err.value.reason


@pytest.mark.parametrize(
    ("sections", "info"),
    [
        ({}, [section_info()]),
        ({"personal-data": (PERSONAL, [])}, []),
        ({"other": (PERSONAL, [])}, [section_info()]),
    ],
    ids=["header-only", "sealed-only", "different-id"],
)
def test_seal_sections_must_match_header(sections: dict[str, Any], info: list[Any]) -> None:
    """Sealed sections must be exactly the header's section list."""
    with pytest.raises(InputError) as err:
        _seal_with(header=header(READERS, sections=info), sections=sections)
    assert "match the header's section list" in err.value.reason


def test_seal_section_readers_must_be_recipients() -> None:
    """A section reader outside the recipients: InputError naming the section."""
    with pytest.raises(InputError) as err:
        _seal_with(sections={"personal-data": (PERSONAL, publics([OUTSIDER]))})
    assert "section personal-data names readers that are not recipients" == err.value.reason


@pytest.mark.parametrize(
    "signer",
    [signing_key("LBY-DCIM"), signing_key("ITA-GDF", 1)],
    ids=["other-agency", "other-kid"],
)
def test_seal_signer_must_match_header(signer: SigningKey) -> None:
    """The signing key must be the header's originator and kid."""
    with pytest.raises(InputError) as err:
        _seal_with(signer=signer)
    assert signer.kid in err.value.reason


def test_seal_refuses_duplicate_recipient_keys() -> None:
    """The same recipient key twice is refused by seal (open would call it non-canonical)."""
    keys = [*publics(READERS), KEYS[READERS[0]].public]
    with pytest.raises(InputError):
        _seal_with(recipients=keys)


def test_seal_refuses_more_stanzas_per_agency_than_open_accepts() -> None:
    """Five keys for one agency are refused by seal (open refuses more than four)."""
    keys = [*publics(READERS), *(encryption_key(READERS[0], i).public for i in range(1, 5))]
    with pytest.raises(InputError):
        _seal_with(recipients=keys)


def test_seal_with_four_keys_per_agency_opens() -> None:
    """Four keys for one agency (rotation overlap) is within the limit: every key opens."""
    mine = [encryption_key(READERS[0], i) for i in range(4)]
    data = _seal_with(recipients=[*publics(READERS[1:]), *(k.public for k in mine)])
    for key in mine:
        assert BODY == open_envelope(data, [key], SIGNERS, now=NOW).body


def test_seal_max_size() -> None:
    """A max_size below the sealed size: EnvelopeTooLarge with size and limit; at size it fits."""
    size = len(_seal_with())
    with pytest.raises(EnvelopeTooLarge) as err:
        _seal_with(max_size=size - 1)
    assert (size, size - 1) == (err.value.size, err.value.limit)
    assert size == len(_seal_with(max_size=size))


# --- header schema and canonical header values ------------------------------------------------


def _verify(hdr: dict[str, Any]) -> Any:
    return verify_envelope(resign(replace(ENV, hdr=hdr)), SIGNERS, now=NOW)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"originator": "ita-gdf"}, "originator"),
        ({"unknown": 1}, "unknown"),
        ({"kind": "gossip"}, "kind"),
        ({"recipients": []}, "recipients"),
        ({"id": "not-a-uuid"}, "id"),
        ({"kid": "XYZ"}, "kid"),
        ({"created": -1}, "created"),
        ({"schema": "iir/2"}, "schema"),
    ],
)
def test_header_failing_schema_with_valid_signature(edit: dict[str, Any], field: str) -> None:
    """A validly signed header that fails the schema: HeaderInvalid with field-level errors."""
    with pytest.raises(HeaderInvalid) as err:
        _verify({**ENV.hdr, **edit})
    assert field == err.value.errors[0]["field"]
    assert f"header fails the schema at {field}" in err.value.reason
    assert "header_invalid" == err.value.code


def test_header_missing_field() -> None:
    """A header without a required field (route) is HeaderInvalid."""
    hdr = {k: v for k, v in ENV.hdr.items() if k != "route"}
    with pytest.raises(HeaderInvalid) as err:
        _verify(hdr)
    assert "route" == err.value.errors[0]["field"]


def test_header_listing_the_originator_as_recipient() -> None:
    """The originator among its own recipients fails the header schema."""
    hdr = {**ENV.hdr, "recipients": sorted([*ENV.hdr["recipients"], "ITA-GDF"])}
    with pytest.raises(HeaderInvalid):
        _verify(hdr)


def test_header_schema_is_checked_before_the_signature() -> None:
    """Spec order: a header failing the schema is HeaderInvalid even when unsigned."""
    data = encode(replace(ENV, hdr={**ENV.hdr, "originator": "ita-gdf"}))
    with pytest.raises(HeaderInvalid):
        verify_envelope(data, SIGNERS, now=NOW)


@pytest.mark.parametrize(
    "edit",
    [
        {"recipients": list(reversed(READERS))},
        {"refs": ["b", "a"]},
        {"created": "2026-11-23T00:00:00Z"},
        {"handling": {**ENV.hdr["handling"], "rel_to": ["group:z", "group:a"]}},
    ],
    ids=[
        "unsorted-recipients",
        "unsorted-refs",
        "created-as-text",
        "unsorted-rel-to",
    ],
)
def test_non_canonical_header_values(edit: dict[str, Any]) -> None:
    """Header values the schema would normalise are NonCanonicalEncoding, even when signed."""
    with pytest.raises(NonCanonicalEncoding) as err:
        _verify({**ENV.hdr, **edit})
    assert "header values are not in canonical form" in err.value.reason


@pytest.mark.parametrize(
    "edit",
    [
        {"handling": {**ENV.hdr["handling"], "judicial_use": 0}},
        {"handling": {**ENV.hdr["handling"], "h0": 1}},
    ],
    ids=["int-for-bool", "int-for-true"],
)
def test_header_values_of_another_type_are_non_canonical(edit: dict[str, Any]) -> None:
    """0 for false or 1 for true are not the canonical header encoding."""
    with pytest.raises(NonCanonicalEncoding):
        _verify({**ENV.hdr, **edit})


@pytest.mark.parametrize(
    "edit",
    [{"originator": b"ITA-GDF"}, {"created": float(ENV.hdr["created"])}],
    ids=["originator-as-bin", "float-for-int"],
)
def test_header_never_holds_bytes_or_floats(edit: dict[str, Any]) -> None:
    """A byte string or a float anywhere in the header is malformed (docs/envelope-v1.md 2.3)."""
    with pytest.raises(MalformedEnvelope):
        _verify({**ENV.hdr, **edit})


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=12)
    | st.binary(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


@FEW
@given(st.sampled_from(sorted(ENV.hdr)), _values)
def test_signed_random_header_values_only_raise_typed_errors(field: str, value: Any) -> None:
    """Any value in any header field, validly signed, verifies or raises a typed EnvelopeError."""
    try:
        _verify({**ENV.hdr, field: value})
    except PalermoError as exc:
        _typed(exc)


def test_section_info_survives_the_round_trip() -> None:
    """A header with sections, refs and a rich handling block opens with an equal header."""
    hdr = header(
        READERS,
        sections=[section_info("protected-persons", "protected-persons"), section_info()],
        refs=["case-2", "case-1"],
        handling=Handling(
            tlp="RED",
            rel_to=["ESP-GC", "group:med-coastal"],
            h2=True,
            action="A3",
            action_text="board the vessel",
            not_before=NOW,
            expires=NOW + timedelta(days=1),
        ),
    )
    sections = {
        "personal-data": (PERSONAL, publics(READERS[:1])),
        "protected-persons": (b"witness", publics(READERS[1:2])),
    }
    data = seal(hdr, BODY, SIGNER, publics(READERS), sections)
    opened = open_as(data, READERS[1])
    assert hdr == opened.header
    assert {"protected-persons": b"witness"} == dict(opened.sections)
    assert ("personal-data",) == opened.withheld


def test_sections_in_envelope_follow_header_order() -> None:
    """Sealed sections come in the header's (sorted) order."""
    env = decode(sealed(READERS, sections={"b-sec": (b"b", []), "a-sec": (b"a", READERS)}))
    assert ["a-sec", "b-sec"] == [s.id for s in env.sections]
    assert isinstance(env.sections[0], Section)


def test_sealing_to_a_low_order_key_names_the_agency_and_key() -> None:
    """A directory key bundle with an all-zero X25519 key: KeyNotValid naming who must fix it."""
    weak = PublicEncryptionKey(READERS[1], X25519PublicKey.from_public_bytes(bytes(32)))
    keys = [weak if k.agency == READERS[1] else k for k in publics(READERS)]
    with pytest.raises(KeyNotValid) as err:
        _seal.seal(header(READERS), BODY, SIGNER, keys)
    assert f"encryption key {weak.kid} of {READERS[1]} is a low-order" in err.value.reason
