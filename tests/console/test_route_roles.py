"""Every console route against issue 17's role matrix: reader reads; officer also composes,
requests and responds; release authority also grants and denies; administrator manages
accounts. A route added without ``require_role``, or with another role than the matrix
gives, fails here (the few public routes are listed, each with why)."""

from __future__ import annotations

from pathlib import Path

from tests.console._consoleapp import Clock, settings

MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/"): "reader",
    ("POST", "/"): "reader",  # the inbox filters, POSTed to keep search terms out of URLs
    ("POST", "/inbox/rows"): "reader",
    ("GET", "/reports/{id}"): "reader",
    ("GET", "/events"): "reader",
    ("GET", "/requests"): "reader",
    ("GET", "/sent"): "officer",
    ("GET", "/sent/{id}"): "officer",
    ("GET", "/compose"): "officer",
    ("POST", "/compose/preview"): "officer",
    ("POST", "/compose/publish"): "officer",
    ("POST", "/compose/request"): "officer",
    ("POST", "/requests/{id}/respond"): "officer",
    ("GET", "/releases"): "release-authority",
    ("POST", "/releases/{id}"): "release-authority",
    ("GET", "/admin/officers"): "administrator",
    ("POST", "/admin/officers"): "administrator",
    ("POST", "/admin/officers/{name}/disable"): "administrator",
    ("GET", "/admin/access-log"): "administrator",
}
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/login"),  # the way in
        ("POST", "/login"),  # CSRF-checked against the anonymous session
        ("POST", "/logout"),  # CSRF-checked; ends whatever session there is
        ("GET", "/favicon.ico"),  # a shipped file
        ("POST", "/csp-report"),  # browsers send violation reports without a session
        ("GET", "/static/"),  # vendored assets, no report content
    }
)


def _routes(tmp_path: Path) -> dict[tuple[str, str], object]:
    from node.console import build_console_app

    app = build_console_app(None, settings(tmp_path), clock=Clock())
    found: dict[tuple[str, str], object] = {}
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds one per GET, with the GET's handler
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        if "/static" in str(info.get("prefix", "")):
            path = "/static/"
        found[(route.method, str(path))] = route.handler
    return found


def test_every_route_is_in_the_role_matrix_or_public_on_purpose(tmp_path: Path) -> None:
    """No route unlisted, none guarded by another role than the matrix says, and the public
    ones public (a role on /login would lock everyone out)."""
    found = _routes(tmp_path)
    assert set(MATRIX) | PUBLIC == set(found)
    wrong = {
        key: getattr(handler, "required_role", None)
        for key, handler in found.items()
        if key in MATRIX and getattr(handler, "required_role", None) != MATRIX[key]
    }
    assert {} == wrong
    guarded_public = [k for k in PUBLIC if hasattr(found[k], "required_role")]
    assert [] == guarded_public
