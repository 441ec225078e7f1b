"""The sealer's rules of docs/envelope-v1.md (SEAL-001 to SEAL-003), checked on the reference
sealer: no decoder can see them in one envelope, so no vector can.

Each test seals the same header (same envelope id) twice, with a section, for three
recipients, and looks inside with the recipients' private keys.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from protocol import crypto
from protocol.envelope import SUITE_MLKEM768_X25519, SUITE_X25519, decode, seal
from protocol.envelope._format import Envelope, Stanza
from protocol.envelope._wrap import _stanza_info
from protocol.keys import EncryptionKey
from tests.envelope._factories import READERS, SIGNER, encryption_key, header, section_info

SPEC = (Path(__file__).resolve().parents[2] / "docs" / "envelope-v1.md").read_text()
PART_SECTION = b"section:personal-data"


def _twice(suite: int) -> tuple[dict[str, EncryptionKey], list[Envelope]]:
    keys = {a: encryption_key(a, hybrid=suite == SUITE_MLKEM768_X25519) for a in READERS}
    hdr = header(READERS, sections=[section_info()])
    publics = [k.public for k in keys.values()]
    sealed = [
        seal(hdr, b"body", SIGNER, publics, {"personal-data": (b"persons", publics)}, suite=suite)
        for _ in range(2)
    ]
    return keys, [decode(data) for data in sealed]


def _parts(env: Envelope) -> list[tuple[bytes, tuple[Stanza, ...]]]:
    return [(b"body", env.rcpt), *((PART_SECTION, s.rcpt) for s in env.sections)]


def _content_key(env: Envelope, part: bytes, stanza: Stanza, key: EncryptionKey) -> bytes:
    info = _stanza_info(uuid.UUID(env.hdr["id"]).bytes, stanza.agency, stanza.kid, part)
    if env.suite == SUITE_MLKEM768_X25519:
        assert key.hybrid_private is not None
        return crypto.hpke_open_hybrid(key.hybrid_private, info, stanza.enc)
    return crypto.hpke_open_x25519(key.private, info, stanza.enc)


def test_seal_001_a_fresh_content_key_per_part_and_envelope() -> None:
    """SEAL-001: the body and the section of one envelope, and the same part of the same header
    sealed again, never share a content key (the parts' AES-GCM nonce is fixed)."""
    for suite in (SUITE_X25519, SUITE_MLKEM768_X25519):
        keys, envelopes = _twice(suite)
        content = [
            {_content_key(env, part, s, keys[s.agency]) for s in stanzas}
            for env in envelopes
            for part, stanzas in _parts(env)
        ]
        assert all(len(one) == 1 for one in content)  # every reader of a part gets the same K
        assert 4 == len(set().union(*content)), suite


def test_seal_002_suite_1_a_fresh_ephemeral_per_part() -> None:
    """SEAL-002: suite 1 shares one ephemeral among a part's stanzas (decision 0012) and draws
    a new one for every part of every envelope."""
    _, envelopes = _twice(SUITE_X25519)
    ephemerals = [
        {s.enc[: crypto.X25519_LEN] for s in stanzas}
        for env in envelopes
        for _, stanzas in _parts(env)
    ]
    assert all(len(one) == 1 for one in ephemerals)
    assert 4 == len(set().union(*ephemerals))


def test_seal_003_suite_2_a_fresh_encapsulation_per_stanza() -> None:
    """SEAL-003: suite 2 encapsulates afresh for every stanza: no two stanzas, in one envelope
    or across two sealings of the same header, share their ML-KEM ciphertext or their X25519
    ephemeral."""
    _, envelopes = _twice(SUITE_MLKEM768_X25519)
    stanzas = [s for env in envelopes for _, part in _parts(env) for s in part]
    assert 12 == len(stanzas)
    mlkem = {s.enc[: crypto.HYBRID_ENC_LEN - crypto.X25519_LEN] for s in stanzas}
    x25519 = {s.enc[crypto.HYBRID_ENC_LEN - crypto.X25519_LEN : crypto.HYBRID_ENC_LEN]
              for s in stanzas}  # fmt: skip
    assert 12 == len(mlkem) == len(x25519)


def test_every_sealer_rule_of_the_spec_is_tested_here() -> None:
    numbered = sorted(set(re.findall(r"\*\*(SEAL-\d{3})\*\*", SPEC)))
    assert numbered == [f"SEAL-{i:03d}" for i in range(1, len(numbered) + 1)]
    source = Path(__file__).read_text()
    assert [] == [rule for rule in numbered if f'"""{rule}:' not in source]
