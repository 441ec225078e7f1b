"""Policy engine benchmark: decisions per recipient on a 200-agency, 50-agreement federation.

    python benchmarks/policy.py            # readable table
    python benchmarks/policy.py --quick    # under a minute
    python benchmarks/policy.py --json     # last line: one JSON object

Measures, in one run: ``decide()`` for one (header, recipient) pair (median of batches of calls
over varied headers and recipients), the allowed set of one report against all 200 members, and
the compilation of the federation index. The peer is the validation of the same envelope header
with pydantic, which the broker pays for every envelope anyway: the decision should cost less
than reading the header it decides on. Target: decide median <= 20 µs.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies import (
    AgencyPolicy,
    Federation,
    FederationIndex,
    allowed_recipients,
    compile_federation,
    decide,
)
from schemas import Category, Classification, EnvelopeHeader, Tlp
from schemas._countries import ISO3166_ALPHA3

NOW = datetime(2026, 3, 1, tzinfo=UTC)
AGENCIES = 200
AGREEMENTS = 50
GROUPS = 20
TARGET_US = 20.0


def federation(rng: random.Random) -> Federation:
    """200 agencies in 20 groups, 50 agreements (bilateral, multilateral, group-wide)."""
    countries = sorted(ISO3166_ALPHA3)
    groups = [f"group-{g:02d}" for g in range(GROUPS)]
    classes = list(Classification)
    members = [
        {
            "id": f"AGY-{i:03d}",
            "name": f"Agency {i}",
            "country": countries[i % len(countries)],
            "groups": rng.sample(groups, rng.randint(1, 3)),
            "accreditation": rng.choice(classes).value,
            "aggregate_only": i % 50 == 49,
            "status": "suspended" if i % 67 == 66 else "active",
        }
        for i in range(AGENCIES)
    ]
    ids = [m["id"] for m in members]
    agreements = []
    for a in range(AGREEMENTS):
        if a < 30:
            parties = rng.sample(ids, 2)
        elif a < 40:
            parties = rng.sample(ids, rng.randint(3, 12))
        else:
            parties = [f"group:{g}" for g in rng.sample(groups, rng.randint(1, 2))]
        start = NOW - timedelta(days=rng.randint(30, 3000))
        agreements.append(
            {
                "id": f"agreement-{a:02d}",
                "version": rng.randint(1, 4),
                "name": f"Agreement {a}",
                "parties": parties,
                "purposes": ["crime-prevention"],
                "data_protection": rng.random() < 0.5,
                "categories": rng.sample([c.value for c in Category], rng.randint(0, 3)),
                "valid_from": start,
                "valid_until": None if rng.random() < 0.7 else NOW + timedelta(days=365),
            }
        )
    return Federation.model_validate(
        {
            "id": "bench",
            "name": "Benchmark federation",
            "version": 1,
            "issued": NOW,
            "groups": [{"id": g, "name": g} for g in groups],
            "members": members,
            "agreements": agreements,
        }
    )


def header_data(rng: random.Random, originator: str, ids: list[str]) -> dict[str, Any]:
    tlp = rng.choice(list(Tlp))
    rel_to = rng.sample(ids, rng.randint(3, 12)) + [
        f"group:group-{g:02d}" for g in rng.sample(range(GROUPS), rng.randint(0, 3))
    ]
    sections = []
    if rng.random() < 0.5:
        nationalities = rng.sample(sorted(ISO3166_ALPHA3), 3)
        sections.append(
            {"id": "persons", "kind": "personal-data", "protected_nationalities": nationalities}
        )
    if rng.random() < 0.3:
        sections.append({"id": "witnesses", "kind": "protected-persons"})
    return {
        "id": "0190a5e0-0000-7000-8000-000000000000",
        "originator": originator,
        "kid": "0" * 16,
        "created": NOW,
        "kind": "report",
        "route": "central-med",
        "category": rng.choice(list(Category)).value,
        "handling": {
            "tlp": tlp.value,
            "rel_to": [r for r in rel_to if r != originator],
            "h2": rng.random() < 0.3,
            "classification": rng.choice(["unclassified", "restricted", "confidential"]),
            "expires": NOW + timedelta(days=30),
            "protected_released_to": rng.sample(ids, 2),
        },
        "recipients": [i for i in rng.sample(ids, 3) if i != originator] or ["AGY-000"],
        "sections": sections,
    }


def _recipient(rng: random.Random, header: EnvelopeHeader, index: FederationIndex) -> str:
    named = [r for r in header.handling.rel_to if not r.startswith("group:")]
    if named and rng.random() < 0.7:
        return rng.choice(named)
    return rng.choice(index.member_ids)


def per_call_us(fn: Callable[[], object], calls: int, batches: int) -> tuple[float, float]:
    """Median and 90th percentile, over batches, of the mean time per call in µs."""
    samples = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - start) / calls / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def run(quick: bool) -> dict[str, Any]:
    rng = random.Random(20260301)
    fed = federation(rng)
    index = compile_federation(fed)
    ids = list(index.member_ids)
    originator = "AGY-007"
    policy = AgencyPolicy.model_validate(
        {
            "agency": originator,
            "version": 1,
            "issued": NOW,
            "rules": [
                {"rule": "deny", "targets": ["AGY-150"]},
                {"rule": "no-personal-data", "targets": ["group:group-03"]},
                {"rule": "max-tlp", "targets": ["group:group-05"], "tlp": "AMBER"},
            ],
        }
    )
    raw = [header_data(rng, originator, ids) for _ in range(64)]
    headers = [EnvelopeHeader.model_validate(h) for h in raw]
    # The broker decides for the recipients an originator chose: mostly agencies in rel_to (or
    # in its groups), some that policy will refuse. Consecutive calls share a header, as they do
    # in the broker's per-recipient loop.
    pairs = [(h, _recipient(rng, h, index)) for h in headers for _ in range(8)]
    calls, batches = (2_000, 31) if quick else (10_000, 101)

    cursor = iter(range(1 << 62))

    def one_decision() -> object:
        h, r = pairs[next(cursor) % len(pairs)]
        return decide(h, r, index, policy, NOW)

    def one_validation() -> object:
        return EnvelopeHeader.model_validate(raw[next(cursor) % len(raw)])

    def one_allowed_set() -> object:
        return allowed_recipients(headers[next(cursor) % len(headers)], None, index, policy, NOW)

    def one_compile() -> object:
        # A fresh copy each time, so the per-object cache that decide() relies on is bypassed.
        return compile_federation(fed.model_copy())

    allowed_pairs = [
        (h, r)
        for h in headers
        for r, d in allowed_recipients(h, None, index, policy, NOW).items()
        if d.allowed
    ]

    def one_allowed_decision() -> object:
        h, r = allowed_pairs[next(cursor) % len(allowed_pairs)]
        return decide(h, r, index, policy, NOW)

    # The same pairs with the header changing on every call: no per-header work is shared.
    cold_pairs = [(headers[i % len(headers)], pairs[i][1]) for i in range(len(pairs))]

    def one_cold_decision() -> object:
        h, r = cold_pairs[next(cursor) % len(cold_pairs)]
        return decide(h, r, index, policy, NOW)

    decide_med, decide_p90 = per_call_us(one_decision, calls, batches)
    cold_med, _ = per_call_us(one_cold_decision, calls, batches)
    allow_med, _ = per_call_us(one_allowed_decision, calls, batches)
    peer_med, _ = per_call_us(one_validation, calls // 5, batches)
    set_med, set_p90 = per_call_us(one_allowed_set, max(calls // 200, 10), batches)
    compile_med, _ = per_call_us(one_compile, 5 if quick else 20, 11 if quick else 31)
    compile_federation(fed)
    # How many of the 200 each report reaches: the benchmark decides real mixes, not only denials.
    allowed = statistics.mean(
        sum(d.allowed for d in allowed_recipients(h, None, index, policy, NOW).values())
        for h in headers
    )
    return {
        "agencies": AGENCIES,
        "agreements": AGREEMENTS,
        "decide_median_us": round(decide_med, 2),
        "decide_p90_us": round(decide_p90, 2),
        "decide_allowed_only_median_us": round(allow_med, 2),
        "decide_new_header_each_call_median_us": round(cold_med, 2),
        "allowed_set_200_us": round(set_med, 1),
        "allowed_set_200_p90_us": round(set_p90, 1),
        "compile_index_us": round(compile_med, 1),
        "peer_header_validate_us": round(peer_med, 2),
        "target_decide_us": TARGET_US,
        "meets_target": decide_med <= TARGET_US,
        "mean_allowed_of_200": round(allowed, 1),
        "decided_pairs_allowed_pct": round(
            100 * sum(decide(h, r, index, policy, NOW).allowed for h, r in pairs) / len(pairs)
        ),
        "python": platform.python_version(),
        "quick": quick,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations, under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    result = run(args.quick)
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return
    rows = [
        ("decide(), one recipient, median", f"{result['decide_median_us']:.2f} µs"),
        ("decide(), one recipient, p90 of batches", f"{result['decide_p90_us']:.2f} µs"),
        (
            "decide(), a different header every call, median",
            f"{result['decide_new_header_each_call_median_us']:.2f} µs",
        ),
        (
            "decide(), allowed recipients only, median",
            f"{result['decide_allowed_only_median_us']:.2f} µs",
        ),
        ("allowed set, one report x 200 members", f"{result['allowed_set_200_us']:.1f} µs"),
        ("compile federation index (once per version)", f"{result['compile_index_us']:.1f} µs"),
        (
            "peer: validate the envelope header (pydantic)",
            f"{result['peer_header_validate_us']:.2f} µs",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"policy engine, {AGENCIES} agencies, {AGREEMENTS} agreements, Python {result['python']}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>12}")
    print(
        f"  (each report reaches {result['mean_allowed_of_200']} of 200 on average; "
        f"{result['decided_pairs_allowed_pct']}% of the timed decisions allow)"
    )
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"  target decide median <= {TARGET_US:.0f} µs: {verdict}")


if __name__ == "__main__":
    main()
