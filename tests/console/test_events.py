"""The CSP report endpoint: JSON only, bounded, recorded; and the arrival stream's fan-out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from node.console.events import CSP_REPORTS, MAX_CSP_BODY, Arrivals
from tests.console._consoleapp import Clock, console_client

CSP = {"Content-Type": "application/csp-report"}


async def test_csp_reports_are_recorded_and_bounded(tmp_path: Path) -> None:
    """A report-uri report and a Reporting API list are kept; not JSON: 400; too big: 413."""
    async with console_client(tmp_path, Clock()) as client:
        report = {"csp-report": {"violated-directive": "script-src", "blocked-uri": "inline"}}
        assert (
            204 == (await client.post("/csp-report", data=json.dumps(report), headers=CSP)).status
        )
        listed = [{"type": "csp-violation", "body": {"effectiveDirective": "img-src"}}]
        headers = {"Content-Type": "application/reports+json"}
        assert (
            204
            == (await client.post("/csp-report", data=json.dumps(listed), headers=headers)).status
        )
        assert 400 == (await client.post("/csp-report", data=b"<html>", headers=CSP)).status
        big = b"[" + b" " * MAX_CSP_BODY + b"]"
        assert 413 == (await client.post("/csp-report", data=big, headers=CSP)).status
        kept = list(client.server.app[CSP_REPORTS])
        assert [report["csp-report"], listed[0]["body"]] == kept
        # Any other content type is a form post like any other: CSRF applies.
        plain = await client.post("/csp-report", data=json.dumps(report))
        assert 403 == plain.status


async def test_arrivals_reach_every_open_stream_and_close() -> None:
    """Each open stream gets the id and urgency only; close_all ends them."""
    from tests.harness import example

    arrivals = Arrivals()
    queues = [asyncio.Queue[dict[str, object] | None](maxsize=2) for _ in range(2)]
    arrivals.queues.update(queues)
    report = example("01")

    class Entry:
        id, priority = "0193a0b0-0000-7000-8000-000000000001", "urgent"

    arrivals.stored(Entry(), report)  # type: ignore[arg-type]
    arrivals.close_all()
    for q in queues:
        assert [{"id": Entry.id, "urgent": True}, None] == [q.get_nowait(), q.get_nowait()]
