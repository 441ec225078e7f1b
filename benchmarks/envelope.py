"""Envelope v1 seal/open against the JOSE a team would otherwise use, in the same run.

Both sides do the same job on the same 2 KB report bytes:
- **seal** = sign + encrypt for N recipients. Palermo: ``node.envelope.seal`` (Ed25519, HPKE
  X25519 stanzas, AES-256-GCM). JOSE (``jwcrypto``): a JWS (EdDSA, Ed25519) nested in a JWE,
  general JSON serialization, one recipient per partner with ``ECDH-ES+A256KW`` on X25519 keys,
  ``enc: A256GCM``. Building the header (ours) and the protected header (JOSE) is inside the
  timed region on both sides.
- **open** = decrypt for one recipient + verify the signature. Palermo: ``open_envelope``
  (which also checks format, header schema and canonical encoding). JOSE: JWE decrypt, then JWS
  verify.
- **size** = bytes on the wire (ours: msgpack; JOSE: the JSON serialization, UTF-8).

Runs alternate ours/JOSE batch by batch after a warm-up, so drift on a shared machine hits both;
figures are medians of per-operation batch means. ``--quick`` runs in well under a minute,
``--json`` prints one JSON object as the last line, ``--markdown`` a table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
from jwcrypto import jwe, jwk, jws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.envelope import StaticSigners, open_envelope, seal
from node.keys import EncryptionKey, SigningKey
from schemas import EnvelopeHeader, Handling, new_uuid7

COUNTS = (1, 5, 20)


def report_bytes() -> bytes:
    """A realistic ~2 KB report body, msgpack-encoded like the real one."""
    text = (
        "Aerial surveillance observed an overloaded grey inflatable boat leaving the beach west "
        "of Zuwara at about 02:00 UTC, heading north-north-east at 6 knots. No life jackets. "
    )
    body = msgpack.packb(
        {
            "schema": "iir/1",
            "originator": "ITA-GDF",
            "category": "routes",
            "route": "central-med",
            "title": "Inflatable boat departed Zuwara with about 40 persons",
            "narrative": {"language": "en", "text": text * 10},
            "itinerary": {"embarkation": [{"country": "LBY", "place": "Zuwara"}]},
        }
    )
    return body[:2048].ljust(2048, b" ")


class Ours:
    def __init__(self, n: int, body: bytes) -> None:
        self.body = body
        self.signer = SigningKey.generate("ITA-GDF")
        self.keys = [EncryptionKey.generate(f"AG{i:02d}-X") for i in range(n)]
        self.public = [k.public for k in self.keys]
        self.signers = StaticSigners.of([self.signer.public])
        self.sealed = self.seal()

    def seal(self) -> bytes:
        header = EnvelopeHeader(
            id=new_uuid7(),
            originator="ITA-GDF",
            kid=self.signer.kid,
            created=datetime.now(UTC),
            kind="report",
            route="central-med",
            category="routes",
            handling=Handling(tlp="AMBER", rel_to=["group:med-coastal"]),
            recipients=[k.agency for k in self.keys],
        )
        return seal(header, self.body, self.signer, self.public)

    def open(self) -> bytes:
        return open_envelope(self.sealed, [self.keys[0]], self.signers, now=datetime.now(UTC)).body


class Jose:
    def __init__(self, n: int, body: bytes) -> None:
        self.body = body
        self.signer = jwk.JWK.generate(kty="OKP", crv="Ed25519")
        self.verifier = jwk.JWK.from_json(self.signer.export_public())
        self.keys = [jwk.JWK.generate(kty="OKP", crv="X25519") for _ in range(n)]
        self.public = [jwk.JWK.from_json(k.export_public()) for k in self.keys]
        self.sealed = self.seal()

    def seal(self) -> bytes:
        signed = jws.JWS(self.body)
        signed.add_signature(self.signer, alg="EdDSA", protected=json.dumps({"alg": "EdDSA"}))
        token = jwe.JWE(
            signed.serialize(compact=True).encode(),
            protected=json.dumps({"enc": "A256GCM", "cty": "JWT"}),
        )
        for key in self.public:
            token.add_recipient(key, header=json.dumps({"alg": "ECDH-ES+A256KW"}))
        return token.serialize().encode()

    def open(self) -> bytes:
        token = jwe.JWE()
        token.deserialize(self.sealed.decode(), key=self.keys[0])
        signed = jws.JWS()
        signed.deserialize(token.payload.decode(), key=self.verifier)
        return bytes(signed.payload)


def _batch_mean(fn: Callable[[], object], per_batch: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(per_batch):
        fn()
    return (time.perf_counter_ns() - start) / per_batch / 1000  # µs per operation


def measure(n: int, batches: int, per_batch: int) -> dict[str, Any]:
    body = report_bytes()
    ours, peer = Ours(n, body), Jose(n, body)
    # Both sides really round-trip before anything is timed.
    if ours.open() != body or peer.open() != body:
        raise SystemExit("a round trip failed: the benchmark would measure nothing")
    results: dict[str, list[float]] = {
        "ours_seal": [],
        "jose_seal": [],
        "ours_open": [],
        "jose_open": [],
    }
    for fn in (ours.seal, peer.seal, ours.open, peer.open):  # warm-up
        _batch_mean(fn, max(1, per_batch // 2))
    for _ in range(batches):  # interleaved A/B
        results["ours_seal"].append(_batch_mean(ours.seal, per_batch))
        results["jose_seal"].append(_batch_mean(peer.seal, per_batch))
        results["ours_open"].append(_batch_mean(ours.open, per_batch))
        results["jose_open"].append(_batch_mean(peer.open, per_batch))
    med = {k: statistics.median(v) for k, v in results.items()}
    return {
        "recipients": n,
        "ours_seal_us": round(med["ours_seal"], 1),
        "jose_seal_us": round(med["jose_seal"], 1),
        "ours_open_us": round(med["ours_open"], 1),
        "jose_open_us": round(med["jose_open"], 1),
        "ours_bytes": len(ours.sealed),
        "jose_bytes": len(peer.sealed),
        "seal_speedup": round(med["jose_seal"] / med["ours_seal"], 2),
        "open_speedup": round(med["jose_open"] / med["ours_open"], 2),
        "size_ratio": round(len(ours.sealed) / len(peer.sealed), 3),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| recipients | seal: Palermo | seal: JOSE | speed-up | open: Palermo | open: JOSE "
        "| speed-up | bytes: Palermo | bytes: JOSE | size ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['recipients']} | {r['ours_seal_us']:,.0f} µs | {r['jose_seal_us']:,.0f} µs "
            f"| {r['seal_speedup']}× | {r['ours_open_us']:,.0f} µs | {r['jose_open_us']:,.0f} µs "
            f"| {r['open_speedup']}× | {r['ours_bytes']:,} | {r['jose_bytes']:,} "
            f"| {r['size_ratio']:.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run well under a minute")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    batches, per_batch = (5, 20) if args.quick else (15, 40)
    rows = [measure(n, batches, per_batch) for n in COUNTS]
    at5 = next(r for r in rows if r["recipients"] == 5)
    result = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        },
        "rows": rows,
        "seal_speedup_vs_jose": at5["seal_speedup"],
        "open_speedup_vs_jose": at5["open_speedup"],
        "size_vs_jose": at5["size_ratio"],
        "targets": {
            "seal_speedup_vs_jose": ">= 3",
            "open_speedup_vs_jose": ">= 4",
            "size_vs_jose": "<= 0.60",
        },
    }
    if args.markdown or not args.json:
        print(markdown(rows))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
