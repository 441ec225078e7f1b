"""``palermo demo`` end to end, and its matrix checked against the policy engine."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from palermo.demo import interested, load_examples, run_demo
from palermo.devfed import DevFederation
from schemas import EnvelopeHeader, new_uuid7, partition


async def test_demo_matrix_matches_the_policy(tmp_path: Path) -> None:
    """Every cell is what decide() says for an interested partner; nothing else is delivered."""
    result = await run_demo(tmp_path)
    fed = DevFederation.build(datetime.now(UTC))  # same policies and subscriptions, new keys
    policy = fed.policy_store()
    reports = {r.title: r for r in load_examples()}
    assert len(reports) == len(result.reports)
    for row in result.reports:
        report = reports[row["title"]]
        wanted = interested(fed, report)
        for agency, cell in row["deliveries"].items():
            if agency not in wanted:
                assert "not-interested" == cell["status"], (row["title"], agency)
                continue
            header = EnvelopeHeader(
                id=new_uuid7(),
                originator=report.originator,
                kid="0" * 16,
                created=datetime.now(UTC),
                kind=report.kind,
                route=report.route,
                category=report.category,
                handling=report.handling,
                schema_=report.schema_,
                recipients=wanted,
                sections=partition(report).sections(),
            )
            decision = policy.decide(header, agency, datetime.now(UTC))
            expected = "delivered" if decision.allowed else "denied"
            assert expected == cell["status"], (row["title"], agency, cell)
            if decision.allowed:
                assert list(decision.withheld_sections) == cell["withheld_sections"]


async def test_demo_shows_withheld_sections_and_denials(tmp_path: Path) -> None:
    """The demo exercises a denial, a delivery, and a section withheld from a recipient."""
    result = await run_demo(tmp_path)
    statuses = [c["status"] for row in result.reports for c in row["deliveries"].values()]
    withheld = [
        c
        for row in result.reports
        for c in row["deliveries"].values()
        if c.get("withheld_sections")
    ]
    assert {"delivered", "denied", "not-interested"} == set(statuses)
    assert withheld
    # Every delivery was confirmed by a receipt signed by the recipient's node.
    for row in result.reports:
        delivered = {a for a, d in row["deliveries"].items() if d["status"] == "delivered"}
        assert {a: "delivered" for a in delivered} == row.get("receipts", {})


def test_palermo_demo_json_command() -> None:
    """The CLI prints one JSON object with agencies and reports and exits 0."""
    palermo = Path(sys.executable).parent / "palermo"
    done = subprocess.run(
        [str(palermo), "demo", "--json"], capture_output=True, text=True, timeout=120, check=False
    )
    assert 0 == done.returncode, done.stderr
    data = json.loads(done.stdout)
    assert {"agencies", "reports", "opened"} == set(data)
    assert all({"id", "originator", "route", "category", "handling", "contains_personal_data",
                "deliveries"} <= set(r) for r in data["reports"] if r["id"])  # fmt: skip
