"""The browser tests' live dev federation and their one Chromium, both per test session.

A real nats-server, the broker, and the nodes of ITA-GDF and MLT-AFM running on one asyncio
loop in a background thread (Selenium is synchronous), each node with its console on a random
loopback port and four officers (reader, officer, release authority, administrator). Starting
this costs seconds on the loaded CI machine, so every browser test shares it
(``xdist_group``: one worker runs them all); each test logs in as the officer it needs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from node.config import NodeSettings
from node.console import build_console_app
from node.console.app import ConsoleServer
from node.console.events import CSP_REPORTS
from node.console.officers import OfficerStore
from node.service import Node
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from schemas import Report
from tests.console._consoleapp import PASSWORD
from tests.console.browser import WAIT_S, Browser
from tests.harness import LoopThread, example, running_federation, setup_federation

T = TypeVar("T")
AGENCIES = ("ITA-GDF", "MLT-AFM")
OFFICERS: dict[str, tuple[str, ...]] = {
    "reader": ("reader",),
    "officer": ("officer",),
    "authority": ("release-authority",),
    "admin": ("administrator",),
}


@dataclass
class Console:
    agency: str
    node: Node
    app: web.Application
    url: str = ""

    @property
    def csp_reports(self) -> list[dict[str, Any]]:
        return list(self.app[CSP_REPORTS])


@dataclass
class ConsoleFederation:
    """The live stack: ``consoles[agency]`` and ``call`` to run a coroutine on its loop."""

    tmp: Path
    fed: DevFederation
    loop: LoopThread = field(default_factory=LoopThread)
    consoles: dict[str, Console] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.call(coro)

    async def start(self) -> None:
        server = await self._stack.enter_async_context(
            NatsServer(self.tmp / "nats", name="plm-console")
        )
        await setup_federation(server.client_url, self.fed)
        nodes = await self._stack.enter_async_context(
            running_federation(server.client_url, self.fed, AGENCIES, self.tmp / "state")
        )
        for agency, node in nodes.items():
            state = self.tmp / "state" / agency
            store = OfficerStore.in_state_dir(state)
            for name, roles in OFFICERS.items():
                store.add(name, roles, PASSWORD)  # type: ignore[arg-type]
            settings = NodeSettings(
                agency=agency,
                root_key=state / "root.pub.json",  # never read: the node is built already
                signing_key=state / "node.key",
                encryption_keys=[state / "enc.key"],
                state_dir=state,
                dev=True,
                console_listen="127.0.0.1:0",
            )
            app = build_console_app(node, settings)
            listener = ConsoleServer(app, settings)
            url = await listener.start()
            self._stack.push_async_callback(listener.stop)
            self.consoles[agency] = Console(agency, node, app, url.rstrip("/"))

    async def close(self) -> None:
        await self._stack.aclose()


def on(console: Console, host: str) -> str:
    return console.url.replace("127.0.0.1", host)


def wait(what: str, predicate: Any) -> Any:
    """Poll state the federation's thread changes (never a fixed sleep)."""
    deadline = time.monotonic() + WAIT_S
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S:g}s: {what}")
        time.sleep(0.05)
    return value


def as_ita(name: str) -> Report:
    """An example report as ITA-GDF's (the node publishes only its own agency's reports)."""
    return example(name).model_copy(update={"originator": "ITA-GDF"})


def held(console: Console) -> set[str]:
    return {e.id for e in console.node.inbox.entries()}


@pytest.fixture(scope="session")
def console_fed() -> Iterator[ConsoleFederation]:
    with tempfile.TemporaryDirectory(prefix="palermo-console-") as tmp:
        stack = ConsoleFederation(Path(tmp), DevFederation.build(datetime.now(UTC)))
        try:
            stack.call(stack.start())
            yield stack
        finally:
            stack.call(stack.close())
            stack.loop.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()
