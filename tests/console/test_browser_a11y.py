"""Accessibility basics of the console in a real Chromium (issue 17, "Done when"): axe-core
(vendored from npm) finds no WCAG 2.1 A/AA violation on the main pages, Tab reaches every
control, and the TLP labels as rendered meet WCAG AA contrast."""

from __future__ import annotations

import re

import pytest

from node.console.views import TLP_BACKGROUND, TLP_COLOURS, contrast_ratio
from tests.console._consoleapp import PASSWORD
from tests.console.browser import Browser
from tests.console.conftest import ConsoleFederation, as_ita, held, on, wait

pytestmark = pytest.mark.xdist_group("console-browser")


def _violations(b: Browser) -> list[str]:
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes, e.g. "
        f"{v['nodes'][0]['html'][:120] if v['nodes'] else ''})"
        for v in b.axe()
    ]


@pytest.fixture(scope="module")
def received(console_fed: ConsoleFederation) -> str:
    """A report with an itinerary in MLT-AFM's inbox (its page shows the route map)."""
    ita, mlt = console_fed.consoles["ITA-GDF"], console_fed.consoles["MLT-AFM"]
    rid = console_fed.call(ita.node.publish(as_ita("12"))).header.id
    wait("the report at MLT-AFM", lambda: rid in held(mlt))
    return rid


def test_axe_finds_no_violations_on_the_main_pages(
    console_fed: ConsoleFederation, chromium: Browser, received: str
) -> None:
    """Login, inbox, report view with map, requests, compose with a preview, sent, status and
    the release queue."""
    b = chromium
    ita, mlt = console_fed.consoles["ITA-GDF"], console_fed.consoles["MLT-AFM"]
    mlt_url, ita_url = on(mlt, "localhost"), on(ita, "127.0.0.1")
    found: dict[str, list[str]] = {}
    b.driver.delete_all_cookies()
    b.go(mlt_url, "/login")
    found["/login"] = _violations(b)
    b.login(mlt_url, "officer", PASSWORD)
    for path in ("/", f"/reports/{received}", "/requests", "/compose"):
        b.go(mlt_url, path)
        found[path] = _violations(b)
    b.login(ita_url, "authority", PASSWORD)
    b.go(ita_url, "/compose")
    b.find("[name=title]").send_keys("Accessibility check")
    b.find("form.compose button[type=submit]:not([formaction])").click()
    b.wait_for(".error, section.preview", "the compose page's answer")
    found["/compose/preview"] = _violations(b)
    for path in ("/sent", "/releases", f"/sent/{received}"):
        b.go(ita_url, path)
        found[path] = _violations(b)
    assert {path: [] for path in found} == found
    # And axe does find what is wrong: an image without a text alternative.
    b.driver.execute_script(
        "const i = document.createElement('img'); i.src = '/static/favicon.svg';"
        "document.querySelector('main').appendChild(i);"
    )
    assert ["image-alt"] == [v.split(":")[0] for v in _violations(b)]


def test_tab_reaches_every_control(
    console_fed: ConsoleFederation, chromium: Browser, received: str
) -> None:
    """From the top of the inbox, the report view and the compose page, pressing Tab visits
    every link, button and field on the page."""
    b = chromium
    mlt = console_fed.consoles["MLT-AFM"]
    url = on(mlt, "localhost")
    b.login(url, "officer", PASSWORD)
    for path in ("/", f"/reports/{received}", "/compose"):
        b.go(url, path)
        controls = b.focusable()
        visited = b.tab_order()
        missing = [c.get_attribute("outerHTML")[:100] for c in controls if c not in visited]
        assert [] == missing, path
        assert len(controls) >= 5, path


def _rgb(css: str) -> str:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return f"#{r:02X}{g:02X}{b:02X}"


def test_tlp_labels_as_rendered_meet_wcag_aa(
    console_fed: ConsoleFederation, chromium: Browser, received: str
) -> None:
    """Every TLP label the console can show, as the browser computes its colours, is FIRST's
    colour on black with at least 4.5:1 contrast; the report banner too."""
    b = chromium
    mlt = console_fed.consoles["MLT-AFM"]
    url = on(mlt, "localhost")
    b.login(url, "reader", PASSWORD)
    b.go(url, f"/reports/{received}")
    rendered = b.driver.execute_script(
        "const out = {};"
        "for (const [tlp, css] of arguments[0]) {"
        "  const s = document.createElement('span'); s.className = 'tlp ' + css;"
        "  document.querySelector('main').appendChild(s);"
        "  const st = getComputedStyle(s); out[tlp] = [st.color, st.backgroundColor]; s.remove();"
        "}"
        "const banner = document.querySelector('section.banner .tlp');"
        "const bs = getComputedStyle(banner);"
        "out.banner = [bs.color, getComputedStyle(banner.closest('section')).backgroundColor];"
        "return out;",
        [[t, "tlp-" + t.lower().replace("+", "-")] for t in TLP_COLOURS],
    )
    colours = {tlp: (_rgb(fg), _rgb(bg)) for tlp, (fg, bg) in rendered.items()}
    assert {tlp: (c, TLP_BACKGROUND) for tlp, c in TLP_COLOURS.items()} == {
        t: c for t, c in colours.items() if t != "banner"
    }
    ratios = {t: round(contrast_ratio(fg, bg), 2) for t, (fg, bg) in colours.items()}
    assert all(r >= 4.5 for r in ratios.values()), ratios
