"""Partner-controlled text in the console executes nothing (issue 17, "Done when"): a report
whose every text field holds an HTML or script payload, a request and a release request whose
texts do, shown on every page that displays them in a real Chromium: no dialog opens, the
console logs no error and the browser sends no CSP violation report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from node.console.events import CSP_REPORTS
from schemas import Report
from schemas.errors import ReportInvalid
from schemas.export import parse_report
from tests.console._consoleapp import PASSWORD
from tests.console.browser import Browser
from tests.console.conftest import ConsoleFederation, held, on, wait
from tests.harness import example

pytestmark = pytest.mark.xdist_group("console-browser")

PAYLOADS = (
    "<script>alert('xss-script')</script>",
    '"><img src=x onerror="alert(\'xss-img\')">',
    "<svg onload=alert('xss-svg')><title>x</title></svg>",
    "javascript:alert('xss-url')",
    "</textarea><script>alert('xss-textarea')</script>",
    "{{ 7*7 }}{% raw %}<iframe src=javascript:alert('xss-iframe')>",
    "<a href=\"javascript:alert('xss-link')\">click</a><style>body{display:none}</style>",
)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    elif isinstance(value, str):
        yield path


def _set(data: Any, path: tuple[Any, ...], value: str) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def hostile_report() -> tuple[Report, int]:
    """Example 19 (persons, itinerary, groups) as ITA-GDF's, with a payload in every string
    field the schema accepts free text in; returns it and how many fields hold one."""
    data = example("19").model_copy(update={"originator": "ITA-GDF"}).to_wire()
    data["handling"] = {"tlp": "AMBER", "rel_to": ["group:med-coastal"]}
    for person in data.get("persons", []):  # names and aliases: free text shown on the page
        person["names"], person["aliases"] = ["name"], ["alias"]
    filled = 0
    for i, path in enumerate(list(_leaves(data))):
        trial = json.loads(json.dumps(data))
        _set(trial, path, PAYLOADS[i % len(PAYLOADS)])
        try:
            parse_report(json.dumps(trial))
        except ReportInvalid:
            continue  # a code, id or controlled term: no free text allowed there
        data, filled = trial, filled + 1
    return parse_report(json.dumps(data)), filled


def test_html_and_script_payloads_in_every_field_execute_nothing(
    console_fed: ConsoleFederation, chromium: Browser
) -> None:
    """Inbox, search, report view, requests and the release queue show the payloads as text."""
    b = chromium
    b.forget()
    ita, mlt = console_fed.consoles["ITA-GDF"], console_fed.consoles["MLT-AFM"]
    report, filled = hostile_report()
    assert filled >= 20, "the payloads should reach every free-text field of the report"
    rid = console_fed.call(ita.node.publish(report)).header.id
    console_fed.call(ita.node.request(PAYLOADS[0], to="MLT-AFM", urgent=True))
    wait("the hostile report at MLT-AFM", lambda: rid in held(mlt))
    asked = console_fed.call(mlt.node.request_release(rid, "GRC-HCG", PAYLOADS[1])).id
    wait(
        "the hostile release request at ITA-GDF",
        lambda: any(r["id"] == asked for r in ita.node.inbox.release_requests()),
    )
    wait("the hostile request at MLT-AFM", lambda: mlt.node.inbox.messages("request"))

    mlt_url, ita_url = on(mlt, "localhost"), on(ita, "127.0.0.1")
    b.login(mlt_url, "officer", PASSWORD)
    for path in ("/", f"/reports/{rid}", "/requests"):
        b.go(mlt_url, path)
        assert b.dialog() is None, f"a script ran on {path}"
        assert report.title in b.find("main").text or path == "/requests"
    b.go(mlt_url, "/")
    b.find("#f-q").send_keys("XSS")  # the search form, answered by htmx in place
    b.find("form.filters button[type=submit]").click()
    caption = "return document.querySelector('#inbox-rows caption').textContent;"
    b.wait(lambda d: "1 report," in d.execute_script(caption), "the search result")
    assert rid == b.find("#inbox-rows tbody tr").get_attribute("data-report")
    assert "XSS" not in str(b.driver.current_url)
    assert b.dialog() is None
    b.go(mlt_url, "/requests")
    assert PAYLOADS[0] in b.find("main").text  # shown as text, not run
    b.go(mlt_url, f"/reports/{rid}")
    assert PAYLOADS[1] in b.find("main").text or PAYLOADS[2] in b.find("main").text
    scripts = b.driver.execute_script(
        "return Array.from(document.scripts).map(s => [s.getAttribute('src'), s.text]);"
    )
    assert [["/static/vendor/htmx/htmx.min.js", ""], ["/static/console.js", ""]] == scripts
    b.login(ita_url, "authority", PASSWORD)
    b.go(ita_url, "/releases")
    assert b.dialog() is None
    assert PAYLOADS[1] in b.find(f'tr[data-request="{asked}"]').text
    b.go(ita_url, "/requests")
    assert b.dialog() is None

    assert [] == b.errors()
    assert [] == mlt.csp_reports + ita.csp_reports


def test_the_csp_blocks_an_inline_script_and_reports_it(
    console_fed: ConsoleFederation, chromium: Browser
) -> None:
    """The check above can fail: an inline script put into the page is refused by the CSP,
    logged as an error and reported to /csp-report."""
    b = chromium
    b.forget()
    mlt = console_fed.consoles["MLT-AFM"]
    url = on(mlt, "localhost")
    b.login(url, "reader", PASSWORD)
    b.go(url, "/")
    b.driver.execute_script(
        "const s = document.createElement('script');"
        's.textContent = "window.palermoInjected = true;";'
        "document.body.appendChild(s);"
    )
    assert b.driver.execute_script("return window.palermoInjected === undefined;")
    wait("the CSP violation report", lambda: mlt.csp_reports)
    assert "script-src" in str(mlt.csp_reports[-1].get("violated-directive"))
    assert any("Content Security Policy" in e for e in b.errors())
    mlt.app[CSP_REPORTS].clear()
    b.forget()
