"""Disclosure control on the node: sealed with k in header and body, re-checked on opening,
and the newest return per agency and period kept for aggregation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest

from node._stats_store import latest_returns
from node.inbox import Inbox, StorageKey
from node.reports import open_report, seal_report
from palermo.devfed import DevFederation
from policies import suppress
from protocol.envelope import open_envelope, seal
from schemas import Report
from schemas.errors import BodyMismatch, DisclosureControlBroken

NOW = datetime.now(UTC)
FED = DevFederation.build(NOW)


def statistics_report(
    counts: list[int], *, period: str = "2026-07", originator: str = "ITA-GDF"
) -> Report:
    """A return of crossings by border type (sea, land) with its total."""
    cells: list[dict[str, Any]] = [
        {"indicator": "irregular-crossing-between-bcps", "dimensions": {"border_type": b},
         "count": c} for b, c in zip(("sea", "land", "air"), counts, strict=False)
    ]  # fmt: skip
    cells.append({"indicator": "irregular-crossing-between-bcps", "count": sum(counts)})
    return Report.from_wire(
        {
            "schema": "iir/1.1",
            "originator": originator,
            "kind": "statistics",
            "category": "routes",
            "route": "central-med",
            "title": f"Monthly return {period}",
            "observed": "2026-08-01T00:00:00Z",
            "handling": {"tlp": "GREEN"},
            "narrative": {"language": "en", "text": "Irregular crossings by border type."},
            "contact": {"unit": "Statistics unit", "channel": "palermo"},
            "statistics": {"reporting_agency": originator, "period": period, "cells": cells},
        }
    )


def _seal_and_open(report: Report, to: str = "UNODC-STATS") -> Report:
    sealed = seal_report(
        report, FED.agencies[report.originator].signing, [to], FED.trust_store(),
        FED.policy_store(), NOW,
    )  # fmt: skip
    opened = open_envelope(sealed.data, [FED.agencies[to].encryption], FED.trust_store(), now=NOW)
    return open_report(opened)


def test_a_suppressed_return_carries_k_in_header_and_body() -> None:
    """seal_report writes the return's k into the signed header; the recipient reads both."""
    report = statistics_report([3, 40, 30])
    report = report.model_copy(update={"statistics": suppress(report.statistics, 5)})
    sealed = seal_report(
        report, FED.agencies["ITA-GDF"].signing, ["UNODC-STATS"], FED.trust_store(),
        FED.policy_store(), NOW,
    )  # fmt: skip
    assert 5 == sealed.header.suppression_k
    keys = [FED.agencies["UNODC-STATS"].encryption]
    opened = open_report(open_envelope(sealed.data, keys, FED.trust_store(), now=NOW))
    assert opened.statistics is not None
    assert 5 == opened.statistics.suppression_k
    # The 3 and the smallest other cell of its line (30, air): each stays 33 wide.
    assert [True, False, True, False] == [c.suppressed for c in opened.statistics.cells]


def _hand_sealed(report: Report, header_k: int | None) -> bytes:
    """Seal ``report`` as a hostile node would: header k as given, cells as they are."""
    sealed = seal_report(
        report, FED.agencies["ITA-GDF"].signing, ["UNODC-STATS"], FED.trust_store(),
        FED.policy_store(), NOW,
    )  # fmt: skip
    header = sealed.header.model_copy(update={"suppression_k": header_k})
    body = msgpack.packb(report.to_wire(), use_bin_type=True)
    key = FED.agencies["UNODC-STATS"].encryption.public
    return seal(header, body, FED.agencies["ITA-GDF"].signing, [key])


def test_a_return_that_breaks_its_declared_k_is_refused() -> None:
    """A published 3 under a declared k=5 ends in DisclosureControlBroken."""
    report = statistics_report([3, 40, 30])
    data = report.to_wire()
    data["statistics"]["suppression_k"] = 5
    report = Report.from_wire(data)
    opened = open_envelope(_hand_sealed(report, 5), [FED.agencies["UNODC-STATS"].encryption],
                           FED.trust_store(), now=NOW)  # fmt: skip
    with pytest.raises(DisclosureControlBroken, match="publishes 3, below k=5") as caught:
        open_report(opened)
    assert "disclosure_control" == caught.value.code


def test_body_k_must_equal_header_k() -> None:
    """A body that declares another k than its signed header is a BodyMismatch."""
    report = statistics_report([30, 40, 30])
    report = report.model_copy(update={"statistics": suppress(report.statistics, 5)})
    opened = open_envelope(_hand_sealed(report, 7), [FED.agencies["UNODC-STATS"].encryption],
                           FED.trust_store(), now=NOW)  # fmt: skip
    with pytest.raises(BodyMismatch, match="suppression_k"):
        open_report(opened)


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    box = Inbox(tmp_path / "inbox.db", StorageKey.load_or_create(tmp_path / "storage.key"))
    yield box
    box.close()


def _store(inbox: Inbox, report: Report, at: datetime) -> str:
    sealed = seal_report(
        report, FED.agencies[report.originator].signing, ["UNODC-STATS"], FED.trust_store(),
        FED.policy_store(), at,
    )  # fmt: skip
    opened = open_envelope(sealed.data, [FED.agencies["UNODC-STATS"].encryption],
                           FED.trust_store(), now=at)  # fmt: skip
    inbox.store(opened.header, open_report(opened), [], [], at)
    return opened.header.id


def test_latest_returns_keeps_the_newest_per_agency_and_period(inbox: Inbox) -> None:
    """A resubmission replaces the earlier return; a retracted one counts no more."""
    _store(inbox, statistics_report([10, 20]), NOW)
    _store(inbox, statistics_report([11, 20]), NOW + timedelta(seconds=1))
    august = _store(inbox, statistics_report([12, 20], period="2026-08"), NOW)
    _store(inbox, statistics_report([50, 60], originator="ESP-GC"), NOW)
    latest = latest_returns(inbox)
    assert [("ESP-GC", "2026-07"), ("ITA-GDF", "2026-07"), ("ITA-GDF", "2026-08")] == [
        (r.reporting_agency, r.period) for r in latest
    ]
    assert 11 == latest[1].cells[0].count
    inbox.purge(august, "retracted: wrong period", NOW)
    assert [("ESP-GC", "2026-07"), ("ITA-GDF", "2026-07")] == [
        (r.reporting_agency, r.period) for r in latest_returns(inbox)
    ]


def test_the_node_finds_every_return_it_sent_retracted_ones_too(inbox: Inbox) -> None:
    """Inbox.sent_statistics: what disclosure control links a new return to (decision 0025):
    the node's own statistical returns, oldest first, a retracted one included (its recipients
    may have kept it)."""
    sent = []
    for counts, period in (([3, 40, 30], "2026-07"), ([7, 40, 30], "2026-08")):
        report = statistics_report(counts, period=period)
        report = report.model_copy(update={"statistics": suppress(report.statistics, 5)})
        sealed = seal_report(
            report, FED.agencies["ITA-GDF"].signing, ["UNODC-STATS"], FED.trust_store(),
            FED.policy_store(), NOW,
        )  # fmt: skip
        inbox.record_sent(sealed.header, report, NOW + timedelta(seconds=len(sent)))
        sent.append(sealed.header.id)
    inbox.mark_retracted(sent[0], NOW)
    returns = inbox.sent_statistics()
    assert ["2026-07", "2026-08"] == [r.period for r in returns]
    assert [True, False, True, False] == [c.suppressed for c in returns[0].cells]
