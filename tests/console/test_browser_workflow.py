"""The officer console in a real Chromium against a live dev federation (issue 17, "Done
when"): live arrival, opening (access log), compose with the recipient preview, publish, the
other agency seeing it arrive, a release grant; and the screenshots for docs/console.md.

The two agencies' consoles are opened on different host names (``localhost`` for MLT-AFM,
``127.0.0.1`` for ITA-GDF): cookies are per host, not per port, so each tab keeps its own
session.
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from node.console.auth_state import CONSOLE
from tests.console.browser import Browser
from tests.console.conftest import Console, ConsoleFederation, as_ita, held, on, wait
from tests.harness import example

pytestmark = pytest.mark.xdist_group("console-browser")


def _access(console: Console, action: str, report: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in console.app[CONSOLE].access.entries()
        if e.get("action") == action and (report is None or e.get("report") == report)
    ]


def _watching(b: Browser) -> None:
    """This inbox page's event stream is open (an arrival before it would not be pushed):
    console.js marks the rows' container when its EventSource connects."""
    b.wait_for("#inbox-rows[data-live=connected]", "the inbox's event stream to connect")


def _fill(b: Browser, values: dict[str, str]) -> None:
    for name, value in values.items():
        element = b.find(f"[name={name}]")
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def test_alert_arrives_live_compose_preview_publish_and_release(
    console_fed: ConsoleFederation, chromium: Browser
) -> None:
    """An officer sees an urgent alert arrive without reload and opens it (access log); a
    partner officer composes, previews recipients with a refusal reason, publishes, and the
    first officer sees that arrive too; a release authority grants a release request."""
    b = chromium
    b.forget()
    ita, mlt = console_fed.consoles["ITA-GDF"], console_fed.consoles["MLT-AFM"]
    mlt_url, ita_url = on(mlt, "localhost"), on(ita, "127.0.0.1")

    # -- MLT-AFM's officer watches the inbox; ITA-GDF publishes an urgent alert ---------------
    earlier = [console_fed.call(ita.node.publish(as_ita(n))).header.id for n in ("07", "05")]
    wait("the earlier reports at MLT-AFM", lambda: held(mlt) >= set(earlier))
    b.login(mlt_url, "officer", _password())
    b.go(mlt_url, "/")
    inbox_tab = b.driver.current_window_handle
    b.driver.execute_script("window.palermoNoReload = 42;")
    _watching(b)
    alert = console_fed.call(ita.node.publish(example("01"))).header.id
    row = b.wait_for(f'tr[data-report="{alert}"]', "the urgent alert to appear in the inbox")
    assert "urgent" in row.get_attribute("class")
    assert 42 == b.driver.execute_script("return window.palermoNoReload;")  # no reload
    b.wait(  # announced once htmx has settled the swap
        lambda d: "urgent report arrived" in d.find_element(By.ID, "live").text,
        "the arrival announced in the live region",
    )
    assert "TLP:AMBER" in row.text

    # -- opening it is recorded for this officer --------------------------------------------
    b.go(mlt_url, "/")
    b.screenshot("inbox")
    b.find(f'tr[data-report="{alert}"] a').click()
    b.wait_for("section.banner", "the report page")
    assert "TLP:AMBER" in b.find("section.banner").text
    assert "Zuwara" in b.find("svg.route-map").get_attribute("innerHTML")
    assert ["officer"] == [e["officer"] for e in _access(mlt, "open", alert)]
    assert alert not in str(b.driver.current_url).split("/reports/", 1)[0]
    b.screenshot("report-view")

    # -- ITA-GDF's officer composes, previews (LBY-DCIM refused: personal data), publishes ----
    b.driver.switch_to.new_window("tab")
    ita_tab = b.driver.current_window_handle
    b.login(ita_url, "officer", _password())
    b.go(ita_url, "/compose")
    title = "Second boat expected from Sabratha tonight"
    _fill(b, {
        "kind": "report", "priority": "routine", "route": "central-med", "category": "routes",
        "title": title, "text": "A second boat is being prepared near Sabratha.",
        "unit": "GDF Maritime Operations Room", "tlp": "AMBER", "rel_to": "group:med-coastal",
        "embark_country": "LBY", "embark_place": "Sabratha", "dest_country": "ITA",
        "dest_place": "Lampedusa", "person_role": "boat-pilot", "person_name": "Example Pilot",
        "person_nationality": "SEN",
    })  # fmt: skip
    b.find("form.compose button[type=submit]:not([formaction])").click()
    preview = b.wait_for("section.preview", "the recipient preview")
    refused = b.find("ul.refused").text
    assert "LBY-DCIM" in refused
    assert "policy-no-personal-data" in refused
    assert "MLT-AFM" in b.find("ul.receive").text
    assert "LBY-DCIM" in b.find(".tear-line-offer").text
    assert preview.is_displayed()
    b.screenshot("compose-preview")
    b.find("button.publish").click()
    b.wait_for("table.status", "the delivery status page")
    published = str(b.driver.current_url).rsplit("/", 1)[-1]
    assert ["officer"] == [e["officer"] for e in _access(ita, "publish", published)]
    assert title not in str(b.driver.current_url)

    # -- MLT-AFM's officer sees it arrive, live ---------------------------------------------
    b.driver.switch_to.window(inbox_tab)
    b.go(mlt_url, "/")
    _watching(b)
    b.wait_for(f'tr[data-report="{published}"]', "the published report to arrive at MLT-AFM")
    assert title in b.find(f'tr[data-report="{published}"]').text

    # -- MLT-AFM asks to pass it on; ITA-GDF's release authority grants ---------------------
    asked = console_fed.call(
        mlt.node.request_release(published, "GRC-HCG", "joint patrol planning")
    ).id
    wait(
        "the release request at ITA-GDF",
        lambda: [r for r in ita.node.inbox.release_requests("pending") if r["id"] == asked],
    )
    b.driver.switch_to.window(ita_tab)
    b.login(ita_url, "authority", _password())
    b.go(ita_url, "/releases")
    b.wait_for(f'tr[data-request="{asked}"]', "the release request in the queue")
    b.screenshot("release-queue")
    b.find(f'tr[data-request="{asked}"] input[name=justification]').send_keys(
        "Joint patrol under the EU agreement"
    )
    b.find(f'tr[data-request="{asked}"] button[value=grant]').click()
    b.wait_for(f'tr.release-granted[data-request="{asked}"]', "the request shown granted")
    [granted] = [r for r in ita.node.inbox.release_requests() if r["id"] == asked]
    assert ("granted", "Joint patrol under the EU agreement") == (
        granted["state"],
        granted["reason"],
    )
    assert [("authority", published)] == [
        (e["officer"], e.get("report"))
        for e in _access(ita, "grant")
        if asked in e.get("detail", "")
    ]
    assert 1 == len(ita.node.inbox.releases(published))

    assert [] == b.errors()
    assert [] == mlt.csp_reports + ita.csp_reports
    b.driver.close()
    b.driver.switch_to.window(inbox_tab)


def _password() -> str:
    from tests.console._consoleapp import PASSWORD

    return PASSWORD


def test_reader_gets_403_and_a_post_without_csrf_token_is_refused(
    console_fed: ConsoleFederation, chromium: Browser
) -> None:
    """A reader may not open compose, publish or grant (403); an officer's form post without
    the CSRF token is refused (403) and publishes nothing."""
    b = chromium
    mlt = console_fed.consoles["MLT-AFM"]
    url = on(mlt, "localhost")
    b.login(url, "reader", _password())
    b.go(url, "/compose")
    assert "403" in b.find("body").text
    b.go(url, "/")
    token = b.find("input[name=csrf_token]").get_attribute("value")

    def post(path: str, fields: dict[str, str]) -> int:
        status: int = b.driver.execute_async_script(
            "const [path, fields, done] = arguments;"
            "fetch(path, {method: 'POST', body: new URLSearchParams(fields), redirect: 'manual'})"
            ".then(r => done(r.status), e => done(-1));",
            path,
            fields,
        )
        return status

    assert 403 == post("/compose/publish", {"csrf_token": token, "title": "x"})
    grant = {"csrf_token": token, "decision": "grant", "justification": "yes"}
    assert 403 == post("/releases/0193a0b0-0000-7000-8000-000000000000", grant)
    b.login(url, "officer", _password())
    b.go(url, "/")
    before = len(_access(mlt, "publish"))
    assert 403 == post("/compose/publish", {"title": "no token", "kind": "alert"})
    assert before == len(_access(mlt, "publish"))
    assert [] == [m for m in b.errors() if "403" not in m]
    b.forget()


def test_requests_show_time_left_and_are_answered_from_the_page(
    console_fed: ConsoleFederation, chromium: Browser
) -> None:
    """A request received shows its deadline and time left; an officer answers it on the page
    and the asking agency's node records it answered."""
    b = chromium
    b.forget()
    ita, mlt = console_fed.consoles["ITA-GDF"], console_fed.consoles["MLT-AFM"]
    asked = console_fed.call(
        ita.node.request("Which beach did the boat leave from?", to="MLT-AFM", deadline="2d")
    ).id
    wait(
        "the request at MLT-AFM",
        lambda: any(m["id"] == asked for m in mlt.node.inbox.messages("request")),
    )
    url = on(mlt, "localhost")
    b.login(url, "officer", _password())
    b.go(url, "/requests")
    row = b.find(f'form[action="/requests/{asked}/respond"]').find_element(By.XPATH, "ancestor::tr")
    # Two days from the request's signed creation, less the seconds since (shown rounded to
    # the minute, so just under or at two days).
    assert "due in 1d 23h" in row.text or "due in 2d 0h" in row.text, row.text
    b.find(f'form[action="/requests/{asked}/respond"] input[name=answer]').send_keys(
        "The beach west of Zuwara"
    )
    b.find(f'form[action="/requests/{asked}/respond"] button').click()
    form = f'form[action="/requests/{asked}/respond"]'
    b.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, form), "the request shown answered")
    wait("the answer at ITA-GDF", lambda: ita.node.inbox.thread(asked)["answered_by"])
    assert "response to " + asked in _access(mlt, "publish")[-1].get("detail", "")
    assert [] == b.errors()
