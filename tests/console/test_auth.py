"""The console's accounts and sessions: argon2id hashes, login, limits, idle timeout, CSRF,
roles, TOTP, and the security headers on every response."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web

from node.console import OFFICER, require_role
from node.console.app import CSP, _policy_totp
from node.console.officers import OfficerStore, effective_roles, totp_for
from node.console.sessions import SessionStore
from palermo.devfed import EXAMPLES
from policies import Federation
from schemas.errors import ConfigError, InputError
from tests.console._consoleapp import PASSWORD, Clock, add, console_client, csrf_of, login


def test_passwords_are_stored_as_argon2id_hashes_in_a_0600_file(tmp_path: Path) -> None:
    """Only an argon2id hash is stored (m=64 MiB, t=3), never the password, in a 0600 file."""
    add(tmp_path, "anna", "reader")
    path = tmp_path / "officers.json"
    stored = json.loads(path.read_text())["officers"]["anna"]
    assert stored["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in path.read_text()
    assert 0o600 == path.stat().st_mode & 0o777


def test_accounts_refuse_bad_names_short_passwords_and_duplicates(tmp_path: Path) -> None:
    """Each refusal says what to change."""
    store = OfficerStore.in_state_dir(tmp_path)
    with pytest.raises(InputError, match="lower-case"):
        store.add("Anna Smith", ["reader"], PASSWORD)
    with pytest.raises(InputError, match="12 to 1024"):
        store.add("anna", ["reader"], "short")
    store.add("anna", ["reader"], PASSWORD)
    with pytest.raises(InputError, match="exists"):
        store.add("anna", ["officer"], PASSWORD)


def test_an_officers_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    """Password hashes and TOTP secrets in a world-readable file: refused with the fix."""
    add(tmp_path, "anna", "reader")
    os.chmod(tmp_path / "officers.json", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        OfficerStore.in_state_dir(tmp_path)


def test_roles_are_cumulative_and_administrators_do_not_release() -> None:
    """officer ⊇ reader, release-authority ⊇ officer; administrator = accounts + reader."""
    assert {"reader", "officer", "release-authority"} == effective_roles(["release-authority"])
    assert {"reader", "administrator"} == effective_roles(["administrator"])


async def test_login_succeeds_sets_a_strict_httponly_cookie_and_rotates_the_session(
    tmp_path: Path,
) -> None:
    """A correct password: 303 to the page asked for, a new session id in a SameSite=Strict,
    HttpOnly cookie, and the officer is logged in on the next request."""
    add(tmp_path, "anna", "administrator")
    async with console_client(tmp_path, Clock()) as client:
        await client.get("/login")
        before = client.session.cookie_jar.filter_cookies(client.make_url("/"))["plm_session"]
        token = await csrf_of(client)
        form = {"csrf_token": token, "name": "anna", "password": PASSWORD,
                "next": "/admin/officers"}  # fmt: skip
        response = await client.post("/login", data=form, allow_redirects=False)
        assert 303 == response.status
        assert "/admin/officers" == response.headers["Location"]
        cookie = response.cookies["plm_session"]
        assert cookie["httponly"]
        assert "Strict" == cookie["samesite"]
        assert before.value != cookie.value
        page = await client.get("/admin/officers")
        assert 200 == page.status
        assert "anna" in await page.text()


async def test_login_refuses_a_wrong_password_or_an_unknown_name_alike(tmp_path: Path) -> None:
    """401 with one message for both; the failed attempts are in the access log."""
    add(tmp_path, "anna", "reader")
    async with console_client(tmp_path, Clock()) as client:
        wrong = await login(client, "anna", "not the password at all")
        unknown = await login(client, "nobody")
        assert [401, 401] == [wrong.status, unknown.status]
        assert "Wrong name, password or code." in await wrong.text()
        assert "Wrong name, password or code." in await unknown.text()
        assert 303 == (await client.get("/admin/officers", allow_redirects=False)).status
    lines = (tmp_path / "access-log.jsonl").read_text().splitlines()
    assert [("anna", "login-failed"), ("nobody", "login-failed")] == [
        (e["officer"], e["action"]) for e in map(json.loads, lines)
    ]


async def test_open_redirects_after_login_are_refused(tmp_path: Path) -> None:
    """next=//evil.example goes to / instead."""
    add(tmp_path, "anna", "reader")
    async with console_client(tmp_path, Clock()) as client:
        token = await csrf_of(client)
        form = {"csrf_token": token, "name": "anna", "password": PASSWORD,
                "next": "//evil.example/"}  # fmt: skip
        response = await client.post("/login", data=form, allow_redirects=False)
        assert "/" == response.headers["Location"]


async def test_five_failures_give_429_with_retry_after_until_the_window_passes(
    tmp_path: Path,
) -> None:
    """Per account: the sixth try is refused unchecked, even with the right password, until
    the oldest failure leaves the 15-minute window (the clock moved, never slept)."""
    add(tmp_path, "anna", "reader")
    clock = Clock()
    async with console_client(tmp_path, clock) as client:
        for _ in range(5):
            assert 401 == (await login(client, "anna", "wrong password!!")).status
            clock.advance(seconds=10)
        locked = await login(client, "anna")
        assert 429 == locked.status
        assert 15 * 60 - 50 == int(locked.headers["Retry-After"])
        clock.advance(seconds=15 * 60 - 50)
        assert 303 == (await login(client, "anna")).status


async def test_failures_from_one_address_across_names_are_limited_too(tmp_path: Path) -> None:
    """Per client address: five names tried from one address lock that address."""
    add(tmp_path, "anna", "reader")
    async with console_client(tmp_path, Clock()) as client:
        for name in ("bob", "carl", "dora", "emil", "fritz"):
            assert 401 == (await login(client, name)).status
        assert 429 == (await login(client, "anna")).status


async def test_an_idle_session_ends_after_the_timeout(tmp_path: Path) -> None:
    """A request 14 minutes after the last keeps the session; 15 minutes and a second idle
    end it (303 to /login)."""
    add(tmp_path, "anna", "administrator")
    clock = Clock()
    async with console_client(tmp_path, clock) as client:
        await login(client, "anna")
        clock.advance(minutes=14)
        assert 200 == (await client.get("/admin/officers", allow_redirects=False)).status
        clock.advance(minutes=15, seconds=1)
        gone = await client.get("/admin/officers", allow_redirects=False)
        assert (303, "/login") == (gone.status, gone.headers["Location"])


async def test_a_post_without_the_csrf_token_is_refused(tmp_path: Path) -> None:
    """Logged in, a form without the token (or with another session's) gets 403 and says why;
    the login form needs it too."""
    add(tmp_path, "anna", "administrator")
    async with console_client(tmp_path, Clock()) as client:
        refused = await client.post("/login", data={"name": "anna", "password": PASSWORD})
        assert 403 == refused.status
        assert "CSRF token" in await refused.text()
        await login(client, "anna")
        form = {"name": "bob", "role": "reader", "password": PASSWORD}
        missing = await client.post("/admin/officers", data=form)
        forged = await client.post("/admin/officers", data={**form, "csrf_token": "x" * 43})
        assert [403, 403] == [missing.status, forged.status]
        assert OfficerStore.in_state_dir(tmp_path).get("bob") is None


async def test_wrong_role_gets_403_and_anonymous_requests_get_401_or_login(
    tmp_path: Path,
) -> None:
    """A release authority is not an administrator; nobody logged in is sent to /login
    (GET) or refused (POST)."""
    add(tmp_path, "rita", "release-authority")
    async with console_client(tmp_path, Clock()) as client:
        anonymous = await client.post("/admin/officers/rita/disable", data={})
        assert 403 == anonymous.status  # CSRF first: no token at all
        token = await csrf_of(client)
        anonymous = await client.post("/admin/officers/rita/disable", data={"csrf_token": token})
        assert 401 == anonymous.status
        await login(client, "rita")
        page = await client.get("/admin/access-log")
        assert 403 == page.status
        assert "needs the administrator role" in await page.text()


async def test_require_role_lets_implied_roles_through(tmp_path: Path) -> None:
    """A page for officers serves a release authority and refuses a reader."""

    @require_role("officer")
    async def compose(request: web.Request) -> web.StreamResponse:
        return web.Response(text=f"compose for {request[OFFICER].name}")

    add(tmp_path, "rita", "release-authority")
    add(tmp_path, "rudi", "reader")

    def hook(app: web.Application) -> None:
        app.router.add_get("/test/officers-only", compose)

    async with console_client(tmp_path, Clock(), app_hook=hook) as client:
        await login(client, "rita")
        assert "compose for rita" == await (await client.get("/test/officers-only")).text()
    async with console_client(tmp_path, Clock(), app_hook=hook) as client:
        await login(client, "rudi")
        assert 403 == (await client.get("/test/officers-only")).status


async def test_totp_is_checked_and_a_code_is_accepted_once(tmp_path: Path) -> None:
    """An account with TOTP needs the current code; the same code twice is refused."""
    add(tmp_path, "rita", "release-authority", totp=True)
    secret = OfficerStore.in_state_dir(tmp_path).get("rita").totp_secret  # type: ignore[union-attr]
    clock = Clock()
    code = totp_for(secret).generate(clock.now.timestamp()).decode()
    async with console_client(tmp_path, clock) as client:
        assert 401 == (await login(client, "rita")).status
        assert 303 == (await login(client, "rita", code=code)).status
    async with console_client(tmp_path, clock) as client:
        assert 401 == (await login(client, "rita", code=code)).status


async def test_the_federation_policy_can_require_totp_for_a_role(tmp_path: Path) -> None:
    """A release authority without TOTP under a policy requiring it: 403 naming the fix;
    a reader under the same policy logs in."""
    add(tmp_path, "rita", "release-authority")
    add(tmp_path, "rudi", "reader")
    required = frozenset({"release-authority", "administrator"})
    async with console_client(tmp_path, Clock(), totp_required=required) as client:  # type: ignore[arg-type]
        refused = await login(client, "rita")
        assert 403 == refused.status
        assert "palermo officer totp rita" in await refused.text()
        assert 303 == (await login(client, "rudi")).status


async def test_a_disabled_account_is_logged_out_at_once(tmp_path: Path) -> None:
    """Disabling on the host (another process writing the file) ends the live session."""
    add(tmp_path, "anna", "administrator")
    async with console_client(tmp_path, Clock()) as client:
        await login(client, "anna")
        assert 200 == (await client.get("/admin/officers", allow_redirects=False)).status
        OfficerStore.in_state_dir(tmp_path).disable("anna")
        assert 303 == (await client.get("/admin/officers", allow_redirects=False)).status
        assert 401 == (await login(client, "anna")).status


async def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    """Pages, errors and redirects: strict CSP, no framing, no sniffing, no referrer,
    no-store."""
    async with console_client(tmp_path, Clock()) as client:
        for path in ("/login", "/admin/officers", "/no-such-page"):
            response = await client.get(path, allow_redirects=False)
            assert CSP == response.headers["Content-Security-Policy"]
            assert "DENY" == response.headers["X-Frame-Options"]
            assert "nosniff" == response.headers["X-Content-Type-Options"]
            assert "no-referrer" == response.headers["Referrer-Policy"]
            assert "no-store" == response.headers["Cache-Control"]


async def test_over_tls_the_cookie_is_secure_and_host_prefixed(tmp_path: Path) -> None:
    """Behind a TLS proxy (or with a certificate): __Host- cookie, Secure, HSTS."""
    add(tmp_path, "anna", "reader")
    extra = {"console_behind_tls_proxy": True}
    async with console_client(tmp_path, Clock(), extra=extra) as client:
        response = await client.get("/login")
        cookie = response.cookies["__Host-plm_session"]
        assert cookie["secure"]
        assert cookie["httponly"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_an_administrator_adds_and_disables_officers_through_the_pages(
    tmp_path: Path,
) -> None:
    """The add form (with its token) creates the account and shows its TOTP URI once; the
    disable form ends the account's live session; both are in the access log."""
    add(tmp_path, "anna", "administrator")
    async with (
        console_client(tmp_path, Clock()) as admin,
        console_client(tmp_path, Clock()) as other,
    ):
        await login(admin, "anna")
        token = await csrf_of(admin, "/admin/officers")
        form = {"csrf_token": token, "name": "bob", "role": "officer", "password": PASSWORD,
                "totp": "on"}  # fmt: skip
        created = await admin.post("/admin/officers", data=form)
        assert 201 == created.status
        assert "otpauth://totp/" in await created.text()
        bob = OfficerStore.in_state_dir(tmp_path).get("bob")
        assert bob is not None
        assert ["officer"] == bob.roles
        refused = await admin.post("/admin/officers", data={**form, "name": "carl",
                                                           "role": "king"})  # fmt: skip
        assert 422 == refused.status
        disabled = await admin.post(
            "/admin/officers/bob/disable", data={"csrf_token": token}, allow_redirects=False
        )
        assert 303 == disabled.status
        assert OfficerStore.in_state_dir(tmp_path).get("bob").disabled  # type: ignore[union-attr]
        assert 401 == (await login(other, "bob")).status
    actions = [json.loads(line)["action"] for line in
               (tmp_path / "access-log.jsonl").read_text().splitlines()]  # fmt: skip
    assert ["login", "officer-add", "officer-disable", "login-failed"] == actions


def test_the_federation_rule_is_read_from_the_signed_policy_and_absent_keeps_old_bytes() -> None:
    """[rules] console_totp_required_for reaches the console through the node's policy view;
    a policy without it has the same canonical bytes as before the field existed."""
    text = (EXAMPLES / "federation.toml").read_text()
    plain = Federation.from_toml(text)
    assert b"console_totp_required_for" not in plain.canonical_bytes()
    ruled = Federation.from_toml(
        text.replace("[rules]", '[rules]\nconsole_totp_required_for = ["release-authority"]', 1)
    )
    node = SimpleNamespace(policy=SimpleNamespace(federation=ruled))
    assert {"release-authority"} == _policy_totp(node)()  # type: ignore[arg-type]
    assert set() == _policy_totp(None)()


async def test_logout_ends_the_session_and_is_recorded(tmp_path: Path) -> None:
    """POST /logout (with the token) drops the session: the old cookie no longer logs in."""
    add(tmp_path, "anna", "administrator")
    async with console_client(tmp_path, Clock()) as client:
        await login(client, "anna")
        token = await csrf_of(client, "/admin/officers")
        out = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
        assert (303, "/login") == (out.status, out.headers["Location"])
        assert 303 == (await client.get("/admin/officers", allow_redirects=False)).status
    actions = [json.loads(line)["action"] for line in
               (tmp_path / "access-log.jsonl").read_text().splitlines()]  # fmt: skip
    assert ["login", "logout"] == actions


async def test_behind_a_proxy_limits_count_the_forwarded_address(tmp_path: Path) -> None:
    """With console_trust_forwarded_for, five failures from one browser address lock that
    address, not the proxy's: another forwarded address still logs in."""
    add(tmp_path, "anna", "reader")
    extra = {"console_trust_forwarded_for": True}
    async with console_client(tmp_path, Clock(), extra=extra) as client:

        async def attempt(name: str, via: str) -> int:
            token = await csrf_of(client)
            form = {"csrf_token": token, "name": name, "password": PASSWORD}
            headers = {"X-Forwarded-For": f"198.51.100.9, {via}"}
            response = await client.post(
                "/login", data=form, headers=headers, allow_redirects=False
            )
            return response.status

        for name in ("bob", "carl", "dora", "emil", "fritz"):
            assert 401 == await attempt(name, "203.0.113.7")
        assert 429 == await attempt("anna", "203.0.113.7")
        assert 303 == await attempt("anna", "203.0.113.8")


def test_a_flood_of_anonymous_sessions_never_evicts_a_logged_in_one() -> None:
    """Past the limit the oldest anonymous sessions go; an officer's stays, as long as it is
    used within the idle timeout."""
    clock = Clock()
    store = SessionStore(clock=clock, limit=3)
    officer = store.new("anna")
    first = store.new()
    for _ in range(5):
        store.new()
    assert store.get(first.id) is None
    assert officer is store.get(officer.id)
    assert 4 == len(store)
