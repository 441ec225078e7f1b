"""A console app over a fresh state dir with a settable clock, and a logged-in client: what
the console's aiohttp tests share (no node behind it: the accounts pages need none)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.config import NodeSettings
from node.console import build_console_app
from node.console.officers import OfficerStore, Role

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    """The console's time, moved by tests (never a sleep)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 5, 1, 12, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def settings(state: Path, **overrides: Any) -> NodeSettings:
    # Key paths are never read: the console needs the agency and the state dir only.
    values: dict[str, Any] = {"dev": True, "console_listen": "127.0.0.1:0", **overrides}
    return NodeSettings(
        agency="AT-BMI",
        root_key=state / "root.pub.json",
        signing_key=state / "node.key",
        encryption_keys=[state / "enc.key"],
        state_dir=state,
        **values,
    )


def add(state: Path, name: str, *roles: Role, totp: bool = False) -> None:
    OfficerStore.in_state_dir(state).add(name, roles, PASSWORD, totp=totp)


@asynccontextmanager
async def console_client(
    state: Path,
    clock: Clock,
    *,
    totp_required: frozenset[Role] = frozenset(),
    extra: dict[str, Any] | None = None,
    app_hook: Any = None,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = build_console_app(
        None,
        settings(state, **(extra or {})),
        clock=clock,
        totp_required=lambda: totp_required,
    )
    if app_hook is not None:
        app_hook(app)
    async with TestClient(TestServer(app)) as client:
        yield client


async def csrf_of(client: TestClient[Any, Any], path: str = "/login") -> str:
    response = await client.get(path)
    match = _CSRF.search(await response.text())
    assert match is not None, f"no CSRF token in {path}"
    return match.group(1)


async def login(
    client: TestClient[Any, Any], name: str, password: str = PASSWORD, code: str = ""
) -> Any:
    token = await csrf_of(client)
    return await client.post(
        "/login",
        data={"csrf_token": token, "name": name, "password": password, "code": code},
        allow_redirects=False,
    )
