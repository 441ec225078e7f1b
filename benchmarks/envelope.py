"""Envelope v1 seal/open against the JOSE a team would otherwise use, measured in the same run.

    python benchmarks/envelope.py              # readable tables (what `make bench` runs)
    python benchmarks/envelope.py --quick      # the same, in well under a minute
    python benchmarks/envelope.py --json       # last line: one JSON object
    python benchmarks/envelope.py --markdown   # the table for docs/benchmarks.md

Both sides do the same job on the same 2,048 payload bytes (a msgpack report), with the same
Ed25519 signing key and the same X25519 recipient keys (imported into ``jwcrypto``).

Timed region of **seal** (sign + encrypt for N recipients):
- Palermo: build the ``EnvelopeHeader`` (new UUIDv7, ``created`` now, pydantic validation), then
  ``protocol.envelope.seal``: Ed25519 signature, one HPKE X25519 stanza per recipient, AES-256-GCM.
- JOSE (``jwcrypto``): build the protected headers (compact ``json.dumps``), a JWS (``EdDSA``,
  with ``kid``) in compact form, nested in a JWE in general JSON serialization (protected
  ``enc: A256GCM``, ``cty: JOSE``) with one recipient per partner (``alg: ECDH-ES+A256KW`` and
  the partner's ``kid``), serialized and encoded to UTF-8 bytes.
Key generation and key import are outside the timed region on both sides.

Timed region of **open** (decrypt for one recipient, the last, + verify the signature):
- Palermo: ``open_envelope``, which also checks the format, canonical encoding, header schema,
  consistency and clock skew (JOSE has no equivalent for these).
- JOSE: JWE deserialize + decrypt with a ``JWKSet`` holding the recipient's key (its ``kid``
  selects the recipient entry, as a careful integrator would do), then JWS deserialize + verify
  with the originator's key found by ``kid``. Also measured, not used for the headline: the bare
  key and no ``kid`` lookup, where ``jwcrypto`` tries every recipient entry (an X25519 exchange
  and a failed key unwrap each).

**Open floors** (same rounds, same envelope): ``floor_open_crypto`` is only the cryptography any
open must do (signature over the signed bytes, the reader's HPKE stanza, the body's AES-GCM),
inputs located in advance; ``floor_open_parsed`` adds msgpack decoding and the header schema.
``open_ceiling_*`` = JOSE open / floor: the best open ratio any implementation on these libraries
could report.

**Size** = bytes on the wire: ours msgpack, JOSE's JSON serialization as UTF-8. JOSE carries only
the key ids it needs, our header also the routing and handling metadata the broker reads; for
information, the JOSE size with that same metadata in its JWE protected header is reported too.

Method: one process; for each N, a warm-up and calibration (operations per batch chosen so a
batch lasts about the same time on every arm), then rounds in which every arm runs one batch,
the order reversed every other round, so drift on a shared machine hits both sides. Figures are
per-operation times (``time.perf_counter_ns`` batch means): median, p10 and p90 over the rounds.
Headline ratios at 5 recipients: ``seal_speedup_vs_jose`` = JOSE seal / our seal,
``open_speedup_vs_jose`` = JOSE open / our open (medians), ``size_vs_jose`` = our bytes / JOSE
bytes; ``open_vs_floor`` = our open / the "+ msgpack, schema" floor (medians, same run). Targets,
reported and not asserted: seal >= 3x, open >= 3x, open_vs_floor <= 1.3, size <= 60% (issue 19
restated the open target against the floor: decision 0033).

**Suite 2** (post-quantum hybrid ML-KEM-768 + X25519, decision 0035), in the same rounds: the
same recipients with hybrid keys (their X25519 part unchanged), so ``protocol.envelope.seal``
picks suite 2; seal, open and bytes beside suite 1 and JOSE, and the cost of going
post-quantum as suite 2 / suite 1 (``suite2_seal_cost``, ``suite2_open_cost``,
``suite2_size_cost``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Final

import msgpack
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from jwcrypto import jwe, jwk, jws

from protocol import crypto
from protocol.envelope import StaticSigners, _format, _seal, open_envelope, seal
from protocol.keys import EncryptionKey, SigningKey
from schemas import EnvelopeHeader, Handling, new_uuid7

COUNTS: Final[tuple[int, ...]] = (1, 5, 20)
HEADLINE_N: Final[int] = 5
PAYLOAD_BYTES: Final[int] = 2048
ORIGINATOR: Final[str] = "ITA-GDF"
# name: (comparison, target) at HEADLINE_N recipients.
TARGETS: Final[dict[str, tuple[str, float]]] = {
    "seal_speedup_vs_jose": (">=", 3.0),
    "open_speedup_vs_jose": (">=", 3.0),
    "open_vs_floor": ("<=", 1.3),
    "size_vs_jose": ("<=", 0.60),
}


@dataclass(frozen=True)
class Profile:
    rounds: int
    batch_ms: float
    warmup_ms: float


FULL: Final = Profile(rounds=31, batch_ms=60.0, warmup_ms=300.0)
QUICK: Final = Profile(rounds=11, batch_ms=30.0, warmup_ms=100.0)

_NARRATIVE = (
    "At 02:10 UTC a maritime patrol aircraft observed a grey inflatable boat, about 11 metres "
    "long, leaving the beach west of Zuwara and heading north-north-east at 6 to 7 knots. Around "
    "40 persons were on board, including at least 6 women and 3 small children; no life jackets "
    "were visible and the boat sat low in the water. Two persons at the stern appeared to steer "
    "and to hold a satellite phone. A second, smaller wooden boat followed for about 20 minutes, "
    "then turned back towards the coast; its crew may have recovered the outboard engine of an "
    "earlier departure. Weather: wind north-west 12 knots, sea state 3, worsening after noon. "
    "The pattern matches three departures in the past fortnight from the same stretch of beach, "
    "organised by the network reported in the previous assessment; brokers in the town collect "
    "payment in cash and by hawala and move groups to the beach in closed vans at night. "
)


def report_payload(size: int = PAYLOAD_BYTES) -> bytes:
    """A realistic intelligence report as msgpack, padded to exactly ``size`` bytes.

    The narrative is trimmed or extended so the whole msgpack document (not a truncated prefix
    of it) is ``size`` bytes long and still decodes.
    """
    report: dict[str, Any] = {
        "schema": "iir/1",
        "originator": ORIGINATOR,
        "kind": "report",
        "route": "central-med",
        "category": "routes",
        "title": "Inflatable boat with about 40 persons departed west of Zuwara",
        "summary": (
            "Overloaded inflatable observed departing Zuwara towards Lampedusa; no safety "
            "equipment; likely the same facilitation network as the two previous departures."
        ),
        "observed": "2026-11-22T02:10:00Z",
        "grading": {"source": "B", "information": "2"},
        "itinerary": {
            "embarkation": {"country": "LBY", "place": "Zuwara", "lat": 32.93, "lon": 12.08},
            "destination": {"country": "ITA", "place": "Lampedusa"},
        },
        "vessel": {"type": "inflatable", "colour": "grey", "length_m": 11, "engine": "40 hp"},
        "persons": {"estimate": 40, "women": 6, "minors": 3, "nationalities": ["GIN", "CIV"]},
        "indicators": ["overloaded", "no-life-jackets", "satellite-phone", "escort-boat"],
        "narrative": {"language": "en", "text": ""},
    }
    text = _NARRATIVE * (size // len(_NARRATIVE) + 2)
    # msgpack length prefixes grow by steps: search down for the narrative length that fits.
    for length in range(len(text), -1, -1):
        report["narrative"]["text"] = text[:length]
        packed: bytes = msgpack.packb(report, use_bin_type=True)
        if len(packed) == size:
            return packed
    raise ValueError(f"cannot build a {size}-byte report")


def _header(signer: SigningKey, recipients: list[str]) -> EnvelopeHeader:
    return EnvelopeHeader(
        id=new_uuid7(),
        originator=ORIGINATOR,
        kid=signer.kid,
        created=datetime.now(UTC),
        kind="report",
        route="central-med",
        category="routes",
        handling=Handling(tlp="AMBER", rel_to=["group:med-coastal"]),
        recipients=recipients,
    )


class Palermo:
    """Envelope v1: seal for N recipients, open as the last one."""

    def __init__(self, signer: SigningKey, keys: list[EncryptionKey], body: bytes) -> None:
        self.body = body
        self.signer = signer
        self.keys = keys
        self.agencies = sorted(k.agency for k in keys)
        self.public = [k.public for k in keys]
        self.signers = StaticSigners.of([signer.public])
        self.reader = [keys[-1]]
        self.sealed = self.seal()

    def seal(self) -> bytes:
        return seal(_header(self.signer, self.agencies), self.body, self.signer, self.public)

    def open(self) -> bytes:
        return open_envelope(self.sealed, self.reader, self.signers, now=datetime.now(UTC)).body


class OpenFloor:
    """What any open of this envelope must spend, measured on the very envelope Palermo opens.

    ``crypto``: the signature over the whole envelope (SHA-256 + Ed25519), the reader's HPKE
    stanza and the body's AES-GCM, with every input already located (no parsing at all).
    ``parsed``: the same plus the two checks no implementation of DESIGN.md can skip: msgpack
    decoding and the header schema (``EnvelopeHeader.model_validate``). Neither is a usable
    open; they bound from below what any implementation on these libraries can reach.
    """

    def __init__(self, ours: Palermo) -> None:
        self.data = ours.sealed
        env = _format.decode(self.data)
        reader = ours.reader[0]
        stanza = next(s for s in env.rcpt if (s.agency, s.kid) == (reader.agency, reader.kid))
        self.envelope_id = uuid.UUID(env.hdr["id"]).bytes
        self.info = _seal._stanza_info(self.envelope_id, stanza.agency, stanza.kid, b"body")
        self.stanza, self.body, self.sig = stanza.enc, env.body, env.sig
        self.aad = _seal.header_digest(env.hdr, hdr_sorted=True) + b"\x00body"
        self.private = reader.private
        self.public = ours.signer.public.key

    def crypto(self) -> bytes:
        signed = _format.signed_prefix(self.data)
        crypto.verify(self.public, self.sig, _seal.DOMAIN_SIGNATURE, signed)
        content_key = crypto.hpke_open_x25519(self.private, self.info, self.stanza)
        key = crypto.derive_part_key(content_key, self.envelope_id, b"body")
        return crypto.aead_open(key, self.body, self.aad)

    def parsed(self) -> bytes:
        EnvelopeHeader.model_validate(msgpack.unpackb(self.data)["hdr"])
        return self.crypto()


def _json(obj: dict[str, Any]) -> str:
    """Compact JSON, as a size-conscious JOSE integrator would write its headers."""
    return json.dumps(obj, separators=(",", ":"))


def _jwk(private: Any, kid: str) -> jwk.JWK:
    """A ``cryptography`` private key as a jwcrypto JWK with our key id."""
    return jwk.JWK(**{**jwk.JWK.from_pyca(private).export(as_dict=True), "kid": kid})


class Jose:
    """jwcrypto: a JWS (EdDSA) nested in a multi-recipient JWE (ECDH-ES+A256KW, A256GCM)."""

    def __init__(self, signer: SigningKey, keys: list[EncryptionKey], body: bytes) -> None:
        self.body = body
        self.kid = signer.kid
        self.signing = _jwk(signer.private, signer.kid)
        self.verifiers = jwk.JWKSet()
        self.verifiers.add(jwk.JWK(**self.signing.export_public(as_dict=True)))
        private = [_jwk(k.private, k.kid) for k in keys]
        self.public = [jwk.JWK(**k.export_public(as_dict=True)) for k in private]
        self.reader_key = private[-1]
        self.reader = jwk.JWKSet()
        self.reader.add(self.reader_key)
        self.sealed = self.seal()

    def seal(self, metadata: dict[str, Any] | None = None) -> bytes:
        signed = jws.JWS(self.body)
        signed.add_signature(
            self.signing, alg="EdDSA", protected=_json({"alg": "EdDSA", "kid": self.kid})
        )
        protected: dict[str, Any] = {"enc": "A256GCM", "cty": "JOSE"}
        if metadata is not None:
            protected["palermo"] = metadata
        token = jwe.JWE(signed.serialize(compact=True).encode(), protected=_json(protected))
        for key in self.public:
            token.add_recipient(key, header=_json({"alg": "ECDH-ES+A256KW", "kid": key.kid}))
        serialized: str = token.serialize()
        return serialized.encode()

    def _open(self, key: jwk.JWK | jwk.JWKSet) -> bytes:
        token = jwe.JWE()
        token.deserialize(self.sealed.decode(), key=key)
        signed = jws.JWS()
        signed.deserialize(token.payload.decode(), key=self.verifiers)
        return bytes(signed.payload)

    def open(self) -> bytes:
        return self._open(self.reader)

    def open_without_kid(self) -> bytes:
        return self._open(self.reader_key)


def _batch(fn: Callable[[], object], ops: int) -> float:
    """Per-operation time in µs, the mean over one batch of ``ops`` calls."""
    start = time.perf_counter_ns()
    for _ in range(ops):
        fn()
    return (time.perf_counter_ns() - start) / ops / 1000


def _calibrate(fn: Callable[[], object], profile: Profile) -> int:
    """Warm ``fn`` up for ``warmup_ms`` and return how many calls fill one batch."""
    deadline = time.perf_counter_ns() + profile.warmup_ms * 1e6
    calls, start = 0, time.perf_counter_ns()
    while calls < 3 or time.perf_counter_ns() < deadline:
        fn()
        calls += 1
    per_call_ms = (time.perf_counter_ns() - start) / calls / 1e6
    return max(3, round(profile.batch_ms / per_call_ms))


def _summary(values: list[float]) -> dict[str, float]:
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return {
        "median": round(statistics.median(values), 1),
        "p10": round(deciles[0], 1),
        "p90": round(deciles[-1], 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def measure(n: int, body: bytes, profile: Profile) -> dict[str, Any]:
    signer = SigningKey.generate(ORIGINATOR)
    keys = [EncryptionKey.generate(f"AG{i:02d}-X") for i in range(n)]
    ours, peer = Palermo(signer, keys, body), Jose(signer, keys, body)
    # Both sides really round-trip, for every recipient, before anything is timed.
    for key in keys:
        opened = open_envelope(ours.sealed, [key], ours.signers, now=datetime.now(UTC))
        token = jwe.JWE()
        token.deserialize(peer.sealed.decode(), key=_jwk(key.private, key.kid))
        inner = jws.JWS()
        inner.deserialize(token.payload.decode(), key=peer.verifiers)
        if opened.body != body or bytes(inner.payload) != body:
            raise SystemExit(f"round trip failed for {key.agency}: nothing would be measured")
    floor = OpenFloor(ours)
    if {ours.open(), peer.open(), peer.open_without_kid(), floor.parsed()} != {body}:
        raise SystemExit("round trip failed: nothing would be measured")
    # Suite 2: the same agencies and X25519 keys, each with an ML-KEM-768 key beside it.
    hybrid = [EncryptionKey(k.agency, k.private, MLKEM768PrivateKey.generate()) for k in keys]
    ours2 = Palermo(signer, hybrid, body)
    if _format.decode(ours2.sealed).suite != 2 or any(
        open_envelope(ours2.sealed, [k], ours2.signers, now=datetime.now(UTC)).body != body
        for k in hybrid
    ):
        raise SystemExit("suite 2 round trip failed: nothing would be measured")

    arms: dict[str, tuple[str, Callable[[], object]]] = {
        "ours_seal": ("seal", ours.seal),
        "jose_seal": ("seal", peer.seal),
        "ours_open": ("open", ours.open),
        "jose_open": ("open", peer.open),
        "jose_open_without_kid": ("open", peer.open_without_kid),
        "floor_open_crypto": ("open", floor.crypto),
        "floor_open_parsed": ("open", floor.parsed),
        "suite2_seal": ("seal", ours2.seal),
        "suite2_open": ("open", ours2.open),
    }
    ops = {name: _calibrate(fn, profile) for name, (_, fn) in arms.items()}
    samples: dict[str, list[float]] = {name: [] for name in arms}
    paired: dict[str, list[float]] = {"seal": [], "open": []}
    for round_no in range(profile.rounds):
        order = list(arms) if round_no % 2 == 0 else list(reversed(arms))
        for name in order:
            gc.collect()
            samples[name].append(_batch(arms[name][1], ops[name]))
        paired["seal"].append(samples["jose_seal"][-1] / samples["ours_seal"][-1])
        paired["open"].append(samples["jose_open"][-1] / samples["ours_open"][-1])

    times = {name: _summary(values) for name, values in samples.items()}
    med = {name: t["median"] for name, t in times.items()}
    same_metadata = len(peer.seal(metadata=_header(signer, ours.agencies).to_wire()))
    return {
        "recipients": n,
        "us": times,
        "ops_per_batch": ops,
        "ours_bytes": len(ours.sealed),
        "jose_bytes": len(peer.sealed),
        "jose_bytes_same_metadata": same_metadata,
        "seal_speedup": round(med["jose_seal"] / med["ours_seal"], 2),
        "open_speedup": round(med["jose_open"] / med["ours_open"], 2),
        "open_speedup_without_kid": round(med["jose_open_without_kid"] / med["ours_open"], 2),
        "seal_speedup_paired_median": round(statistics.median(paired["seal"]), 2),
        "open_speedup_paired_median": round(statistics.median(paired["open"]), 2),
        "open_ceiling_crypto": round(med["jose_open"] / med["floor_open_crypto"], 2),
        "open_ceiling_parsed": round(med["jose_open"] / med["floor_open_parsed"], 2),
        "open_vs_floor": round(med["ours_open"] / med["floor_open_parsed"], 2),
        "size_ratio": round(len(ours.sealed) / len(peer.sealed), 3),
        "size_ratio_same_metadata": round(len(ours.sealed) / same_metadata, 3),
        "suite2_bytes": len(ours2.sealed),
        "suite2_seal_cost": round(med["suite2_seal"] / med["ours_seal"], 2),
        "suite2_open_cost": round(med["suite2_open"] / med["ours_open"], 2),
        "suite2_size_cost": round(len(ours2.sealed) / len(ours.sealed), 2),
        "suite2_seal_vs_jose": round(med["jose_seal"] / med["suite2_seal"], 2),
        "suite2_open_vs_jose": round(med["jose_open"] / med["suite2_open"], 2),
        "suite2_size_vs_jose": round(len(ours2.sealed) / len(peer.sealed), 3),
    }


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("cryptography", "jwcrypto", "msgpack", "pydantic"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }


def _met(name: str, value: float) -> bool:
    op, target = TARGETS[name]
    return value >= target if op == ">=" else value <= target


def run(profile: Profile, *, progress: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    body = report_payload()
    rows = []
    for n in COUNTS:
        if progress:
            print(f"measuring {n} recipient(s)...", file=sys.stderr, flush=True)
        rows.append(measure(n, body, profile))
    head = next(r for r in rows if r["recipients"] == HEADLINE_N)
    headline = {
        "seal_speedup_vs_jose": head["seal_speedup"],
        "open_speedup_vs_jose": head["open_speedup"],
        "open_vs_floor": head["open_vs_floor"],
        "size_vs_jose": head["size_ratio"],
    }
    ceilings = {
        # JOSE open / the floors: the best open ratio any implementation could report here.
        "open_ceiling_vs_jose_crypto_only": head["open_ceiling_crypto"],
        "open_ceiling_vs_jose_with_parse_and_schema": head["open_ceiling_parsed"],
    }
    return {
        "benchmark": "envelope-vs-jose",
        "mode": "quick" if profile is QUICK else "full",
        "payload_bytes": len(body),
        "rounds": profile.rounds,
        "batch_ms": profile.batch_ms,
        **headline,
        "at_recipients": HEADLINE_N,
        "targets": {k: f"{op} {t}" for k, (op, t) in TARGETS.items()},
        "targets_met": {k: _met(k, v) for k, v in headline.items()},
        **ceilings,
        "rows": rows,
        "machine": machine(),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _us(t: dict[str, float], spread: bool = True) -> str:
    median = f"{t['median']:,.0f} µs"
    return f"{median} ({t['p10']:,.0f}–{t['p90']:,.0f})" if spread else median


def _headline_lines(result: dict[str, Any], bold: str = "") -> list[str]:
    lines = []
    for name, value in (
        ("seal_speedup_vs_jose", f"{result['seal_speedup_vs_jose']:.2f}×"),
        ("open_speedup_vs_jose", f"{result['open_speedup_vs_jose']:.2f}×"),
        ("open_vs_floor", f"{result['open_vs_floor']:.2f}×"),
        ("size_vs_jose", f"{result['size_vs_jose']:.1%}"),
    ):
        op, target = TARGETS[name]
        goal = f"{target:.0%}" if name == "size_vs_jose" else f"{target:g}×"
        verdict = "met" if result["targets_met"][name] else "NOT met"
        lines.append(
            f"`{name}` at {HEADLINE_N} recipients: {bold}{value}{bold} "
            f"(target {op} {goal}: {verdict})"
        )
    lines.append(
        f"open ceiling at {HEADLINE_N} recipients (JOSE open / floor): "
        f"`open_ceiling_vs_jose_crypto_only` {result['open_ceiling_vs_jose_crypto_only']:.2f}×, "
        "`open_ceiling_vs_jose_with_parse_and_schema` "
        f"{result['open_ceiling_vs_jose_with_parse_and_schema']:.2f}×"
    )
    return lines


_TIME_COLUMNS: Final = (
    "recipients",
    "seal: Palermo",
    "seal: JOSE",
    "seal ×",
    "open: Palermo",
    "open: JOSE",
    "open ×",
    "open: JOSE, no kid",
    "open × (no kid)",
    "open floor: crypto",
    "ceiling ×",
    "open floor: + msgpack, schema",
    "ceiling ×",
)
_SIZE_COLUMNS: Final = (
    "bytes: Palermo",
    "bytes: JOSE",
    "size ratio",
    "bytes: JOSE + our metadata",
    "size ratio (same metadata)",
)


def _time_cells(r: dict[str, Any], spread: bool = True) -> list[str]:
    t = r["us"]
    return [
        str(r["recipients"]),
        _us(t["ours_seal"], spread),
        _us(t["jose_seal"], spread),
        f"{r['seal_speedup']:.2f}×",
        _us(t["ours_open"], spread),
        _us(t["jose_open"], spread),
        f"{r['open_speedup']:.2f}×",
        _us(t["jose_open_without_kid"], spread),
        f"{r['open_speedup_without_kid']:.2f}×",
        _us(t["floor_open_crypto"], spread),
        f"{r['open_ceiling_crypto']:.2f}×",
        _us(t["floor_open_parsed"], spread),
        f"{r['open_ceiling_parsed']:.2f}×",
    ]


def _size_cells(r: dict[str, Any]) -> list[str]:
    return [
        f"{r['ours_bytes']:,}",
        f"{r['jose_bytes']:,}",
        f"{r['size_ratio']:.1%}",
        f"{r['jose_bytes_same_metadata']:,}",
        f"{r['size_ratio_same_metadata']:.1%}",
    ]


_SUITE2_COLUMNS: Final = (
    "recipients",
    "seal: suite 1",
    "seal: suite 2",
    "seal: JOSE",
    "open: suite 1",
    "open: suite 2",
    "open: JOSE",
    "bytes: suite 1",
    "bytes: suite 2",
    "bytes: JOSE",
    "suite 2 / suite 1: seal, open, bytes",
)


def _suite2_cells(r: dict[str, Any], spread: bool = True) -> list[str]:
    t = r["us"]
    return [
        str(r["recipients"]),
        _us(t["ours_seal"], spread),
        _us(t["suite2_seal"], spread),
        _us(t["jose_seal"], spread),
        _us(t["ours_open"], spread),
        _us(t["suite2_open"], spread),
        _us(t["jose_open"], spread),
        f"{r['ours_bytes']:,}",
        f"{r['suite2_bytes']:,}",
        f"{r['jose_bytes']:,}",
        f"{r['suite2_seal_cost']:.2f}×, {r['suite2_open_cost']:.2f}×, {r['suite2_size_cost']:.2f}×",
    ]


def suite2_markdown(result: dict[str, Any]) -> str:
    """The "Suite 2" table of docs/benchmarks.md: post-quantum beside suite 1 and JOSE."""
    lines = ["| " + " | ".join(_SUITE2_COLUMNS) + " |", "|" + " --- |" * len(_SUITE2_COLUMNS)]
    lines += ["| " + " | ".join(_suite2_cells(r, spread=False)) + " |" for r in result["rows"]]
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The table and headline ratios for docs/benchmarks.md."""
    columns = (*_TIME_COLUMNS, *_SIZE_COLUMNS[:3])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += [
        "| " + " | ".join([*_time_cells(r, spread=False), *_size_cells(r)[:3]]) + " |"
        for r in result["rows"]
    ]
    lines.append("")
    lines += [f"- {line}" for line in _headline_lines(result, bold="**")]
    lines += ["", "Suite 2 (post-quantum hybrid), same rounds:", "", suite2_markdown(result)]
    return "\n".join(lines)


def _text_table(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    grid = [list(columns), *rows]
    widths = [max(len(row[i]) for row in grid) for i in range(len(columns))]
    out = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in grid]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def text_report(result: dict[str, Any]) -> str:
    m = result["machine"]
    rows = result["rows"]
    return "\n".join(
        [
            f"Envelope v1 vs JOSE (jwcrypto {m['versions']['jwcrypto']}): "
            f"{result['payload_bytes']:,}-byte payload, {result['mode']} run, per operation: "
            f"median (p10–p90) over {result['rounds']} interleaved rounds",
            "",
            _text_table(_TIME_COLUMNS, [_time_cells(r) for r in rows]),
            "",
            _text_table(
                ("recipients", *_SIZE_COLUMNS),
                [[str(r["recipients"]), *_size_cells(r)] for r in rows],
            ),
            "",
            *(line.replace("`", "") for line in _headline_lines(result)),
            "",
            "Suite 2 (post-quantum hybrid ML-KEM-768 + X25519), same rounds:",
            _text_table(_SUITE2_COLUMNS, [_suite2_cells(r) for r in rows]),
            "",
            f"python {m['python']} on {m['platform']}, {m['cpus']} CPUs, load {m['loadavg_1m']}, "
            f"{m['date']}, {result['elapsed_s']} s",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Envelope v1 seal/open vs JOSE (jwcrypto), interleaved in one run."
    )
    parser.add_argument("--quick", action="store_true", help="a short run, under a minute")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--markdown", action="store_true", help="a markdown table for the docs")
    args = parser.parse_args(argv)
    result = run(QUICK if args.quick else FULL)
    if args.markdown:
        print(markdown(result))
    if not (args.markdown or args.json):
        print(text_report(result))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
