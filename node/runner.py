"""Run a node as a service: ``palermo node run``, and every node of ``palermo dev up``.

The same code in both, so the dev stack is the deployed one: the node follows the directory,
publishes its start-up documents, serves /healthz, /readyz and /metrics, ingest, the TAXII
server and the officer console if configured, and consumes its deliveries until SIGTERM or SIGINT
(or, under ``dev up``, until its ``stop`` event is set: there one process runs every node and the
broker, and owns the signals).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from protocol.commandline import read_json
from protocol.ops import OpsServer

from .config import NodeSettings
from .console import ConsoleServer, build_console_app
from .ingest import IngestServer
from .service import Node

if TYPE_CHECKING:
    from .interop.taxii import TaxiiServer

__all__ = ["run_node"]

_log = structlog.get_logger("palermo.node")


async def run_node(
    settings: NodeSettings,
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    announce: Callable[[str], object] = lambda _: None,
) -> dict[str, Any]:
    """Run until a signal (or ``stop``); returns the node's counters (:meth:`Node.status`).

    ``ready`` is set once every listener is up and the node is about to consume.
    """
    # POST /v1/reports on its own authenticated listener, only if configured; its settings,
    # token and TLS files are checked before anything connects.
    ingest = IngestServer.from_settings(settings) if settings.ingest_enabled else None
    settings.check_console()  # before connecting: a console without TLS fails fast
    async with Node.open(settings) as node:
        for path in settings.publish_on_start:
            key = await node.directory.publish(read_json(path))
            announce(f"published {key} from {path}")
        ops = OpsServer(
            node.nc,
            node.metrics.registry,
            lambda: True,
            settings.http_host,
            settings.http_port,
            warnings=node.trust.warnings,  # an overdue revocation list (decision 0014)
        )
        taxii = _taxii(settings, node)
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
        for sig in signals:
            loop.add_signal_handler(sig, node.stop)
        stopper = asyncio.create_task(_stop_on(stop, node)) if stop is not None else None
        console: ConsoleServer | None = None
        try:
            listening: list[str] = []
            if settings.console_listen is not None:
                # The officers' web interface, on its own listener (decision 0026).
                console = ConsoleServer(build_console_app(node, settings), settings)
                announce(f"console: {await console.start()}")
            if ingest is not None:
                listening = await ingest.start(node.http_ingest, node.metrics.registry)
                for where in listening:
                    announce(f"ingest: POST {where}")
            taxii_url = await taxii.start() if taxii is not None else None
            if taxii_url is not None:
                announce(f"taxii: {taxii_url}")
            # Last: once /readyz answers, every listener is up.
            http_port = await ops.start()

            def on_ready() -> None:
                # One line an operator can grep for: who, where, on which ports.
                _log.info("node ready", agency=node.identity.agency,
                          nats=_without_credentials(node.nc.connected_url),
                          http_port=http_port, ingest=listening or None,
                          taxii=taxii_url,
                          console=console.url if console else None)  # fmt: skip
                if ready is not None:
                    ready.set()

            await node.run(on_ready=on_ready)
        finally:
            if stopper is not None:
                stopper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopper
            for sig in signals:
                loop.remove_signal_handler(sig)
            if ingest is not None:
                await ingest.stop()
            if taxii is not None:
                await taxii.stop()
            if console is not None:
                await console.stop()
            await ops.stop()
        return node.status()


def _taxii(settings: NodeSettings, node: Node) -> TaxiiServer | None:
    """The read-only TAXII 2.1 server over the node's inbox, if ``taxii_port`` is set."""
    if not settings.taxii_enabled:
        return None
    # Imported here: stix2 is heavy, and a node without TAXII never needs it.
    from .interop.taxii import taxii_server
    from .interop.taxii_source import subscribed_routes

    agency = node.identity.agency
    return taxii_server(settings, node.inbox, agency, lambda: subscribed_routes(node.trust, agency))


def _without_credentials(url: Any) -> str | None:
    """The server URL the node connected to, without any user or password in it."""
    if url is None:
        return None
    host = f"[{url.hostname}]" if ":" in (url.hostname or "") else url.hostname
    return f"{url.scheme}://{host}:{url.port}" if url.port else f"{url.scheme}://{host}"


async def _stop_on(event: asyncio.Event, node: Node) -> None:
    await event.wait()
    node.stop()
