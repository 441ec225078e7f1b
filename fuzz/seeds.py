"""The seed corpus: every golden vector and every example report, as the fuzzers' first inputs.

``python -m fuzz.seeds`` rewrites fuzz/corpus/ (tests/fuzz checks it is current); the hypothesis
tests take the same seeds from :func:`envelope_seeds` and :func:`report_seeds` directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import msgpack

from fuzz import harness
from schemas import parse_report, partition
from tests.vectors import generate

__all__ = ["CORPUS", "EXAMPLES", "envelope_seeds", "main", "report_regressions", "report_seeds"]

ROOT: Final = Path(__file__).resolve().parents[1]
CORPUS: Final = ROOT / "fuzz" / "corpus"
VECTORS: Final = ROOT / "tests" / "vectors"
EXAMPLES: Final = ROOT / "schemas" / "examples"


def envelope_seeds() -> dict[str, bytes]:
    """Each golden vector's envelope bytes, valid and invalid alike, and the harness's base
    envelope (a real report with both sections), by name."""
    seeds = {
        path.stem: generate.parse(path.read_text())[1] for path in sorted(VECTORS.glob("*.txt"))
    }
    seeds["base-report-08"] = harness.BASE_ENVELOPE
    return seeds


def report_seeds() -> dict[str, bytes]:
    """Each example report as JSON text and as the msgpack body a node seals, plus the vectors'."""
    seeds = {
        "vector-payload.msgpack": generate.PAYLOAD,
        "vector-personal.msgpack": generate.PERSONAL,
    }
    seeds |= report_regressions()
    for path in sorted(EXAMPLES.glob("*.json")):
        text = path.read_bytes()
        seeds[path.name] = text
        report = parse_report(json.loads(text))
        seeds[path.stem + ".msgpack"] = msgpack.packb(report.to_wire(), use_bin_type=True)
        # The sealed forms: the body without personal data, and each section's body.
        parts = partition(report)
        seeds[path.stem + ".main.msgpack"] = msgpack.packb(parts.main, use_bin_type=True)
        for sid, body in parts.section_bodies().items():
            seeds[f"{path.stem}.{sid}.msgpack"] = msgpack.packb(body, use_bin_type=True)
    return seeds


def report_regressions() -> dict[str, bytes]:
    """Inputs that once made a target fail, replayed by every run (tests/fuzz names each)."""
    first = json.loads(next(iter(sorted(EXAMPLES.glob("*.json")))).read_text())
    return {
        # 5597f50: a 5000-digit JSON integer raised a bare ValueError from json.loads.
        "regression-int-5000-digits.json": b'{"title": ' + b"1" * 5000 + b"}",
        # e42808d: a time before 1970 as text was accepted, but not its wire form (make fuzz).
        "regression-observed-1013.json": json.dumps(
            first | {"observed": "1013-11-21T02:02:00Z"}, indent=2
        ).encode(),
    }


def main() -> None:
    for target, seeds in (("envelope", envelope_seeds()), ("report", report_seeds())):
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    main()
