"""The returns a node aggregates, read from its inbox (issue 16 item 2 and 3): the newest per
agency and period by signed creation time; a purged (retracted) return leaves; other kinds are
not returns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node._stats_aggregate import aggregate, returns_in_inbox
from node.inbox import Inbox, StorageKey
from node.reports import open_report, seal_report
from palermo.devfed import DevFederation
from protocol.envelope import open_envelope
from schemas import Report
from schemas.export import parse_report

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
NOW = datetime.now(UTC)
FED = DevFederation.build(NOW)
TO = "UNODC-STATS"


def _store(inbox: Inbox, report: Report, at: datetime, to: str = TO) -> str:
    """Seal ``report`` at ``at`` for ``to``, open it as ``to`` would and store it."""
    sealed = seal_report(
        report, FED.agencies[report.originator].signing, [to], FED.trust_store(),
        FED.policy_store(), at,
    )  # fmt: skip
    opened = open_envelope(sealed.data, [FED.agencies[to].encryption], FED.trust_store(), now=at)
    inbox.store(opened.header, open_report(opened), [], list(opened.withheld), at)
    return opened.header.id


def _example(name: str) -> Report:
    return parse_report(next(EXAMPLES.glob(f"{name}*.json")).read_text())


def _resubmitted(report: Report, between: int) -> Report:
    """The same return with a corrected count of detections between BCPs by route."""
    assert report.statistics is not None
    cells = [
        c.model_copy(update={"count": between})
        if c.indicator.value == "irregular-crossing-between-bcps"
        and set(c.dimensions.model_dump(exclude_none=True)) == {"border_type", "route"}
        else c
        for c in report.statistics.cells
    ]
    stats = report.statistics.model_copy(update={"cells": cells})
    return report.model_copy(update={"statistics": stats})


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    box = Inbox(tmp_path / "inbox.db", StorageKey.load_or_create(tmp_path / "storage.key"))
    yield box
    box.close()


def _between(inbox: Inbox, period: str) -> int:
    agg = aggregate(returns_in_inbox(inbox), period, ("indicator",))
    return agg.value(indicator="irregular-crossing-between-bcps").total


def test_a_resubmitted_return_replaces_the_earlier_one(inbox: Inbox) -> None:
    """Newest by signed creation time, whatever the order received."""
    ita = _example("22")
    _store(inbox, _resubmitted(ita, 4300), NOW + timedelta(hours=1))
    _store(inbox, ita, NOW)
    _store(inbox, _example("23"), NOW)
    assert 4300 + 1935 == _between(inbox, "2026-Q2")
    assert 2 == len(returns_in_inbox(inbox))


def test_a_retracted_return_leaves_the_aggregate(inbox: Inbox) -> None:
    """Purged on retraction: the other agency's figures remain."""
    ita = _store(inbox, _example("22"), NOW)
    _store(inbox, _example("23"), NOW)
    inbox.purge(ita, "retracted: wrong quarter", NOW)
    assert 1935 == _between(inbox, "2026-Q2")


def test_reports_of_other_kinds_are_not_returns(inbox: Inbox) -> None:
    """An ordinary report in the inbox is left out."""
    _store(inbox, _example("01"), NOW, to="MLT-AFM")
    _store(inbox, _example("24"), NOW)
    assert ["ESP-GC"] == [r.reporting_agency for r in returns_in_inbox(inbox)]
