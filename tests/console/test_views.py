"""The console's view-models: inbox rows, filters, search, report view, thread, TLP banner."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.console.views import (
    TLP_BACKGROUND,
    TLP_COLOURS,
    InboxFilter,
    check_report_id,
    contrast_ratio,
    inbox_rows,
    report_view,
    thread_view,
    tlp_banner,
)
from node.inbox import Inbox, StorageKey
from schemas import EnvelopeHeader, Report, new_uuid7, partition
from schemas.errors import InputError
from tests.harness import example

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _header(report: Report) -> EnvelopeHeader:
    return EnvelopeHeader(
        id=new_uuid7(),
        originator=report.originator,
        kid="0" * 16,
        created=NOW,
        kind=report.kind,
        priority=report.priority,
        route=report.route,
        category=report.category,
        handling=report.handling,
        schema_=report.schema_,
        recipients=["GRC-HCG" if report.originator == "MLT-AFM" else "MLT-AFM"],
        sections=partition(report).sections(),
    )


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    box = Inbox(tmp_path / "inbox.db", StorageKey.load_or_create(tmp_path / "storage.key"))
    yield box
    box.close()


def _store(inbox: Inbox, name: str, at: datetime, withheld: tuple[str, ...] = ()) -> str:
    report = example(name)
    header = _header(report)
    obligations = [{"code": "need-to-know", "source": "TLP", "message": "Need to know only."}]
    inbox.store(header, report, obligations, withheld, at)
    return header.id


def _entries(inbox: Inbox) -> list[tuple[object, Report | None]]:
    return [(e, inbox.show(e.id)[1]) for e in inbox.entries()]


def test_tlp_colours_are_first_tlp2_and_meet_wcag_aa_on_black() -> None:
    """Every TLP label colour (FIRST TLP 2.0) has at least 4.5:1 contrast on its black ground."""
    assert {"CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"} == set(TLP_COLOURS)
    ratios = {tlp: contrast_ratio(c, TLP_BACKGROUND) for tlp, c in TLP_COLOURS.items()}
    assert all(r >= 4.5 for r in ratios.values()), ratios
    assert round(contrast_ratio("#FFFFFF", "#000000"), 1) == 21.0
    assert round(contrast_ratio("#777777", "#FFFFFF"), 2) == 4.48  # just below AA: known value


def test_banner_names_codes_in_plain_words() -> None:
    """The banner gives the TLP class and each code's meaning from the policy catalogue."""
    banner = tlp_banner(["TLP:AMBER+STRICT", "H0", "H1", "A1"])
    assert ("TLP:AMBER+STRICT", "tlp-amber-strict") == (banner["label"], banner["css"])
    assert ["H0", "H1", "A1"] == [c["code"] for c in banner["codes"]]
    assert banner["codes"][2]["meaning"].startswith("No direct action")


def test_inbox_urgent_first_then_newest_with_filters_and_search(inbox: Inbox) -> None:
    """Urgent rows lead, newest first within each; filters and full-text search narrow."""
    old_urgent = _store(inbox, "03", NOW - timedelta(days=3))
    routine = _store(inbox, "05", NOW - timedelta(hours=1))
    new_urgent = _store(inbox, "01", NOW - timedelta(hours=2), withheld=("personal-data",))
    rows = inbox_rows(_entries(inbox), InboxFilter.parse({}), NOW)  # type: ignore[arg-type]
    assert [new_urgent, old_urgent, routine] == [r["id"] for r in rows]
    assert ["personal-data"] == rows[0]["withheld"]
    assert "tlp-amber" == rows[0]["tlp"]["css"]

    def ids(query: dict[str, str]) -> list[str]:
        flt = InboxFilter.parse(query)
        assert [] == flt.errors
        return [r["id"] for r in inbox_rows(_entries(inbox), flt, NOW)]  # type: ignore[arg-type]

    assert [new_urgent] == ids({"q": "ZUWARA inflatable"})  # every word, case-folded
    assert [] == ids({"q": "zuwara nonexistentword"})
    assert [new_urgent, routine] == ids({"route": "central-med"})
    assert [old_urgent] == ids({"tlp": "GREEN"})
    assert [routine] == ids({"kind": "report"})
    assert [new_urgent, routine] == ids({"period": "24h"})
    assert [old_urgent] == ids({"category": "documents", "originator": "ESP-GC"})
    assert [] == ids({"category": "documents", "originator": "ITA-GDF"})


def test_bad_filter_values_are_dropped_not_echoed() -> None:
    """An unknown filter value is an error message that does not repeat the value."""
    flt = InboxFilter.parse({"route": "<script>", "period": "1y", "q": "x" * 500})
    assert (None, None, None) == (flt.route, flt.period, flt.q)
    assert 3 == len(flt.errors)
    assert not any("<script>" in e for e in flt.errors)


def test_report_view_groups_withheld_reasons_and_obligations(inbox: Inbox) -> None:
    """Persons by role, groups in order, withheld sections with why, obligations, evaluation."""
    rid = _store(inbox, "07", NOW, withheld=("personal-data",))
    entry, report = inbox.show(rid)
    view = report_view(entry, report, NOW)
    assert view["report"] is not None
    assert ["boat-pilot", "smuggled-migrant"] == [p["role"] for p in view["report"]["persons"]]
    assert 2 == len(view["report"]["persons"][1]["items"])
    assert [{"code": "need-to-know", "message": "Need to know only.", "value": None}] == view[
        "obligations"
    ]
    assert "personal data" in view["withheld"][0]["why"]
    evaluated = report_view(*inbox.show(_store(inbox, "01", NOW)), NOW)
    assert "admiralty-6x6" == evaluated["report"]["evaluation"]["scheme"]
    assert [("source", "B"), ("information", "2")] == evaluated["report"]["evaluation"]["codes"]
    assert ["embarkation", "destination"] == [p["role"] for p in evaluated["report"]["itinerary"]]


def test_purged_report_shows_its_tombstone(inbox: Inbox) -> None:
    """After a purge the view keeps the banner and why, and no content."""
    rid = _store(inbox, "01", NOW)
    inbox.purge(rid, "retracted", NOW)
    view = report_view(*inbox.show(rid), NOW)
    assert (None, "retracted") == (view["report"], view["purge_reason"])


def test_thread_lists_requests_and_release_requests_about_the_report() -> None:
    """Only the messages that refer to the report, oldest first, with the time left."""
    rid, other = new_uuid7(), new_uuid7()
    base = int(NOW.timestamp() * 1000)
    messages = [
        {"kind": "request", "direction": "received", "refs": [rid], "from": "MLT-AFM",
         "to": "ITA-GDF", "received_ms": base - 1000, "text": "Which beach?",
         "deadline_ms": base - 60_000, "answered_by": None},
        {"kind": "request", "direction": "received", "refs": [other], "from": "MLT-AFM",
         "to": "ITA-GDF", "received_ms": base - 5000, "text": "unrelated", "deadline_ms": None,
         "answered_by": None},
    ]  # fmt: skip
    releases = [
        {"id": "r1", "report": rid, "requester": "MLT-AFM", "target": "GRC-HCG",
         "purpose": "joint patrol", "received_ms": base - 9000, "state": "pending"},
    ]  # fmt: skip
    thread = thread_view(rid, messages, releases, ["rel-1"], "duplicate", NOW)
    assert ["release request", "request", "release", "retraction"] == [t["what"] for t in thread]
    assert "overdue by 0h 1m" == thread[1]["deadline"]


def test_report_ids_from_urls_are_checked() -> None:
    """Only a UUID's characters pass."""
    assert "0193-ab" == check_report_id("0193-ab")
    for bad in ("", "x" * 65, "../etc", "<b>"):
        with pytest.raises(InputError):
            check_report_id(bad)


def test_request_rows_flag_overdue_only_when_unanswered() -> None:
    """Past its deadline and unanswered: overdue; answered: never overdue."""
    from node.console.pages_queues import _request_row

    now_ms = int(NOW.timestamp() * 1000)
    base = {"id": "r", "direction": "received", "from": "A", "to": "B", "priority": "urgent",
            "received_ms": now_ms - 10_000, "refs": [], "deadline_ms": now_ms - 60_000}  # fmt: skip
    late = _request_row({**base, "answered_by": None}, now_ms, NOW)
    assert (True, "overdue by 0h 1m") == (late["overdue"], late["time_left"])
    done = _request_row({**base, "answered_by": "x"}, now_ms, NOW)
    assert (False, "answered") == (done["overdue"], done["time_left"])
    open_ = _request_row({**base, "answered_by": None, "deadline_ms": None}, now_ms, NOW)
    assert (False, "no deadline") == (open_["overdue"], open_["time_left"])
