"""Adversarial constructions against small-cell suppression (review of issue 16): returns an
attacker reads with public knowledge the hidden-table model must include. Every interval is
computed by linear programming (tests/policies/_joint.py), structural zeros included."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import check_disclosure, suppress, suppress_linked
from policies._disclosure import LINES_PER_GRID
from policies._disclosure_implicit import BreakdownLeavesSmallRest
from schemas import StatisticalReturn
from tests.policies.test_disclosure_linked import assert_protected, assert_union_protected

IND = "irregular-crossing-between-bcps"
LOCODES = {"GRMJT": "GRC", "GRKGS": "GRC", "ITAUG": "ITA", "ITLMP": "ITA", "MTMLA": "MLT"}


def _return(cells: list[tuple[dict[str, str], int]]) -> StatisticalReturn:
    return StatisticalReturn.model_validate({
        "reporting_agency": "ITA-GDF", "period": "2026-07",
        "cells": [{"indicator": IND, "dimensions": d, "count": c} for d, c in cells],
    })  # fmt: skip


def _places(counts: dict[tuple[str, str], int], routes: list[str]) -> StatisticalReturn:
    """Route totals broken down by country of detection, and separately by LOCODE alone (the
    schema allows a LOCODE without its country): a consumer knows GRMJT lies in Greece."""
    cells: list[tuple[dict[str, str], int]] = [({}, sum(counts.values()))]
    for route in routes:
        here = {p: n for (r, p), n in counts.items() if r == route}
        cells.append(({"route": route}, sum(here.values())))
        for country in sorted(set(LOCODES.values())):
            total = sum(n for p, n in here.items() if LOCODES[p] == country)
            cells.append(({"route": route, "place_country": country}, total))
        cells += [({"route": route, "place_unlocode": p}, here[p]) for p in sorted(here)]
    return _return(cells)


def test_a_locode_breakdown_beside_a_country_one_pins_nothing() -> None:
    """Before the fix, GRC = 15 published and GRMJT = 10 gave GRKGS = 5, hence ITAUG = 3 and
    ITA = 3: both withheld, both exact."""
    counts = {("central-med", p): n for p, n in
              {"GRMJT": 10, "GRKGS": 5, "ITAUG": 3, "ITLMP": 0, "MTMLA": 6}.items()}  # fmt: skip
    original = _places(counts, ["central-med"])
    assert_protected([suppress(original, 5)], [original], 5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    routes=st.sampled_from([["central-med"], ["central-med", "eastern-med"]]),
    values=st.lists(st.sampled_from([0, 0, 0, 1, 2, 3, 5, 8]), min_size=10, max_size=10),
    k=st.integers(2, 6),
)
def test_country_and_locode_breakdowns_stay_k_wide(
    routes: list[str], values: list[int], k: int
) -> None:
    points = list(itertools.product(routes, sorted(LOCODES)))
    original = _places(dict(zip(points, values, strict=False)), routes)
    assert_protected([suppress(original, k)], [original], k)


def test_a_partial_breakdown_leaving_a_small_rest_is_refused() -> None:
    """Total 100, AFG 60, SYR 38: two detections of other nationalities, found by subtraction,
    were published although no cell showed them."""
    partial = [({}, 100), ({"nationality": "AFG"}, 60), ({"nationality": "SYR"}, 38)]
    with pytest.raises(BreakdownLeavesSmallRest, match=r"leaves 2 unlisted.*nationality_band"):
        suppress(_return(partial), 5)
    assert ["irregular-crossing-between-bcps (total) broken down by nationality leaves 2 "
            "unlisted"] == check_disclosure(_return(partial), 5)  # fmt: skip
    complete = _return([*partial, ({"nationality_band": "other"}, 2)])
    assert_protected([suppress(complete, 5)], [complete], 5)
    assert [] == check_disclosure(_return([({}, 100), ({"nationality": "AFG"}, 95)]), 5)


def _fee(dimensions: dict[str, str], amount: str, statistic: str) -> dict[str, object]:
    return {"indicator": "fee-per-person", "dimensions": dimensions, "statistic": statistic,
            "amount": {"amount": amount, "currency": "EUR"}}  # fmt: skip


def test_a_fee_beside_withheld_crossings_is_left_out() -> None:
    """Two Eritreans' median fee is nearly each one's fee: it goes with their count. A fee
    over 40 Afghans stays, and so does a fee whose persons the return does not count."""
    eri, afg = {"nationality": "ERI"}, {"nationality": "AFG"}
    original = StatisticalReturn.model_validate({
        "reporting_agency": "ITA-GDF", "period": "2026-07",
        "cells": [
            {"indicator": IND, "dimensions": {}, "count": 48},
            {"indicator": IND, "dimensions": afg, "count": 40},
            {"indicator": IND, "dimensions": eri, "count": 2},
            {"indicator": IND, "dimensions": {"nationality": "SYR"}, "count": 6},
            _fee(eri, "4000.00", "median"), _fee(eri, "3800.00", "max"),
            _fee(afg, "2500.00", "median"), _fee({"route": "central-med"}, "3000.00", "min"),
        ],
    })  # fmt: skip
    published = suppress(original, 5)
    fees = [c.dimensions.key() for c in published.cells if c.amount is not None]
    assert [(("nationality", "AFG"),), (("route", "central-med"),)] == fees
    assert [] == check_disclosure(published, 5)
    with_fee = published.model_copy(update={"cells": [*published.cells, original.cells[4]]})
    assert ["cells.6 (fee-per-person) describes crossings that are withheld or zero"] == (
        check_disclosure(with_fee, 5)
    )


def test_a_grid_wider_than_the_rectangle_search_stays_k_wide() -> None:
    """Past LINES_PER_GRID rows the publisher tries only the cheapest rectangles (bounded time
    on 2,000-cell returns): still every withheld cell is k wide, and the receiver accepts."""
    nationalities = ["AFG", "BGD", "EGY", "ERI", "GIN", "IRQ", "MAR", "PAK", "SDN", "SYR", "TUN"]
    ages = ["0-13", "18-24", "25-49"]
    assert len(nationalities) > LINES_PER_GRID
    grid = {(n, a): (3 * i + 7 * j) % 11 for i, n in enumerate(nationalities)
            for j, a in enumerate(ages)}  # fmt: skip
    cells = [({}, sum(grid.values()))]
    cells += [({"nationality": n}, sum(grid[n, a] for a in ages)) for n in nationalities]
    cells += [({"age_band": a}, sum(grid[n, a] for n in nationalities)) for a in ages]
    cells += [({"nationality": n, "age_band": a}, v) for (n, a), v in grid.items()]
    original = _return(cells)
    assert_protected([suppress(original, 5)], [original], 5)


def test_the_receiver_refuses_a_locode_cell_pinned_by_its_country() -> None:
    """What the publisher withheld before the fix (ITA, MLT, GRKGS, ITAUG): GRC - GRMJT gives
    GRKGS, then ITAUG. The receiver's check now sees it."""
    withheld = {"ITA", "MLT", "GRKGS", "ITAUG"}
    cells = [
        {"indicator": IND, "dimensions": d, "count": None if set(d.values()) & withheld else n,
         "suppressed": bool(set(d.values()) & withheld)}
        for d, n in [({}, 24), ({"place_country": "GRC"}, 15), ({"place_country": "ITA"}, 3),
                     ({"place_country": "MLT"}, 6), ({"place_unlocode": "GRMJT"}, 10),
                     ({"place_unlocode": "GRKGS"}, 5), ({"place_unlocode": "ITAUG"}, 3),
                     ({"place_unlocode": "MTMLA"}, 6)]
    ]  # fmt: skip
    published = StatisticalReturn.model_validate(
        {"reporting_agency": "ITA-GDF", "period": "2026-07", "cells": cells, "suppression_k": 5}
    )
    problems = check_disclosure(published, 5)
    assert any("cells.6" in p and "recovered" in p for p in problems), problems


def _by(period: str, cells: list[tuple[dict[str, str], int]]) -> StatisticalReturn:
    return _return(cells).model_copy(update={"period": period})


@pytest.mark.parametrize("seed", range(4))
def test_a_version_with_other_dimensions_and_a_year_after_its_quarters(seed: int) -> None:
    """v1 by nationality, v2 by nationality x sex (one hidden table); four quarters then their
    year (the year the sum of the quarters' tables): every cell k wide over the union."""
    rng = random.Random(seed)
    nats, sexes = ["AFG", "SYR", "ERI"], ["male", "female"]
    h = {(n, s): rng.choice([0, 1, 2, 3, 6, 9]) for n in nats for s in sexes}
    v1 = _by(
        "2026-07",
        [
            ({}, sum(h.values())),
            *(({"nationality": n}, h[n, "male"] + h[n, "female"]) for n in nats),
        ],
    )
    v2 = _by("2026-07", [({}, sum(h.values())),
                         *(({"nationality": n, "sex": s}, h[n, s]) for n, s in h)])  # fmt: skip
    p1 = suppress_linked(v1, [], 5)
    assert_union_protected([p1, suppress_linked(v2, [p1], 5)], [v1, v2], 5, [[0], [0]])
    quarters = [{n: rng.choice([0, 1, 2, 3, 6, 9]) for n in nats} for _ in range(4)]
    originals, published = [], []
    for q, counts in enumerate([*quarters, {n: sum(x[n] for x in quarters) for n in nats}]):
        period = f"2026-Q{q + 1}" if q < 4 else "2026"
        cells = [({}, sum(counts.values())), *(({"nationality": n}, counts[n]) for n in nats)]
        originals.append(_by(period, cells))
        published.append(suppress_linked(originals[-1], published, 5))
    assert_union_protected(published, originals, 5, [[0], [1], [2], [3], [0, 1, 2, 3]])
