"""The node's ingest listener: ``POST /v1/reports``, authenticated, on its own socket.

Ingest makes the agency sign and publish in its own name, so it is never served beside the
unauthenticated ``/healthz`` and ``/metrics`` (:mod:`protocol.ops`): it listens on loopback or a
Unix socket by default, and every request must carry the bearer token from a 0600 file, or
come over mutual TLS with a client certificate from the configured CA, or both
(docs/decisions/0016-authenticated-ingest.md). A refusal is a 401 whose body is the same
whatever was wrong, and a log line with the peer address (never the token).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import socket
import ssl
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from protocol.keys import shared_access
from schemas.errors import ConfigError, Unauthenticated

from .config import NodeSettings

__all__ = [
    "INGEST_PATH",
    "MIN_TOKEN_CHARS",
    "IngestServer",
    "IngestToken",
    "generate_token",
    "write_token_file",
]

INGEST_PATH: Final[str] = "/v1/reports"
MIN_TOKEN_CHARS: Final[int] = 32
"""A shorter token could be guessed; ``generate_token`` gives 43 (256 random bits)."""
MAX_TOKEN_FILE_BYTES: Final[int] = 4096
MAX_BODY: Final[int] = 1024 * 1024
"""The largest request body read (the envelope limit: a bigger report cannot be sealed)."""
_SCHEME: Final[str] = "bearer "
_REFUSAL: Final[str] = (
    "send the node's ingest token as 'Authorization: Bearer <token>' (the file named by "
    "ingest_token_file in node.toml)"
)

_log = structlog.get_logger("palermo.node.ingest")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def generate_token() -> str:
    """A fresh token: 256 random bits, URL-safe (fits an HTTP header as is)."""
    return secrets.token_urlsafe(32)


def write_token_file(path: Path) -> None:
    """A fresh token in ``path``, readable by its owner only (0600, even if it existed)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        f.write(generate_token() + "\n")


class IngestToken:
    """The shared secret callers present; only its SHA-256 digest is kept."""

    def __init__(self, token: str) -> None:
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(
                f"the ingest token is {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
                "random ones (palermo deploy render writes one)"
            )
        self._digest = hashlib.sha256(token.encode()).digest()

    def __repr__(self) -> str:
        return "IngestToken(<redacted>)"

    @classmethod
    def load(cls, path: Path) -> IngestToken:
        """Read the token file, refusing one that group or others can read (as key files)."""
        try:
            info = path.stat()
        except OSError as exc:
            raise ConfigError(f"cannot read ingest_token_file {path}: {exc.strerror}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"ingest_token_file {path} is not a regular file")
        if (loose := shared_access(path, info.st_mode)) is not None:
            raise ConfigError(f"ingest_token_file {loose}")
        if info.st_size > MAX_TOKEN_FILE_BYTES:
            raise ConfigError(f"ingest_token_file {path} is {info.st_size} bytes; a token is ~43")
        try:
            return cls(path.read_text().strip())
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read ingest_token_file {path}: {exc}") from exc

    def accepts(self, authorization: str | None) -> bool:
        """Whether the ``Authorization`` header carries the token.

        A missing header, another scheme and a wrong token take the same path: the digest of
        what was sent (empty if nothing) against the digest held, in constant time, so neither
        the answer nor its timing tells a caller how close it came.
        """
        value = authorization or ""
        presented = value[len(_SCHEME) :] if value[: len(_SCHEME)].lower() == _SCHEME else ""
        digest = hashlib.sha256(presented.strip().encode()).digest()
        return hmac.compare_digest(digest, self._digest)


def _peer(request: web.Request) -> str:
    """Who called: ``host:port`` over TCP, ``unix`` (and the peer's uid if known) on a socket."""
    transport = request.transport
    name = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family == socket.AF_UNIX and hasattr(socket, "SO_PEERCRED"):
        with contextlib.suppress(OSError):
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            return f"unix:uid={int.from_bytes(creds[4:8], 'little')}"
    return "unix"


def _client_subject(request: web.Request) -> str | None:
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    return ",".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)


class IngestServer:
    """``POST /v1/reports`` on TCP and/or a Unix socket, behind the token and/or mTLS."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        unix_socket: Path | None = None,
        socket_mode: int = 0o600,
        token: IngestToken | None = None,
        tls: ssl.SSLContext | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        if port is None and unix_socket is None:
            raise ConfigError("ingest needs ingest_port or ingest_socket")
        self.host, self.port = host, port
        self.unix_socket, self.socket_mode = unix_socket, socket_mode
        self.token, self.tls, self.max_body = token, tls, max_body
        self._refused: Counter | None = None
        self._runner: web.AppRunner | None = None

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> IngestServer:
        """The listener a node.toml describes, checked (:meth:`NodeSettings.check_ingest`),
        its token and TLS files read: call before connecting, so a bad one fails fast."""
        settings.check_ingest()
        token = IngestToken.load(settings.ingest_token_file) if settings.ingest_token_file else None
        return cls(
            host=settings.ingest_host,
            port=settings.ingest_port,
            unix_socket=settings.ingest_socket,
            socket_mode=settings.ingest_socket_mode,
            token=token,
            tls=server_tls_context(settings) if settings.ingest_mtls else None,
        )

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Before the body is read: an unauthenticated caller costs us one hash, nothing more.
        peer = _peer(request)
        if self.token is not None and not self.token.accepts(request.headers.get("Authorization")):
            if self._refused is not None:
                self._refused.inc()
            _log.warning("ingest refused", peer=peer, path=request.path, why="no valid token")
            error = Unauthenticated(_REFUSAL)
            return web.json_response(
                error.to_dict(),
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="palermo-ingest"'},
            )
        response = await handler(request)
        _log.info("ingest request", peer=peer, client=_client_subject(request),
                  path=request.path, status=response.status)  # fmt: skip
        return response

    async def start(self, handler: Handler, registry: CollectorRegistry | None = None) -> list[str]:
        """Serve ``handler`` (:meth:`node.service.Node.http_ingest`) behind the checks; returns
        where it listens (``http(s)://host:port/v1/reports``, ``unix:PATH``). Refusals are
        counted in ``registry`` (the node's /metrics): a rising count is someone guessing."""
        if registry is not None:
            self._refused = Counter(
                "palermo_node_ingest_refused",
                "Ingest requests refused for a missing or wrong token",
                registry=registry,
            )
        app = web.Application(client_max_size=self.max_body, middlewares=[self._authenticate])
        app.router.add_post(INGEST_PATH, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        where: list[str] = []
        if self.port is not None:
            site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls)
            await site.start()
            sockets = getattr(site._server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1] if sockets else self.port
            scheme = "https" if self.tls else "http"
            host = f"[{self.host}]" if ":" in self.host else self.host
            where.append(f"{scheme}://{host}:{self.port}{INGEST_PATH}")
        if self.unix_socket is not None:
            sock = _bind_unix(self.unix_socket, self.socket_mode)
            await web.SockSite(self._runner, sock, ssl_context=self.tls).start()
            where.append(f"unix:{self.unix_socket}")
        return where

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            if self.unix_socket is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.unix_socket.unlink()


def _bind_unix(path: Path, mode: int) -> socket.socket:
    """A Unix socket at ``path`` with ``mode``, set before ``listen``: no moment exists when
    another user could connect. A stale socket left by a crash is replaced; any other file
    at that path is refused."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ConfigError(f"ingest_socket {path} exists and is not a socket; remove it")
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, mode)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on ingest_socket {path}: {exc.strerror}") from exc
    return sock


def server_tls_context(settings: NodeSettings) -> ssl.SSLContext:
    """mTLS for ingest: our certificate, and a client certificate from the configured CA
    required of every caller (the handshake fails without one, before any HTTP)."""
    cert, key, ca = settings.ingest_tls_cert, settings.ingest_tls_key, settings.ingest_tls_client_ca
    if cert is None or key is None or ca is None:
        raise ConfigError("ingest_tls_cert, ingest_tls_key and ingest_tls_client_ca go together")
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the ingest TLS files (ingest_tls_cert {cert}, ingest_tls_key {key}, "
            f"ingest_tls_client_ca {ca}): {exc}"
        ) from exc
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
