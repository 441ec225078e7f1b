"""The conformance vectors: for both suites, one file per broken rule of docs/envelope-v1.md.

Each failure vector breaks exactly one numbered rule: whatever lies behind the signature is
re-signed after the change (so MUST-023 is not broken too), and a change that cannot be encoded
canonically is packed by hand with a signature over the bytes as they are. Success vectors for
suite 2, and the mixed cases (two hybrid keys for one agency during a rotation, suite 1 sealed to
hybrid keys, a RED report under a rule requiring suite 2), come on top.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import msgpack

from protocol import crypto
from protocol.envelope import _format, _seal
from schemas import Handling, SectionInfo
from schemas.export import parse_report

from . import generate as g

Suite = int
SUITES: tuple[Suite, ...] = (1, 2)
MLT, GRC = "MLT-AFM", "GRC-HCG"
RED = g.Scenario(handling=Handling(tlp="RED", rel_to=[MLT]))


def _base(suite: Suite) -> tuple[bytes, bytes]:
    """One recipient (MLT-AFM), and five recipients with a section for MLT-AFM only."""
    one = g.sealed(f"c{suite}-one", (MLT,), n=200 + 10 * suite, suite=suite)
    five = g.sealed(f"c{suite}-five", g.AGENCIES, sections=True, n=201 + 10 * suite, suite=suite)
    return one, five


def _top(env: _format.Envelope) -> dict[str, Any]:
    """The envelope's seven fields as plain msgpack values, in order."""
    return msgpack.unpackb(_format.encode(env), raw=False)  # type: ignore[no-any-return]


def _signed_raw(top: dict[str, Any], key_order: tuple[str, ...] | None = None) -> bytes:
    """Pack ``top`` as it is (no canonicalisation) and sign the bytes before a final 64-byte
    ``sig``, so that only the shape is wrong, never the signature."""
    order = key_order or tuple(top)
    packed = msgpack.packb({k: top[k] for k in order}, use_bin_type=True)
    if order[-1] != "sig" or not isinstance(top["sig"], bytes) or len(top["sig"]) != 64:
        return packed  # type: ignore[no-any-return]
    signer = g.signing_key("ITA-GDF")
    sig = crypto.sign(signer.private, _seal.DOMAIN_SIGNATURE, packed[: -64 - 6])
    return packed[:-64] + sig  # type: ignore[no-any-return]


def _resign_bytes(data: bytes) -> bytes:
    """Bytes edited by hand, signed again over everything before the signature (the last 64
    bytes after the 6 of its key and bin header), so the edit is the only fault."""
    signer = g.signing_key("ITA-GDF")
    return data[:-64] + crypto.sign(signer.private, _seal.DOMAIN_SIGNATURE, data[:-70])


def _hdr_raw(env: _format.Envelope, hdr: Any) -> bytes:
    return _signed_raw({**_top(env), "hdr": hdr})


def _deep(level: int) -> Any:
    node: Any = "x"
    for _ in range(level):
        node = [node]
    return node


def _report_body() -> tuple[bytes, dict[str, bytes], list[SectionInfo], Any]:
    """A real iir/1 report, partitioned as a node seals it (for the body_mismatch rule)."""
    from schemas import partition

    report = parse_report(
        (g.HERE.parents[1] / "schemas/examples/01-routes-central-med-departure.json").read_text()
    )
    parts = partition(report)
    sections = {k: msgpack.packb(v, use_bin_type=True) for k, v in parts.section_bodies().items()}
    return msgpack.packb(parts.main, use_bin_type=True), sections, parts.sections(), report


def _mismatched_report(suite: Suite) -> bytes:
    """The header says priority routine; the sealed report says urgent (or the reverse)."""
    body, sections, infos, report = _report_body()
    header = g._header((MLT,), n=300 + suite)
    header = header.model_copy(
        update={
            "kind": report.kind, "route": report.route, "category": report.category,
            "handling": report.handling, "schema_": report.schema_, "sections": infos,
            "priority": "routine" if report.priority.value == "urgent" else "urgent",
        }
    )  # fmt: skip
    hybrid = suite == 2
    key = g.encryption_key(MLT, hybrid).public
    return _seal.seal(
        header, body, g.signing_key("ITA-GDF"), [key],
        {sid: (plain, [key]) for sid, plain in sections.items()}, suite=suite,
        _randomness=g._randomness(f"c{suite}-mismatch", 1 + len(sections), suite),
    )  # fmt: skip


Case = tuple[str, str, bytes, str, str, str, tuple[tuple[str, str], ...]]
"""(name suffix, description, envelope, identity, error, rule, inputs)."""


# fmt: off
def _failures(suite: Suite, one: bytes, five: bytes) -> Iterator[Case]:
    env, env5 = _format.decode(one), _format.decode(five)
    top, top5 = _top(env), _top(env5)
    other = 2 if suite == 1 else 1
    none: tuple[tuple[str, str], ...] = ()
    stanza_len = len(env.rcpt[0].enc)

    yield ("too-large", "one byte over the decoder's limit", one, MLT, "too_large", "MUST-001",
           (("max-size", str(len(one) - 1)),))
    yield ("first-key-not-v", "a map whose first key is suite, not v",
           _signed_raw(top, ("suite", "v", "hdr", "rcpt", "body", "sections", "sig")), MLT,
           "malformed", "MUST-002", none)
    yield ("eight-fields", "a map of eight fields (an extra key before sig)",
           _signed_raw({**{k: v for k, v in top.items() if k != "sig"}, "x": 0, "sig": top["sig"]}),
           MLT, "malformed", "MUST-010", none)
    yield ("version-0", "version field 0", _resign_bytes(b"\x87\xa1v\x00" + one[4:]), MLT,
           "unsupported_version", "MUST-003", none)
    yield ("version-255", "version field 255 (uint8)",
           _resign_bytes(b"\x87\xa1v\xcc\xff" + one[4:]), MLT, "unsupported_version", "MUST-003",
           none)
    yield ("version-uint8", "version 1 written as uint8 (0xcc 0x01), not as a fixint",
           _resign_bytes(b"\x87\xa1v\xcc\x01" + one[4:]), MLT, "non_canonical", "MUST-004", none)
    yield ("header-too-many-objects", "a header of 4,100 msgpack objects",
           _hdr_raw(env, {**env.hdr, "x": [[0] * 1000 for _ in range(4)] + [list(range(90))]}),
           MLT, "too_complex", "MUST-005", none)
    if suite == 1:
        yield ("envelope-too-many-objects", "21,000 nils in nested arrays in place of rcpt",
               _signed_raw({**top, "rcpt": [[None] * 1000 for _ in range(21)]}), MLT,
               "too_complex", "MUST-005", none)
    yield ("truncated", "the last 10 bytes are missing", one[:-10], MLT, "malformed", "MUST-006",
           none)
    yield ("trailing-bytes", "one extra byte after the envelope", one + b"\x00", MLT, "malformed",
           "MUST-006", none)
    at = one.index(b"\xa4body") + 5
    yield ("never-used-byte", "the body's bin header replaced by 0xc1, which msgpack never uses",
           one[:at] + b"\xc1" + one[at + 1 :], MLT, "malformed", "MUST-006", none)
    yield ("header-extension", "an extension type (code 5) in the header",
           _hdr_raw(env, {**env.hdr, "x": msgpack.ExtType(5, b"abc")}), MLT, "malformed",
           "MUST-007", none)
    if suite == 1:
        yield ("header-timestamp", "the msgpack timestamp extension in the header",
               _hdr_raw(env, {**env.hdr, "x": msgpack.Timestamp(1, 0)}), MLT, "malformed",
               "MUST-007", none)
        yield ("header-array-1025", "a header array of 1,025 items",
               _hdr_raw(env, {**env.hdr, "x": [0] * 1025}), MLT, "malformed", "MUST-008", none)
        yield ("header-map-65", "a header map of 65 entries",
               _hdr_raw(env, {**env.hdr, "x": {f"k{i:02d}": 0 for i in range(65)}}), MLT,
               "malformed", "MUST-008", none)
    yield ("header-nested-9", "a header value nested 9 levels deep",
           _hdr_raw(env, {**env.hdr, "x": _deep(9)}), MLT, "malformed", "MUST-008", none)
    yield ("header-float", "a float in the header", _hdr_raw(env, {**env.hdr, "x": 1.5}), MLT,
           "malformed", "MUST-009", none)
    if suite == 1:
        yield ("header-int-key", "an integer map key in the header",
               _signed_raw({**top, "hdr": {**env.hdr, "handling": {1: 0}}}), MLT, "malformed",
               "MUST-009", none)
        yield ("header-bytes", "a byte string in the header",
               _hdr_raw(env, {**env.hdr, "x": b"bytes"}), MLT, "malformed", "MUST-009", none)
        yield ("body-as-str", "the body as a msgpack str, not bin",
               _signed_raw({**top, "body": "x" * 40}), MLT, "malformed", "MUST-010", none)
        yield ("hdr-not-a-map", "hdr is an array", _signed_raw({**top, "hdr": [1, 2]}), MLT,
               "malformed", "MUST-010", none)
    yield ("fields-reordered", "v first, but hdr before suite",
           _signed_raw(top, ("v", "hdr", "suite", "rcpt", "body", "sections", "sig")), MLT,
           "malformed", "MUST-010", none)
    stanza = {**top["rcpt"][0], "x": 1}
    yield ("stanza-extra-key", "a stanza with a fourth key",
           _signed_raw({**top, "rcpt": [stanza]}), MLT, "malformed", "MUST-010", none)
    unknown = 0 if suite == 1 else 3
    yield (f"suite-{unknown}", f"suite id {unknown}", _signed_raw({**top, "suite": unknown}), MLT,
           "unsupported_suite", "MUST-011", none)
    yield ("stanza-short", f"the stanza is {stanza_len - 1} bytes, one short",
           g._resign(replace(env, rcpt=(replace(env.rcpt[0], enc=env.rcpt[0].enc[:-1]),))), MLT,
           "malformed", "MUST-012", none)
    yield (f"relabelled-suite-{other}", f"a suite-{suite} envelope relabelled suite {other}, "
           "re-signed: its stanzas have the other suite's length",
           g._resign(replace(env, suite=other)), MLT, "malformed", "MUST-012", none)
    yield ("sig-63", "a 63-byte signature", _signed_raw({**top, "sig": top["sig"][:63]}), MLT,
           "malformed", "MUST-013", none)
    yield ("body-15", "a body of 15 bytes, shorter than a tag",
           g._resign(replace(env, body=env.body[:15])), MLT, "malformed", "MUST-014", none)
    sec = env5.sections[0]
    yield ("section-15", "a section of 15 bytes",
           g._resign(replace(env5, sections=(replace(sec, body=sec.body[:15]),))), MLT,
           "malformed", "MUST-014", none)
    nine = [{"body": bytes(16), "id": f"s{i}", "rcpt": []} for i in range(9)]
    yield ("nine-sections", "nine sections", _signed_raw({**top, "sections": nine}), MLT,
           "malformed", "MUST-015", none)
    if suite == 1:
        many = [{"agency": f"AG-{i:03d}", "enc": bytes(80), "kid": "0" * 16} for i in range(257)]
        yield ("257-stanzas", "257 stanzas in the body's list", _signed_raw({**top, "rcpt": many}),
               MLT, "malformed", "MUST-015", none)
    yield ("header-unsorted", "header map keys not sorted",
           _hdr_raw(env, dict(reversed(list(env.hdr.items())))), MLT, "non_canonical", "MUST-016",
           none)
    rcpt5 = top5["rcpt"]
    yield ("stanzas-reordered", "the first two stanzas swapped, re-signed",
           _signed_raw({**top5, "rcpt": [rcpt5[1], rcpt5[0], *rcpt5[2:]]}), "ESP-GC",
           "non_canonical", "MUST-016", none)
    yield ("stanza-duplicated", "the same stanza twice, re-signed",
           _signed_raw({**top5, "rcpt": [rcpt5[0], *rcpt5]}), "ESP-GC", "non_canonical",
           "MUST-016", none)
    yield ("suite-uint8", f"suite {suite} written as uint8, not as a fixint", _resign_bytes(
           one.replace(b"\xa5suite" + bytes([suite]), b"\xa5suite\xcc" + bytes([suite]), 1) ), MLT,
           "non_canonical", "MUST-016", none)
    yield ("stanza-kid-str8", "a stanza kid written as str8, not as a fixstr",
           _resign_bytes(one.replace(b"\xa3kid\xb0", b"\xa3kid\xd9\x10", 1)), MLT, "non_canonical",
           "MUST-016", none)
    yield ("header-schema", "validly signed header whose priority is not one the schema knows",
           g._resign(replace(env, hdr={**env.hdr, "priority": "extreme"})), MLT,
           "header_invalid", "MUST-017", none)
    yield ("header-unknown-field", "validly signed header with a field the schema lacks",
           g._resign(replace(env, hdr={**env.hdr, "colour": "blue"})), MLT, "header_invalid",
           "MUST-017", none)
    yield ("default-written-out", "validly signed header that writes out priority routine",
           g._resign(replace(env, hdr={**env.hdr, "kind": "alert", "priority": "routine"})), MLT,
           "non_canonical", "MUST-018", none)
    rel_to = ["group:med-coastal", "MLT-AFM"]
    yield ("header-list-unsorted", "validly signed header whose rel_to is not sorted",
           g._resign(replace(env, hdr=g._with_handling(env.hdr, rel_to=rel_to))), MLT,
           "non_canonical", "MUST-018", none)
    stray = replace(env.rcpt[0], agency=GRC)
    yield ("stanza-for-non-recipient", "a second stanza for an agency not in recipients",
           g._resign(replace(env, rcpt=(stray, env.rcpt[0]))), MLT, "malformed", "MUST-019", none)
    yield ("recipient-without-stanza", "GRC-HCG listed as a recipient without a stanza",
           g._resign(replace(env, hdr={**env.hdr, "recipients": [GRC, MLT]})), MLT, "malformed",
           "MUST-019", none)
    yield ("sections-differ", "the header lists a section the envelope does not carry",
           g._resign(replace(env5, sections=())), MLT, "malformed", "MUST-019", none)
    if suite == 1:
        # MLT-AFM's real stanza among them: without MUST-019 the vector would open, not fail
        # as not_a_recipient (MUST-025) too.
        five_kids = tuple(sorted(
            (env.rcpt[0], *(replace(env.rcpt[0], kid=f"{i:016x}") for i in range(4))),
            key=lambda s: s.kid))
        yield ("five-stanzas-one-agency", "five stanzas for MLT-AFM, one of them its real one",
               g._resign(replace(env, rcpt=five_kids)), MLT, "malformed", "MUST-019", none)
    future = g.NOW_MS + 6 * 60 * 1000
    yield ("created-in-the-future", "created 6 minutes ahead of now (5 tolerated)",
           g._resign(replace(env, hdr={**env.hdr, "created": future})), MLT, "clock_skew",
           "MUST-020", none)
    yield ("unknown-kid", "a signing kid no one holds",
           g._resign(replace(env, hdr={**env.hdr, "kid": "00000000000000ff"})), MLT,
           "unknown_signer", "MUST-021", none)
    yield ("signer-expired", "the signing key expired after created and before now", one, MLT,
           "key_not_valid", "MUST-022", (("signer-not-after", str(g.NOW_MS - 100_000)),))
    yield ("signature-tampered", "one bit of the signature flipped", g._flip(one, len(one) - 1),
           MLT, "auth_failed", "MUST-023", none)
    yield ("body-tampered-unsigned", "one bit of the body flipped, not re-signed",
           g._flip(one, one.index(env.body) + 5), MLT, "auth_failed", "MUST-023", none)
    yield ("replayed", "the id was already accepted", one, MLT, "replayed", "MUST-024",
           (("seen", "true"),))
    yield ("no-match", "the identity is not among the recipients", one, GRC, "not_a_recipient",
           "MUST-025", none)
    yield ("section-withheld", "the receiver's policy withholds the section wrapped for it", five,
           MLT, "section_withheld", "MUST-027", (("withhold", "personal-data"),))
    yield ("body-tampered-resigned", "one bit of the body flipped, then re-signed",
           g._resign(replace(env, body=g._flip(env.body, 3))), MLT, "auth_failed", "MUST-028",
           none)
    yield ("section-tampered-resigned", "one bit of the section flipped, then re-signed",
           g._resign(replace(env5, sections=(replace(sec, body=g._flip(sec.body, 3)),))), MLT,
           "auth_failed", "MUST-028", none)
    ours = env.rcpt[0]
    yield ("stanza-tampered-resigned", "one bit of our stanza's sealed key flipped, re-signed",
           g._resign(replace(env, rcpt=(replace(ours, enc=g._flip(ours.enc, -20)),))),
           MLT, "auth_failed", "MUST-028", none)
    theirs = next(s for s in env5.rcpt if s.agency == MLT)
    yield ("stanza-from-another-envelope", "our stanza from another envelope, re-signed",
           g._resign(replace(env, rcpt=(theirs,))), MLT, "auth_failed", "MUST-028", none)
    body_stanza = next(s for s in env5.rcpt if s.agency == MLT)
    yield ("stanza-moved-to-section", "the body's stanza copied into the section, re-signed",
           g._resign(replace(env5, sections=(replace(sec, rcpt=(body_stanza,)),))), MLT,
           "auth_failed", "MUST-028", none)
    yield ("body-mismatch", "the sealed report's priority differs from the header's",
           _mismatched_report(suite), MLT, "body_mismatch", "MUST-029", (("check", "report"),))
    yield ("publish-subject", "published on another category's subject", one, MLT,
           "subject_mismatch", "MUST-030",
           (("subject", "plm.pub.ITA-GDF.alert.central-med.documents"), ("subject-role", "broker")))
    yield ("delivery-subject", "delivered on another recipient's subject", one, MLT,
           "subject_mismatch", "MUST-031",
           (("subject", "plm.dlv.GRC-HCG.ITA-GDF.alert.central-med.routes"),
            ("subject-role", "node")))
# fmt: on


def _successes(suite: Suite, one: bytes, five: bytes) -> Iterator[g.Vector]:
    hybrid = suite == 2
    env = _format.decode(five)
    garbage = tuple(replace(s, enc=bytes(len(s.enc))) if s.agency == GRC else s for s in env.rcpt)
    yield g.Vector(
        f"suite{suite}-other-stanza-garbage",
        "success",
        "a garbage stanza for GRC-HCG does not stop MLT-AFM (re-signed)",
        g._resign(replace(env, rcpt=garbage)),
        MLT,
        payload=g.PAYLOAD,
        sections={"personal-data": g.PERSONAL},
        codes=g.V1_ALERT_CODES,
        rule="MUST-026",
        suite=suite,
        hybrid=hybrid,
    )
    if suite == 1:
        return
    yield g.Vector(
        "suite2-success-one-recipient",
        "success",
        "suite 2, one recipient",
        one,
        MLT,
        payload=g.PAYLOAD,
        codes=g.V1_ALERT_CODES,
        suite=2,
        hybrid=True,
    )
    yield g.Vector(
        "suite2-success-section-opened",
        "success",
        "suite 2, five recipients; the personal-data section is for MLT-AFM only",
        five,
        MLT,
        payload=g.PAYLOAD,
        sections={"personal-data": g.PERSONAL},
        codes=g.V1_ALERT_CODES,
        suite=2,
        hybrid=True,
    )
    yield g.Vector(
        "suite2-success-section-withheld",
        "success",
        "suite 2, five recipients; GRC-HCG gets the body but not the section",
        five,
        GRC,
        payload=g.PAYLOAD,
        withheld=("personal-data",),
        codes=g.V1_ALERT_CODES,
        suite=2,
        hybrid=True,
    )
    overlap = [g.encryption_key(MLT, True, "old").public, g.encryption_key(MLT, True).public]
    yield g.Vector(
        "suite2-success-rotation-overlap",
        "success",
        "mixed: suite 2 wrapped to two hybrid keys of MLT-AFM (a rotation overlap)",
        g.sealed("c2-overlap", (MLT,), n=230, suite=2, keys=overlap),
        MLT,
        payload=g.PAYLOAD,
        codes=g.V1_ALERT_CODES,
        suite=2,
        hybrid=True,
    )
    to_hybrid = [g.encryption_key(a, True).public for a in (GRC, MLT)]
    yield g.Vector(
        "suite1-success-to-hybrid-keys",
        "success",
        "mixed: suite 1 sealed to the X25519 part of hybrid keys, opened with it",
        g.sealed("c1-hybrid", (GRC, MLT), n=231, suite=1, keys=to_hybrid),
        MLT,
        payload=g.PAYLOAD,
        codes=g.V1_ALERT_CODES,
        suite=1,
        hybrid=True,
    )
    yield g.Vector(
        "suite2-success-red-required",
        "success",
        "TLP:RED sealed with suite 2 where the federation requires suite 2 for RED",
        g.sealed("c2-red", (MLT,), n=232, suite=2, scenario=RED),
        MLT,
        payload=g.PAYLOAD,
        codes=("TLP:RED", "H0", "H1", "A1"),
        suite=2,
        hybrid=True,
        inputs=(("policy", "suite_2_for_tlp=RED"),),
    )


_POST_VERIFY = {"replayed", "section_withheld", "subject_mismatch", "body_mismatch",
                "suite-below-policy"}  # fmt: skip


def _expect(error: str) -> str:
    if error == "auth_failed":
        return "auth failure"
    if error == "not_a_recipient":
        return "no match"
    return "refused" if error in _POST_VERIFY else "header failure"


def build_conformance() -> list[g.Vector]:
    vectors: list[g.Vector] = []
    for suite in SUITES:
        one, five = _base(suite)
        for name, description, data, identity, error, rule, inputs in _failures(suite, one, five):
            vectors.append(g.Vector(
                f"suite{suite}-{name}", _expect(error), description, data, identity,
                error=error, rule=rule, suite=suite, hybrid=suite == 2, inputs=inputs,
            ))  # fmt: skip
        vectors.extend(_successes(suite, one, five))
    red1 = g.sealed("c1-red", (MLT,), n=233, suite=1, scenario=RED)
    vectors.append(g.Vector(
        "suite1-red-below-required-suite", "refused",
        "TLP:RED sealed with suite 1 where the federation requires suite 2 for RED", red1, MLT,
        error="suite-below-policy", rule="MUST-032", suite=1,
        inputs=(("policy", "suite_2_for_tlp=RED"),),
    ))  # fmt: skip
    return vectors
