"""The golden vectors: rebuilt byte for byte, and each opened with the outcome it names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.envelope import StaticSigners, _format, open_envelope
from protocol.keys import EncryptionKey
from schemas._types import from_epoch_ms
from schemas.errors import AuthenticationFailed, EnvelopeError, NotARecipient
from tests.vectors import generate

FILES = sorted(Path(generate.__file__).parent.glob("*.txt"))
HEADER_FAILURES = ("malformed", "non_canonical", "unsupported_version", "unsupported_suite")


def test_vectors_exist() -> None:
    """Every scenario the generator knows has a file, and no file is stale."""
    assert sorted(v.name for v in generate.build_all()) == [f.stem for f in FILES]


@pytest.mark.parametrize("vector", generate.build_all(), ids=lambda v: v.name)
def test_vector_rebuilds_byte_for_byte(vector: generate.Vector) -> None:
    """Fixed keys, time and randomness rebuild the stored file exactly."""
    assert (Path(generate.HERE) / f"{vector.name}.txt").read_text() == vector.render()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_vector_outcome(path: Path) -> None:
    """Opening the stored envelope gives exactly the outcome the file names."""
    fields, data = generate.parse(path.read_text())
    expect = fields["expect"][0]
    agency, kid, signer_raw = fields["signer"][0].split()
    signers = StaticSigners(
        {(agency, kid): Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer_raw))}
    )
    ident_agency, _, ident_raw = fields["identity"][0].split()
    identity = EncryptionKey(
        ident_agency, X25519PrivateKey.from_private_bytes(bytes.fromhex(ident_raw))
    )
    now = from_epoch_ms(int(fields["now"][0]))
    if expect == "success":
        opened = open_envelope(data, [identity], signers, now=now)
        assert fields["payload-sha256"][0] == hashlib.sha256(opened.body).hexdigest()
        expected_sections = dict(line.split() for line in fields.get("section-sha256", []))
        actual_sections = {k: hashlib.sha256(v).hexdigest() for k, v in opened.sections.items()}
        assert expected_sections == actual_sections
        assert tuple(fields.get("withheld", [""])[0].split()) == opened.withheld
        assert fields["codes"][0].split() == opened.header.handling.codes()
        return
    with pytest.raises(EnvelopeError) as info:
        open_envelope(data, [identity], signers, now=now)
    assert fields["error"][0] == info.value.code
    if expect == "auth failure":
        assert isinstance(info.value, AuthenticationFailed)
    elif expect == "no match":
        assert isinstance(info.value, NotARecipient)
    else:
        assert expect == "header failure"
        assert not isinstance(info.value, AuthenticationFailed | NotARecipient)


@pytest.mark.parametrize(
    "vector", [v for v in generate.build_all() if v.header_omits], ids=lambda v: v.name
)
def test_vector_header_omits(vector: generate.Vector) -> None:
    """The fields a vector says its signed header leaves out are absent from the stored bytes."""
    fields, data = generate.parse((Path(generate.HERE) / f"{vector.name}.txt").read_text())
    hdr = _format.decode(data).hdr
    for dotted in fields["header-omits"][0].split():
        *parents, name = dotted.split(".")
        node = hdr
        for key in parents:
            node = node[key]
        assert name not in node, dotted


def test_defaults_are_per_schema_version() -> None:
    """An iir/1 header without action or h0 decodes as A1 and H0; under iir/1.1 the same
    omission means no action code (decision 0019). Guards the vectors that show it."""
    vectors = {v.name: v for v in generate.build_all()}
    v1 = vectors["success-iir1-defaults"]
    v11 = vectors["success-iir11-no-action"]
    assert {"handling.action", "handling.h0"} <= set(v1.header_omits) & set(v11.header_omits)
    assert {"A1", "H0"} <= set(v1.codes)
    assert not {"A1", "A2", "A3"} & set(v11.codes)
