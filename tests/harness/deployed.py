"""Start what ``palermo deploy render`` wrote: real nats-server processes on its configs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from deploy.render import RenderOptions, ServerPorts, render
from palermo.natsserver import LOOPBACK, NatsServer, _get_async, free_port
from schemas.errors import ConfigError

__all__ = ["RenderedServer", "free_ports", "render_on_free_ports", "wait_cluster"]


class RenderedServer(NatsServer):
    """A nats-server running a rendered config file as it is (fixed ports, TLS, accounts)."""

    def __init__(self, config: Path, *, jetstream: bool = True) -> None:
        super().__init__(config.parent.parent / "logs", name=config.stem, jetstream=jetstream)
        self.rendered = config

    def config_text(self) -> str:
        return self.rendered.read_text()


def free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def render_on_free_ports(out: Path, leaves: tuple[str, ...] = (), **options: Any) -> dict[str, Any]:
    """Render the example federation with every port a free one on loopback."""
    from palermo.devfed import EXAMPLES

    ports = free_ports(12 + 2 * len(leaves))
    hub = [ServerPorts(*ports[i * 4 : i * 4 + 4]) for i in range(3)]
    leaf = {
        a: ServerPorts(client=ports[12 + 2 * i], http=ports[13 + 2 * i])
        for i, a in enumerate(leaves)
    }
    return render(
        RenderOptions(
            federation=options.pop("federation", EXAMPLES / "federation.toml"),
            out=out,
            host=LOOPBACK,
            hub=hub,
            leaves=leaf,
            broker_http_port=0,
            node_ingest_port=0,
            node_console_port=0,  # the officer console: a free port too
            **options,
        )
    )


async def wait_cluster(servers: list[RenderedServer], size: int = 3, within: float = 30) -> str:
    """Until every running server names the same JetStream meta leader; returns it."""
    deadline = time.monotonic() + within
    while True:
        running = [s for s in servers if s.running]
        jsz = await asyncio.gather(*(_get_async(s.monitor_url + "/jsz") for s in running))
        metas = [(data or {}).get("meta_cluster") or {} for _, data in jsz]
        leaders = {m.get("leader") or "" for m in metas}
        if running and len(leaders) == 1 and "" not in leaders:
            health = await asyncio.gather(
                *(_get_async(s.monitor_url + "/healthz") for s in running)
            )
            if all(status == 200 for status, _ in health):
                return leaders.pop()
        if time.monotonic() >= deadline:
            raise ConfigError(f"rendered cluster not ready within {within}s: {metas}")
        await asyncio.sleep(0.05)
