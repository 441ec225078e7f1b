"""The statistical returns a node holds, as aggregation reads them (issue 16; decision 0024).

A return resubmitted for the same reporting agency and period replaces the earlier one: only
the newest (by its signed ``created`` time, then its UUIDv7 id) counts. A retracted return is
purged from the inbox and counts no more; retracting a resubmission leaves the return it had
replaced as the newest again (the agency withdrew the correction, not the period).
"""

from __future__ import annotations

from schemas import EnvelopeHeader, Kind, StatisticalReturn

from .inbox import Inbox

__all__ = ["latest_returns"]


def latest_returns(inbox: Inbox) -> list[StatisticalReturn]:
    """The newest unretracted return per (reporting agency, period), sorted by both."""
    newest: dict[tuple[str, str], tuple[int, str, StatisticalReturn]] = {}
    for entry in inbox.entries():
        if entry.kind != Kind.STATISTICS.value or entry.purged_ms is not None:
            continue
        _, report = inbox.show(entry.id)
        if report is None or report.statistics is None:
            continue  # purged (retracted or expired), or an iir/1 return of narrative only
        created = EnvelopeHeader.model_validate(entry.header).created
        stats = report.statistics
        key = (stats.reporting_agency, stats.period)
        rank = (int(created.timestamp() * 1000), entry.id, stats)
        if key not in newest or rank[:2] > newest[key][:2]:
            newest[key] = rank
    return [newest[key][2] for key in sorted(newest)]
