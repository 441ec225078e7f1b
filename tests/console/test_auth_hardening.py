"""Attacks on the console's login and sessions found in review (issue 17): each test is the
attack, and what the console does instead."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from node.console.auth_limits import LoginLimiter
from node.console.auth_pages import _next_path
from node.console.events import EVENTS, MAX_STREAMS_PER_OFFICER
from node.console.officers import OfficerStore
from tests.console._consoleapp import PASSWORD, Clock, add, console_client, csrf_of, login


@pytest.mark.parametrize(
    "nxt",
    [
        "/\t/evil.example/",  # yarl and browsers drop the tab: "//evil.example/"
        "/\n/evil.example/",
        "/\r\n/evil.example/",
        "/\\evil.example/",
        "/ \\/evil.example/",
        "https://evil.example/",
        "/" + "a" * 600,
    ],
)
def test_next_paths_a_browser_would_read_as_another_site_become_root(nxt: str) -> None:
    """Whatever ``next`` hides, the redirect it would make stays on this site."""
    assert "/" == _next_path(nxt)
    assert "/" == str(web.HTTPSeeOther(_next_path(nxt)).location)


async def test_login_with_a_tab_hidden_next_goes_to_the_inbox(tmp_path: Path) -> None:
    """The same through the login form: not 'Location: //evil.example/'."""
    add(tmp_path, "anna", "reader")
    async with console_client(tmp_path, Clock()) as client:
        token = await csrf_of(client)
        form = {"csrf_token": token, "name": "anna", "password": PASSWORD,
                "next": "/\t/evil.example/"}  # fmt: skip
        response = await client.post("/login", data=form, allow_redirects=False)
        assert (303, "/") == (response.status, response.headers["Location"])


async def test_login_next_keeps_an_ordinary_local_path(tmp_path: Path) -> None:
    """The check is not so strict that the page asked for is lost."""
    add(tmp_path, "anna", "reader")
    async with console_client(tmp_path, Clock()) as client:
        token = await csrf_of(client)
        nxt = "/reports/0193a0b0-0000-7000-8000-000000000001?x=1"
        form = {"csrf_token": token, "name": "anna", "password": PASSWORD, "next": nxt}
        response = await client.post("/login", data=form, allow_redirects=False)
        assert nxt == response.headers["Location"]


async def test_a_non_ascii_csrf_token_is_refused_with_403_not_a_server_error(
    tmp_path: Path,
) -> None:
    """compare_digest refuses non-ASCII str with TypeError: a forged token must still be a 403
    saying why, in the form field and in the htmx header alike."""
    async with console_client(tmp_path, Clock()) as client:
        await csrf_of(client)  # an anonymous session with a token
        field = await client.post("/login", data={"csrf_token": "é" * 43, "name": "x"})
        header = await client.post(
            "/login", data={"name": "x"}, headers={"X-CSRF-Token": "\u00e9" * 43}
        )
        assert [403, 403] == [field.status, header.status]
        assert "CSRF token" in await field.text()


async def _arrival_or_end(stream: Any, app: Any) -> bytes:
    """Announce one arrival to every open stream; what the stream then sends ("" at its end)."""
    entry = SimpleNamespace(id="0193a0b0-0000-7000-8000-000000000001", priority="urgent")
    app[EVENTS].stored(entry, None)
    return bytes(await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 30))


@pytest.mark.parametrize("how", ["disabled", "idle", "logged-out"])
async def test_the_arrival_stream_ends_with_its_session(tmp_path: Path, how: str) -> None:
    """A live /events stream stops when its officer is disabled, logs out or leaves the page
    idle past the timeout: not one more arrival reaches it (the stream alone does not count as
    activity, so an unattended inbox is logged out like any other page)."""
    add(tmp_path, "anna", "administrator")
    clock = Clock()
    async with console_client(tmp_path, clock) as client:
        await login(client, "anna")
        token = await csrf_of(client, "/admin/officers")
        stream = await client.get("/events")
        assert b"retry: 2000\n\n" == await stream.content.readuntil(b"\n\n")
        assert b"event: arrival" in await _arrival_or_end(stream, client.server.app)
        if how == "disabled":
            OfficerStore.in_state_dir(tmp_path).disable("anna")
        elif how == "idle":
            clock.advance(minutes=15, seconds=1)
        else:
            out = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
            assert 303 == out.status
        assert b"" == await _arrival_or_end(stream, client.server.app)
        assert not client.server.app[EVENTS].queues


async def test_password_checks_run_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2id costs a fifth of a second by design: run on the node's event loop, a stream of
    login attempts would stall ingest and every other officer's page. The check (password and
    TOTP) runs in a worker thread instead."""
    add(tmp_path, "anna", "reader")
    threads: list[int] = []
    verify = OfficerStore.verify_password

    def spy(self: OfficerStore, name: str, password: str) -> Any:
        threads.append(threading.get_ident())
        return verify(self, name, password)

    monkeypatch.setattr(OfficerStore, "verify_password", spy)
    async with console_client(tmp_path, Clock()) as client:
        assert 401 == (await login(client, "anna", "wrong password, twelve+")).status
        assert 303 == (await login(client, "anna")).status
    assert 2 == len(threads)
    assert threading.get_ident() not in threads


async def test_a_burst_of_concurrent_logins_gets_no_more_tries_than_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten wrong passwords sent at once (the check awaits a worker thread, so they overlap):
    five are checked, the rest get 429 unchecked; the right password works once the window
    passes."""
    add(tmp_path, "anna", "reader")
    checked: list[str] = []
    verify = OfficerStore.verify_password

    def spy(self: OfficerStore, name: str, password: str) -> Any:
        checked.append(name)
        return verify(self, name, password)

    monkeypatch.setattr(OfficerStore, "verify_password", spy)
    clock = Clock()
    async with console_client(tmp_path, clock) as client:
        token = await csrf_of(client)
        form = {"csrf_token": token, "name": "anna", "password": "wrong password, twelve+"}
        tries = [client.post("/login", data=form, allow_redirects=False) for _ in range(10)]
        statuses = sorted(r.status for r in await asyncio.gather(*tries))
        assert [401] * 5 + [429] * 5 == statuses
        assert 5 == len(checked)
        clock.advance(minutes=15)
        assert 303 == (await login(client, "anna")).status


def test_a_success_takes_back_the_try_counted_for_it() -> None:
    """Counted before the check, a try that succeeds is forgiven: an officer who logs in
    often does not use up the address's budget."""
    clock = Clock()
    limiter = LoginLimiter(2, timedelta(minutes=15), clock)
    limiter.failed(["client:a"])
    limiter.failed(["client:a"])
    assert limiter.retry_after(["client:a"]) is not None
    limiter.forgive("client:a")
    assert limiter.retry_after(["client:a"]) is None
    limiter.forgive("client:a")
    limiter.forgive("client:a")  # nothing left to forgive: no error
    assert limiter.retry_after(["client:a"]) is None


async def test_a_page_refreshing_itself_does_not_keep_the_session_alive(tmp_path: Path) -> None:
    """The inbox's own refresh on a live arrival (X-Palermo-Live) is served while the session
    lives but does not reset the idle timeout: 15 minutes after the officer's last own
    request, the console is logged out however many reports arrived."""
    add(tmp_path, "anna", "administrator")
    clock = Clock()
    live = {"X-Palermo-Live": "1"}
    async with console_client(tmp_path, clock) as client:
        await login(client, "anna")
        clock.advance(minutes=10)
        refreshed = await client.get("/admin/officers", headers=live, allow_redirects=False)
        assert 200 == refreshed.status
        clock.advance(minutes=5, seconds=1)
        gone = await client.get("/admin/officers", headers=live, allow_redirects=False)
        assert (303, "/login") == (gone.status, gone.headers["Location"])
        assert 303 == (await client.get("/admin/officers", allow_redirects=False)).status


async def test_one_officer_cannot_hold_every_live_stream(tmp_path: Path) -> None:
    """Past a few tabs' worth of /events streams, one officer gets 429 (saying why); another
    officer still gets a stream, and a closed stream frees its place."""
    add(tmp_path, "anna", "reader")
    add(tmp_path, "bert", "reader")
    async with (
        console_client(tmp_path, Clock()) as anna,
        console_client(tmp_path, Clock()) as bert,
    ):
        await login(anna, "anna")
        streams = [await anna.get("/events") for _ in range(MAX_STREAMS_PER_OFFICER)]
        assert {200} == {s.status for s in streams}
        refused = await anna.get("/events")
        assert 429 == refused.status
        assert "live inbox pages" in await refused.text()
        await login(bert, "bert")
        other = await bert.get("/events")
        assert 200 == other.status
        other.close()
        streams.pop().close()
        for _ in range(200):  # the server notices the closed stream at a write (an event)
            anna.server.app[EVENTS].stored(SimpleNamespace(id="x", priority="routine"), None)
            if anna.server.app[EVENTS].per_officer["anna"] < MAX_STREAMS_PER_OFFICER:
                break
            await asyncio.sleep(0.05)
        again = await anna.get("/events")
        assert 200 == again.status
        for s in [*streams, again]:
            s.close()


@pytest.mark.parametrize("role", ["release-authority", "administrator"])
async def test_an_administrator_cannot_mint_a_release_authority_or_administrator(
    tmp_path: Path, role: str
) -> None:
    """Decision 0026: administrators do not release. Adding an account with release (or
    administrator) power and a password of their choosing would undo that, from any stolen
    administrator session too: the page refuses with the host command that does it."""
    add(tmp_path, "anna", "administrator")
    async with console_client(tmp_path, Clock()) as client:
        await login(client, "anna")
        page = await client.get("/admin/officers")
        assert f'value="{role}"' not in await page.text()
        token = await csrf_of(client, "/admin/officers")
        form = {"csrf_token": token, "name": "mallory", "role": ["officer", role],
                "password": PASSWORD}  # fmt: skip
        refused = await client.post("/admin/officers", data=form)
        assert 403 == refused.status
        assert f"palermo officer add mallory --role {role}" in await refused.text()
    assert OfficerStore.in_state_dir(tmp_path).get("mallory") is None


@pytest.mark.parametrize("reset", ["password", "totp"])
async def test_a_new_password_or_second_factor_ends_the_sessions_logged_in_before(
    tmp_path: Path, reset: str
) -> None:
    """``palermo officer password`` (or ``totp``) on the host, the answer to a stolen
    password: the intruder's live session ends at its next request, and its live stream at
    its next event, instead of lasting until it idles out. A login afterwards works."""
    add(tmp_path, "anna", "administrator")
    store = OfficerStore.in_state_dir(tmp_path)
    async with console_client(tmp_path, Clock()) as intruder:
        await login(intruder, "anna")
        assert 200 == (await intruder.get("/admin/officers", allow_redirects=False)).status
        stream = await intruder.get("/events")
        assert b"retry: 2000\n\n" == await stream.content.readuntil(b"\n\n")
        if reset == "password":
            store.set_password("anna", "a brand new passphrase")
        else:
            store.enrol_totp("anna")
        assert b"" == await _arrival_or_end(stream, intruder.server.app)
        gone = await intruder.get("/admin/officers", allow_redirects=False)
        assert (303, "/login") == (gone.status, gone.headers["Location"])
    if reset == "password":
        async with console_client(tmp_path, Clock()) as owner:
            assert 303 == (await login(owner, "anna", "a brand new passphrase")).status
            assert 200 == (await owner.get("/admin/officers", allow_redirects=False)).status
