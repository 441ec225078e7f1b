"""Generate the envelope v1 golden test vectors (one scenario per file, like age's CCTV).

Run ``python -m tests.vectors.generate`` from the repository root to rewrite them; the test
suite rebuilds every vector and compares bytes, so a change to the wire format shows up as a
diff here. Keys, times and randomness are fixed: each key comes from a labelled SHA-256 seed.

File format: ``key: value`` lines, a blank line, then the envelope in base64 (76 columns).
``expect`` is one of ``success``, ``header failure`` (refused before any private key is used),
``auth failure`` (a signature, stanza or ciphertext fails) and ``no match`` (not for this
identity); ``error`` names the error code a conforming decoder reports, and ``rule`` the one
numbered requirement of docs/envelope-v1.md the vector breaks (``MUST-NNN``; a success vector
may name the rule it shows being honoured). ``suite`` is the envelope's suite; a suite-2
``identity`` line ends with the ML-KEM-768 seed (d || z, 64 bytes) of its hybrid key. Optional
inputs: ``max-size`` (the decoder's limit), ``seen`` (the id was already accepted),
``withhold`` (sections the receiver's policy withholds), ``signer-not-after`` (the signing
key's end of validity, ms), ``subject`` with ``subject-role`` (``broker``: the publish
subject; ``node``: the delivery subject seen by the identity), ``policy`` (a federation rule,
``suite_2_for_tlp=RED``) and ``check: report`` (the opened body is compared with the header).
Suite-2 vectors fix the ML-KEM and X25519 randomness with their own FIPS 203 path (kyber-py,
test-only); every suite-2 stanza is opened with ``cryptography``'s HPKE by the tests.
A success vector's ``codes`` are the handling codes its header decodes to
(``Handling.codes()``), and
``header-omits`` names header fields the signed header leaves out, so that a decoder in another
language checks which default it fills in: under ``iir/1`` an absent ``action`` is A1 and an
absent ``h0`` true, under ``iir/1.1`` an absent ``action`` is none (decision 0019).
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kyber_py.ml_kem import ML_KEM_768

from protocol import crypto
from protocol.envelope import _format, _seal
from protocol.keys import EncryptionKey, PublicEncryptionKey, SigningKey
from schemas import EnvelopeHeader, Handling, HandlingV11, SectionInfo
from schemas._types import from_epoch_ms, new_uuid7
from schemas._versions import SchemaVersion

HERE = Path(__file__).parent
NOW_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z
AGENCIES = ("MLT-AFM", "GRC-HCG", "ESP-GC", "AUS-ABF", "IDN-IMI")
PAYLOAD = msgpack.packb(
    {
        "schema": "iir/1",
        "summary": "Inflatable boat, about 40 persons, departed Zuwara 02:00 UTC heading north",
        "route": "central-med",
    }
)
PAYLOAD_V11 = msgpack.packb(
    {
        "schema": "iir/1.1",
        "summary": "Inflatable boat, about 40 persons, expected to depart Zuwara tonight",
        "route": "central-med",
    }
)
PAYLOAD_PUBLIC = msgpack.packb(
    {
        "schema": "iir/1.1",
        "summary": "Amended smuggling offence in force; humanitarian assistance exempted",
        "route": "central-med",
    }
)
PERSONAL = msgpack.packb({"persons": {"p1": {"role": "driver", "nationality": "LBY"}}})
DEFAULT_HANDLING = Handling(tlp="AMBER", rel_to=["group:med-coastal"], h2=True)


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"palermo test vector " + label.encode()).digest()


def signing_key(agency: str) -> SigningKey:
    return SigningKey(agency, Ed25519PrivateKey.from_private_bytes(_seed("sign " + agency)))


def mlkem_seed(agency: str) -> bytes:
    return _seed("mlkem d " + agency) + _seed("mlkem z " + agency)


def encryption_key(agency: str, hybrid: bool = False, label: str = "") -> EncryptionKey:
    """The agency's X25519 key, or with ``hybrid`` the same X25519 key with an ML-KEM-768 one
    (``label`` names a second hybrid key, for rotation overlaps)."""
    x25519 = X25519PrivateKey.from_private_bytes(_seed("enc " + agency))
    if not hybrid:
        return EncryptionKey(agency, x25519)
    return EncryptionKey(
        agency, x25519, MLKEM768PrivateKey.from_seed_bytes(mlkem_seed(agency + label))
    )


# --- suite 2 with fixed randomness: X-Wing (draft-connolly-cfrg-xwing-kem) in RFC 9180 ---------

_XWING_SUITE = b"HPKE" + (0x647A).to_bytes(2, "big") + b"\x00\x01\x00\x02"
_XWING_LABEL = b"\\.//^\\"


def xwing_seal(recipient: PublicEncryptionKey, info: bytes, plaintext: bytes, rand: bytes) -> bytes:
    """HPKE SealBase with KEM MLKEM768-X25519 whose 64 bytes of randomness are given: ML-KEM-768
    encapsulation with ``m = rand[:32]`` (FIPS 203, kyber-py) and the X25519 ephemeral
    ``rand[32:]``. Test-only: production uses cryptography's randomized path (decision 0035)."""
    assert recipient.mlkem_raw is not None
    ss_m, ct_m = ML_KEM_768._encaps_internal(recipient.mlkem_raw, rand[:32])
    ephemeral = X25519PrivateKey.from_private_bytes(rand[32:])
    ct_x = ephemeral.public_key().public_bytes_raw()
    ss_x = ephemeral.exchange(recipient.key)
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + recipient.raw + _XWING_LABEL).digest()
    psk_id_hash = crypto._labeled_extract(_XWING_SUITE, b"", b"psk_id_hash", b"")
    info_hash = crypto._labeled_extract(_XWING_SUITE, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = crypto._labeled_extract(_XWING_SUITE, shared, b"secret", b"")
    key = crypto._labeled_expand(_XWING_SUITE, secret, b"key", context, 32)
    nonce = crypto._labeled_expand(_XWING_SUITE, secret, b"base_nonce", context, 12)
    return ct_m + ct_x + AESGCM(key).encrypt(nonce, plaintext, None)


def _xwing(label: str) -> Callable[[PublicEncryptionKey, bytes, bytes], bytes]:
    calls = iter(range(1 << 16))

    def encapsulate(recipient: PublicEncryptionKey, info: bytes, plaintext: bytes) -> bytes:
        n = next(calls)
        rand = _seed(f"{label} xwing m {n}") + _seed(f"{label} xwing e {n}")
        return xwing_seal(recipient, info, plaintext, rand)

    return encapsulate


@dataclass
class Vector:
    name: str
    expect: str
    description: str
    envelope: bytes
    identity: str
    error: str | None = None
    payload: bytes | None = None
    sections: dict[str, bytes] = field(default_factory=dict)
    withheld: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    header_omits: tuple[str, ...] = ()
    rule: str | None = None
    suite: int = 1
    hybrid: bool = False
    """The identity's key is hybrid (suite 2 vectors, and suite 1 sealed to a hybrid key)."""
    inputs: tuple[tuple[str, str], ...] = ()
    """Further inputs (``max-size``, ``seen``, ``withhold``...), as ``key: value`` lines."""

    def render(self) -> str:
        signer = signing_key("ITA-GDF")
        ident = encryption_key(self.identity, self.hybrid)
        identity = f"{self.identity} {ident.kid} {ident.private.private_bytes_raw().hex()}"
        if self.hybrid:
            identity += f" {mlkem_seed(self.identity).hex()}"
        lines = [
            f"expect: {self.expect}",
            f"description: {self.description}",
        ]
        if self.rule:
            lines.append(f"rule: {self.rule}")
        lines += [
            f"suite: {self.suite}",
            f"now: {NOW_MS}",
            f"signer: {signer.agency} {signer.kid} {signer.public.raw.hex()}",
            f"identity: {identity}",
        ]
        lines += [f"{key}: {value}" for key, value in self.inputs]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.payload is not None:
            lines.append(f"payload-sha256: {hashlib.sha256(self.payload).hexdigest()}")
        for sid, plain in sorted(self.sections.items()):
            lines.append(f"section-sha256: {sid} {hashlib.sha256(plain).hexdigest()}")
        if self.withheld:
            lines.append(f"withheld: {' '.join(self.withheld)}")
        if self.codes:
            lines.append(f"codes: {' '.join(self.codes)}")
        if self.header_omits:
            lines.append(f"header-omits: {' '.join(self.header_omits)}")
        body = "\n".join(textwrap.wrap(base64.b64encode(self.envelope).decode(), 76))
        return "\n".join(lines) + "\n\n" + body + "\n"


@dataclass(frozen=True)
class Scenario:
    """What varies between the sealed reports of the vectors (defaults: the v1 alert)."""

    handling: Handling = DEFAULT_HANDLING
    schema: SchemaVersion = "iir/1"
    payload: bytes = PAYLOAD
    category: str = "routes"


V1_ALERT = Scenario()
V1_ALERT_CODES = ("TLP:AMBER", "H0", "H1", "H2", "A1")
IIR1_DEFAULTS = Scenario(handling=Handling(tlp="AMBER", rel_to=["group:med-coastal"]))
IIR11_NO_ACTION = Scenario(
    handling=HandlingV11(tlp="AMBER", rel_to=["group:med-coastal"]),
    schema="iir/1.1",
    payload=PAYLOAD_V11,
)
IIR11_ACTION_A1 = Scenario(
    handling=HandlingV11(tlp="AMBER", rel_to=["group:med-coastal"], action="A1"),
    schema="iir/1.1",
    payload=PAYLOAD_V11,
)
IIR11_PUBLIC = Scenario(
    handling=HandlingV11(tlp="CLEAR", h0=False),
    schema="iir/1.1",
    payload=PAYLOAD_PUBLIC,
    category="legislation",
)


def _header(
    recipients: tuple[str, ...],
    *,
    sections: bool = False,
    n: int = 0,
    scenario: Scenario = V1_ALERT,
) -> EnvelopeHeader:
    signer = signing_key("ITA-GDF")
    return EnvelopeHeader(
        id=new_uuid7(NOW_MS - 1000 * n, _seed(f"id {n}")[:10]),
        originator="ITA-GDF",
        kid=signer.kid,
        created=from_epoch_ms(NOW_MS - 1000 * n),
        kind="alert",
        priority="urgent",
        route="central-med",
        category=scenario.category,
        handling=scenario.handling,
        schema=scenario.schema,
        recipients=list(recipients),
        sections=(
            [SectionInfo(id="personal-data", kind="personal-data", protected_nationalities=[])]
            if sections
            else []
        ),
    )


def _randomness(label: str, count: int, suite: int = 1) -> _seal._Randomness:
    return _seal._Randomness(
        content_keys=[_seed(f"{label} ck {i}") for i in range(count)],
        ephemerals=[
            X25519PrivateKey.from_private_bytes(_seed(f"{label} eph {i}")) for i in range(count)
        ],
        hybrid=_xwing(label) if suite == 2 else None,
    )


def sealed(
    label: str,
    recipients: tuple[str, ...],
    *,
    sections: bool = False,
    n: int = 0,
    scenario: Scenario = V1_ALERT,
    suite: int = 1,
    keys: list[PublicEncryptionKey] | None = None,
) -> bytes:
    """``suite`` 2 seals to every recipient's hybrid key; ``keys`` replaces the recipient keys
    (mixed cases: two keys for one agency, suite 1 to hybrid keys)."""
    header = _header(recipients, sections=sections, n=n, scenario=scenario)
    hybrid = suite == 2
    section_map = (
        {"personal-data": (PERSONAL, [encryption_key(recipients[0], hybrid).public])}
        if sections
        else {}
    )
    return _seal.seal(
        header,
        scenario.payload,
        signing_key("ITA-GDF"),
        keys or [encryption_key(a, hybrid).public for a in recipients],
        section_map,
        suite=suite,
        # One content key and one ephemeral key per part: the body, then the section.
        _randomness=_randomness(label, 2, suite),
    )


def _resign(env: _format.Envelope, key: SigningKey | None = None) -> bytes:
    """Encode a modified envelope and sign it properly, to reach checks behind the signature."""
    signer = key or signing_key("ITA-GDF")
    sig = crypto.sign(signer.private, _seal.DOMAIN_SIGNATURE, _format.signed_bytes(env))
    return _format.encode(replace(env, sig=sig))


def _with_handling(hdr: dict[str, object], **changes: object) -> dict[str, object]:
    """A wire header whose handling block has ``changes`` written in (encode sorts the keys)."""
    handling = hdr["handling"]
    assert isinstance(handling, dict)
    return {**hdr, "handling": {**handling, **changes}}


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def build_all() -> list[Vector]:
    from . import _cases  # it builds on this module

    one = sealed("one", ("MLT-AFM",))
    five = sealed("five", AGENCIES, sections=True, n=1)
    env = _format.decode(one)
    body_at = one.index(env.body)
    hdr_v2 = b"\x87\xa1v\x02" + one[4:]
    other_suite = one.replace(b"\xa5suite\x01", b"\xa5suite\x07", 1)
    # A value outside the schema in a field no later check reads (an unknown originator would
    # also break MUST-021: the vector must break MUST-017 only).
    bad_header = _resign(replace(env, hdr={**env.hdr, "priority": "extreme"}))
    # Regression (issue 7): the id pattern once accepted a trailing newline ('$' with re.match).
    id_newline = _resign(replace(env, hdr={**env.hdr, "id": env.hdr["id"] + "\n"}))
    # Decision 0011: a field at its default value is left out; writing it out is not canonical.
    default_written = _resign(
        replace(env, hdr=dict(sorted({**env.hdr, "priority": "routine"}.items())))
    )
    unsorted = dict(reversed(list(env.hdr.items())))
    non_canonical = msgpack.packb(
        {
            "v": 1,
            "suite": 1,
            "hdr": unsorted,
            "rcpt": [{"agency": s.agency, "enc": s.enc, "kid": s.kid} for s in env.rcpt],
            "body": env.body,
            "sections": [],
            "sig": env.sig,
        },
        use_bin_type=True,
    )
    forged = _resign(env, SigningKey("ITA-GDF", signing_key("LBY-DCIM").private))
    # Decision 0019: handling defaults are per schema version, and iir/1 keeps its own for ever.
    v1_defaults = sealed("iir1-defaults", ("MLT-AFM",), n=2, scenario=IIR1_DEFAULTS)
    v11_no_action = sealed("iir11-no-action", ("MLT-AFM",), n=3, scenario=IIR11_NO_ACTION)
    v11_public = sealed("iir11-public", ("MLT-AFM",), n=4, scenario=IIR11_PUBLIC)
    v11_a1 = sealed("iir11-action-a1", ("MLT-AFM",), n=5, scenario=IIR11_ACTION_A1)
    v1_no_h0 = _resign(replace(env, hdr=_with_handling(env.hdr, h0=False)))
    env11 = _format.decode(v11_no_action)
    v11_amber_no_h0 = _resign(replace(env11, hdr=_with_handling(env11.hdr, h0=False)))
    env5 = _format.decode(five)
    swapped = _format.encode(replace(env5, rcpt=(env5.rcpt[1], env5.rcpt[0], *env5.rcpt[2:])))
    return [*_cases.build_conformance(),
        Vector("success-one-recipient", "success", "one recipient, no sections", one,
               "MLT-AFM", payload=PAYLOAD, codes=V1_ALERT_CODES),
        Vector("success-section-opened", "success",
               "five recipients; the personal-data section is wrapped for MLT-AFM only",
               five, "MLT-AFM", payload=PAYLOAD, sections={"personal-data": PERSONAL},
               codes=V1_ALERT_CODES),
        Vector("success-section-withheld", "success",
               "five recipients; this one gets the body but not the personal-data section",
               five, "GRC-HCG", payload=PAYLOAD, withheld=("personal-data",),
               codes=V1_ALERT_CODES),
        Vector("no-match", "no match", "the identity is not among the recipients", one,
               "GRC-HCG", error="not_a_recipient", rule="MUST-025"),
        Vector("body-tampered", "auth failure", "one bit of the body ciphertext flipped",
               _flip(one, body_at + 5), "MLT-AFM", error="auth_failed", rule="MUST-023"),
        Vector("signature-tampered", "auth failure", "one bit of the signature flipped",
               _flip(one, len(one) - 1), "MLT-AFM", error="auth_failed", rule="MUST-023"),
        Vector("forged-originator", "auth failure",
               "signed by another agency's key while naming ITA-GDF as originator",
               forged, "MLT-AFM", error="auth_failed", rule="MUST-023"),
        Vector("stanzas-reordered", "header failure",
               "stanzas reordered after signing: not canonical", swapped, "ESP-GC",
               error="non_canonical", rule="MUST-016"),
        Vector("version-2", "header failure", "version field 2", hdr_v2, "MLT-AFM",
               error="unsupported_version", rule="MUST-003"),
        Vector("unknown-suite", "header failure", "suite id 7", other_suite, "MLT-AFM",
               error="unsupported_suite", rule="MUST-011"),
        Vector("non-canonical-header", "header failure", "header map keys not sorted",
               non_canonical, "MLT-AFM", error="non_canonical", rule="MUST-016"),
        Vector("default-written-out", "header failure",
               "validly signed header that writes out priority 'routine', its default value",
               default_written, "MLT-AFM", error="non_canonical", rule="MUST-018"),
        Vector("header-schema", "header failure",
               "validly signed header whose priority is not one the schema knows", bad_header,
               "MLT-AFM", error="header_invalid", rule="MUST-017"),
        Vector("header-id-trailing-newline", "header failure",
               "validly signed header whose id is a UUIDv7 followed by a newline", id_newline,
               "MLT-AFM", error="header_invalid", rule="MUST-017"),
        Vector("success-iir1-defaults", "success",
               "iir/1 header without action or h0: they mean A1 and H0 (decision 0019)",
               v1_defaults, "MLT-AFM", payload=PAYLOAD, codes=("TLP:AMBER", "H0", "H1", "A1"),
               header_omits=("schema", "handling.action", "handling.h0")),
        Vector("success-iir11-no-action", "success",
               "iir/1.1 header without action: no action code; h0 left out still means H0",
               v11_no_action, "MLT-AFM", payload=PAYLOAD_V11, codes=("TLP:AMBER", "H0", "H1"),
               header_omits=("handling.action", "handling.h0")),
        Vector("success-iir11-action-a1", "success",
               "iir/1.1 header that writes action A1 out (as 'palermo schema upgrade' does): "
               "under iir/1.1 A1 is not the default", v11_a1, "MLT-AFM", payload=PAYLOAD_V11,
               codes=("TLP:AMBER", "H0", "H1", "A1"), header_omits=("handling.h0",)),
        Vector("success-iir11-public", "success",
               "iir/1.1 public information: TLP:CLEAR, h0 false, no action code",
               v11_public, "MLT-AFM", payload=PAYLOAD_PUBLIC, codes=("TLP:CLEAR", "H1"),
               header_omits=("handling.action",)),
        Vector("header-iir1-h0-false", "header failure",
               "validly signed iir/1 header with h0 false: H0 is always in force under iir/1",
               v1_no_h0, "MLT-AFM", error="header_invalid", rule="MUST-017"),
        Vector("header-iir11-h0-false-amber", "header failure",
               "validly signed iir/1.1 header with h0 false under TLP:AMBER (needs TLP:CLEAR)",
               v11_amber_no_h0, "MLT-AFM", error="header_invalid", rule="MUST-017"),
        Vector("truncated", "header failure", "the last 10 bytes are missing", one[:-10],
               "MLT-AFM", error="malformed", rule="MUST-006"),
        Vector("trailing-bytes", "header failure", "one extra byte after the envelope",
               one + b"\x00", "MLT-AFM", error="malformed", rule="MUST-006"),
    ]  # fmt: skip


def parse(text: str) -> tuple[dict[str, list[str]], bytes]:
    """Read a vector file: its header fields (repeatable) and the envelope bytes."""
    head, _, body = text.partition("\n\n")
    fields: dict[str, list[str]] = {}
    for line in head.splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    return fields, base64.b64decode("".join(body.split()))


def main(write: Callable[[Path, str], object] = Path.write_text) -> None:
    for vector in build_all():
        write(HERE / f"{vector.name}.txt", vector.render())


if __name__ == "__main__":
    main()
