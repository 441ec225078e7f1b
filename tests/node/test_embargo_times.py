"""Embargo times at fixed instants: when an embargoed report is judged and how old it is
(policies/_embargo.py), and the receiving node's clock-skew allowance and how long it puts back a
delivery that came early by its clock (node/_receiving.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from node._receiving import RELEASE_SKEW, early_wait, judged_at
from policies import embargo_ahead, envelope_age, release_time
from schemas import Handling

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _h(not_before: datetime | None) -> Handling:
    return Handling(tlp="AMBER", rel_to=["MLT-AFM"], not_before=not_before)


@pytest.mark.parametrize(
    ("not_before", "release", "ahead"),
    [
        (None, T, timedelta(0)),
        (T - timedelta(hours=1), T, timedelta(0)),
        (T + timedelta(hours=5), T + timedelta(hours=5), timedelta(hours=5)),
    ],
)
def test_release_time_and_time_ahead(
    not_before: datetime | None, release: datetime, ahead: timedelta
) -> None:
    """Released at the later of now and not_before; held for the difference."""
    assert (release, ahead) == (release_time(_h(not_before), T), embargo_ahead(_h(not_before), T))


def test_age_counts_from_not_before_when_later() -> None:
    """Created a week before its release: its age at release is zero, not a week."""
    created = T - timedelta(days=7)
    assert timedelta(0) == envelope_age(created, _h(T), T)
    assert timedelta(days=7) == envelope_age(created, _h(None), T)
    assert timedelta(days=7) == envelope_age(created, _h(created - timedelta(days=1)), T)


@pytest.mark.parametrize(
    ("not_before", "expected"),
    [
        (None, T),
        (T - timedelta(seconds=5), T),
        # The server released it at not_before; our clock is a little behind: judged then.
        (T + timedelta(seconds=30), T + timedelta(seconds=30)),
        (T + RELEASE_SKEW, T + RELEASE_SKEW),
        # Further ahead (our clock further behind, or a broker releasing early): not judged
        # at all but put back until not_before (early_wait below); judged_at says now.
        (T + RELEASE_SKEW + timedelta(seconds=1), T),
    ],
)
def test_node_judges_at_not_before_within_the_skew(
    not_before: datetime | None, expected: datetime
) -> None:
    """A delivery is decided as of not_before only within RELEASE_SKEW of the node's clock."""
    assert expected == judged_at(_h(not_before), T)


MOST = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("not_before", "wait"),
    [
        (None, None),
        (T - timedelta(seconds=5), None),
        # Within the skew: due (judged as of not_before), not put back.
        (T + RELEASE_SKEW, None),
        # Early by our clock: put back until not_before...
        (T + RELEASE_SKEW + timedelta(seconds=1), RELEASE_SKEW + timedelta(seconds=1)),
        (T + MOST, MOST),
        # ...but looked at again after at most MOST, however far ahead (a clock days behind).
        (T + MOST + timedelta(seconds=1), MOST),
        (T + timedelta(days=3), MOST),
    ],
)
def test_an_early_delivery_is_put_back_until_not_before_at_most_a_few_minutes_at_a_time(
    not_before: datetime | None, wait: timedelta | None
) -> None:
    """Beyond RELEASE_SKEW by the node's clock a delivery waits for not_before, in steps of at
    most ``most`` (DeliveryOptions.early_recheck_s, 5 minutes)."""
    assert wait == early_wait(_h(not_before), T, MOST)
