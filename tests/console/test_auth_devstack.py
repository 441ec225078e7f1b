"""``palermo dev up`` starts every node's console with one officer per role and prints each
URL with the logins; the logins work against the live nodes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from palermo.devstack import run_dev

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LINE = re.compile(r"^  (\S+)\s+(http://127\.0\.0\.1:\d+/)  password: (\S+)$")


async def _login(http: aiohttp.ClientSession, url: str, name: str, password: str) -> int:
    page = await (await http.get(f"{url}login")).text()
    match = _CSRF.search(page)
    assert match is not None
    form = {"csrf_token": match.group(1), "name": name, "password": password}
    async with http.post(f"{url}login", data=form, allow_redirects=False) as response:
        return response.status


async def test_dev_up_prints_each_console_with_logins_that_work(tmp_path: Path) -> None:
    """Every node's console URL is printed with its password; on ITA-GDF the admin reaches
    the officer accounts (four, one per role) and the reader is refused them (403)."""
    lines: list[str] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    dev = asyncio.create_task(run_dev(tmp_path / "st", ready, lines.append, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 180)
        consoles = {m[1]: (m[2], m[3]) for m in map(_LINE.match, lines) if m}
        nodes = sorted(p.name.removesuffix(".node.toml")
                       for p in (tmp_path / "st" / "fed").glob("*.node.toml"))  # fmt: skip
        assert nodes == sorted(consoles)
        url, password = consoles["ITA-GDF"]
        # unsafe=True: keep cookies of an IP-address host (127.0.0.1).
        jar = aiohttp.CookieJar
        async with (
            aiohttp.ClientSession(cookie_jar=jar(unsafe=True)) as admin,
            aiohttp.ClientSession(cookie_jar=jar(unsafe=True)) as reader,
        ):
            assert 303 == await _login(admin, url, "admin", password)
            page = await (await admin.get(f"{url}admin/officers")).text()
            for role in ("reader", "officer", "release-authority", "administrator"):
                assert f"<td>{role}</td>" in page
            assert 303 == await _login(reader, url, "reader", password)
            assert 403 == (await reader.get(f"{url}admin/officers")).status
            assert 401 == await _login(reader, url, "admin", consoles["MLT-AFM"][1])
    finally:
        stop.set()
        await asyncio.wait_for(dev, 60)
