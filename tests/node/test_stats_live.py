"""Statistical returns on a live stack (issue 16 "Done when"): the example returns, published by
their agencies, reach the aggregate-only UNODC-STATS, and ``palermo stats aggregate`` run on its
node config prints the totals a direct computation from the example files gives.

Without disclosure control on this branch the delivered cells are the example cells. With it
(suppression at the publishing node), a row with a suppressed contribution is printed as a lower
bound: the test then checks the bound and that the row is marked, never a plain total."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from typer.testing import CliRunner

from palermo.cli import app
from palermo.devfed import DevFederation
from schemas import parse_report
from tests.harness import running_broker, running_nodes, wait_for

EXAMPLES = sorted(
    (Path(__file__).resolve().parents[2] / "schemas" / "examples").glob("*-statistics-*.json")
)
STATS = "UNODC-STATS"


def _direct(period: str) -> dict[tuple[str, str], int]:
    """Per route and indicator, from the example files: the cells by border type and route
    (fraudulent documents: by border type, route and fraud type, their only table) summed."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for path in EXAMPLES:
        ret = parse_report(path.read_bytes()).statistics
        assert ret is not None
        if ret.period != period:
            continue
        for cell in ret.cells:
            dims = cell.dimensions.model_dump(mode="json", exclude_none=True)
            if cell.count is not None and set(dims) - {"fraud"} == {"border_type", "route"}:
                out[(dims["route"], cell.indicator.value)] += cell.count
    return dict(out)


async def test_the_example_returns_reach_unodc_stats_and_aggregate_to_the_direct_sums(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """Three agencies, two periods: every return delivered to UNODC-STATS only, and the CLI's
    totals per route and indicator equal the sums of the example files."""
    reports = [parse_report(p.read_bytes()) for p in EXAMPLES]
    agencies = sorted({r.originator for r in reports} | {STATS})
    fed.write(tmp_path)
    config = fed.node_config(tmp_path, STATS, federated_url)
    async with (
        running_nodes(federated_url, fed, agencies, tmp_path / "state") as nodes,
        running_broker(federated_url, fed),
    ):
        sent = [await nodes[r.originator].publish(r, to=[STATS]) for r in reports]
        assert all([STATS] == s.recipients for s in sent)

        async def delivered() -> bool:
            return all(nodes[STATS].inbox.seen(s.header.id) for s in sent)

        await wait_for(delivered, within=20)

    for period in ("2026-Q2", "2026-Q3"):
        args = ["stats", "aggregate", "-c", str(config), "--period", period]
        result = CliRunner().invoke(app, [*args, "--by", "route,indicator", "--format", "json"])
        assert 0 == result.exit_code, result.output
        data = json.loads(result.output)
        expected = _direct(period)
        printed = {(r["route"], r["indicator"]): r for r in data["rows"]}
        assert set(expected) == set(printed)
        for key, row in printed.items():
            if row["suppressed"]:
                assert row["total"] is None
                assert row["lower_bound"] <= expected[key]
            else:
                assert expected[key] == row["total"]
        for total in data["totals"]:
            direct = sum(v for (_, ind), v in expected.items() if ind == total["indicator"])
            if total["suppressed"]:
                assert (None, True) == (total["total"], total["lower_bound"] <= direct)
            else:
                assert direct == total["total"]
        assert (
            sorted(
                {r.originator for r in reports if r.statistics and r.statistics.period == period}
            )
            == data["agencies"]
        )
        table = CliRunner().invoke(app, [*args, "--by", "route,indicator"])
        assert 0 == table.exit_code
        assert f"period {period}" in table.output
    svg = tmp_path / "trends.svg"
    chart = ["stats", "chart", "-c", str(config), "--period", "2026-Q1..2026-Q4", "--out", str(svg)]
    result = CliRunner().invoke(app, [*chart, "--indicator", "deaths"])
    assert 0 == result.exit_code, result.output
    routes = sorted({r.route.value for r in reports})
    assert [f'id="series-{route}-deaths"' in svg.read_text() for route in routes] == [True] * 3
