"""The stateful run's counts at the end of the session: steps, invariant checks, kills and
attacks, summed over the shards (each shard records its counts as a test property, which
pytest-xdist carries from the worker that ran it back to the controller that prints them).

The hooks that call these live in ``tests/conftest.py``: under pytest-xdist the controller
collects nothing, so it never loads a conftest below ``tests/``."""

from __future__ import annotations

from collections import Counter
from typing import Any

PROPERTY = "stateful"
HEADLINE = ("steps", "invariant checks", "kills", "attacks")


def stateful_first(items: list[Any]) -> None:
    """Run the stateful shards first: they are the longest tests, and pytest-xdist hands out
    the first tests one per worker, so each shard starts at once on its own core and the
    short tests fill in around them instead of one shard running alone at the end."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/stateful/"))


def print_counts(terminalreporter: Any) -> None:
    """Print the counts if a stateful shard ran (passed or failed)."""
    totals: Counter[str] = Counter()
    seeds = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            for name, counts in getattr(report, "user_properties", []):
                if name == PROPERTY:
                    seeds.append(counts["seed"])
                    totals.update({k: v for k, v in counts.items() if k != "seed"})
    if not seeds:
        return
    write = terminalreporter.write_line
    terminalreporter.section("stateful federation")
    write(f"seeds {', '.join(map(str, sorted(seeds)))}; examples {totals['examples']}")
    write(", ".join(f"{k} {totals[k]}" for k in HEADLINE))
    for group in ("kill: ", "attack: "):
        if line := ", ".join(f"{k} {v}" for k, v in sorted(totals.items()) if k.startswith(group)):
            write(line)
    others = [k for k in totals if k not in HEADLINE and not k.startswith(("kill: ", "attack: "))]
    write(", ".join(f"{k} {totals[k]}" for k in sorted(others)))


__all__ = ["print_counts", "stateful_first"]
