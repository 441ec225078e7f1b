"""Operations endpoints shared by the broker and the node: /healthz, /readyz, /metrics.

``/healthz`` answers from a real round trip to the NATS server (FastStream's
``make_ping_asgi``), not from a flag: a service whose connection is dead says so.

These endpoints are unauthenticated (probes and Prometheus scrape them), so nothing that acts
is served here: the node's ``POST /v1/reports`` has its own authenticated listener
(:mod:`node.ingest`, docs/decisions/0016-authenticated-ingest.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from aiohttp import web
from nats.aio.client import Client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["OpsServer"]

PING_TIMEOUT_S: Final[int] = 2
MAX_BODY: Final[int] = 4096


class OpsServer:
    def __init__(
        self,
        nc: Client,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        warnings: Callable[[], list[str]] | None = None,
    ) -> None:
        self.nc, self.registry, self.ready = nc, registry, ready
        # Conditions an operator must act on that do not stop the service (an overdue
        # revocation list): /readyz stays 200 and lists them (docs/decisions/0014).
        self.warnings = warnings or (lambda: [])
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def _healthz(self, _: web.Request) -> web.Response:
        try:
            await self.nc.flush(timeout=PING_TIMEOUT_S)
        except Exception as exc:
            return web.json_response({"status": "unhealthy", "nats": repr(exc)}, status=503)
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        warnings = self.warnings()
        extra = {"warnings": warnings} if warnings else {}
        if self.ready() and self.nc.is_connected:
            return web.json_response({"status": "ready", **extra})
        return web.json_response({"status": "not ready", **extra}, status=503)

    async def _metrics(self, _: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> int:
        """Listen; returns the bound port (0 in the config picks a free one)."""
        # Only GETs with no body here: a small request limit is plenty.
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
