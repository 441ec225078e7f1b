"""Several ``nats-server`` processes started as one: a JetStream cluster (:class:`NatsCluster`)
and a hub with a leafnode (:class:`NatsLeafPair`). See :mod:`palermo.natsserver`."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from palermo._natsserver import (
    _PORT_ATTEMPTS,
    LOOPBACK,
    READY_TIMEOUT_S,
    NatsServer,
    _get_async,
    _merge,
    _PortInUse,
    free_port,
)
from schemas.errors import ConfigError


async def _stop_all(servers: list[NatsServer]) -> None:
    results = await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


# --- a JetStream cluster ------------------------------------------------------------------------


class NatsCluster:
    """``size`` servers in one JetStream cluster (R3 streams need three), on loopback.

    Kill or restart one through ``servers[i]``; :meth:`wait_ready` waits until the running
    servers agree on a meta leader again and report themselves current.
    """

    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        *,
        name: str = "plm-cluster",
        config: Mapping[str, Any] | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
    ) -> None:
        if size < 2:
            raise ConfigError(f"a JetStream cluster needs at least 2 servers, not {size}")
        self.base_dir = Path(base_dir)
        self.size = size
        self.name = name
        self.ready_timeout = ready_timeout
        self._config = dict(config or {})
        self.servers = self._make_servers()

    def _make_servers(self) -> list[NatsServer]:
        route_ports = [free_port() for _ in range(self.size)]
        # Every server lists every route, itself included (nats ignores a route to itself).
        routes = [f"nats-route://{LOOPBACK}:{p}" for p in route_ports]
        return [
            NatsServer(
                self.base_dir / f"n{i}",
                name=f"{self.name}-n{i}",
                ready_timeout=self.ready_timeout,
                config=_merge(
                    self._config,
                    {
                        "cluster": {
                            "name": self.name,
                            "listen": f"{LOOPBACK}:{port}",
                            "routes": routes,
                        }
                    },
                ),
            )
            for i, port in enumerate(route_ports)
        ]

    @property
    def client_urls(self) -> list[str]:
        return [s.client_url for s in self.servers]

    async def start(self) -> Self:
        """Start every server, then wait for a meta leader; retries if a route port was taken."""
        fresh = [s.store_dir for s in self.servers if not s.store_dir.exists()]
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            # Together: a JetStream cluster elects its meta leader only once a quorum is up.
            results = await asyncio.gather(
                *(s.start() for s in self.servers), return_exceptions=True
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if not errors:
                break
            await self.stop()
            if attempt == _PORT_ATTEMPTS or not all(isinstance(e, _PortInUse) for e in errors):
                raise errors[0]
            # A server that did start has written meta state naming its old peers; recovering
            # it costs an election timeout (~5-9 s). Stores this call created hold nothing else.
            for store in fresh:
                shutil.rmtree(store, ignore_errors=True)
            self.servers = self._make_servers()
        try:
            await self.wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    async def wait_ready(self, within: float | None = None) -> str:
        """Wait until every running server names the same meta leader, knows all ``size``
        peers, and answers ``/healthz`` (JetStream current); returns the leader's name."""
        within = self.ready_timeout if within is None else within
        deadline = time.monotonic() + within
        while True:
            running = [s for s in self.servers if s.running]
            jsz = await asyncio.gather(*(_get_async(s.monitor_url + "/jsz") for s in running))
            metas = [(data or {}).get("meta_cluster") or {} for _, data in jsz]
            leaders = {m.get("leader") or "" for m in metas}
            sizes = {m.get("cluster_size") for m in metas}
            if running and len(leaders) == 1 and "" not in leaders and sizes == {self.size}:
                health = await asyncio.gather(
                    *(_get_async(s.monitor_url + "/healthz") for s in running)
                )
                if all(status == 200 for status, _ in health):
                    return leaders.pop()
            if time.monotonic() >= deadline:
                seen = ", ".join(
                    f"{s.name}: leader={m.get('leader')!r}"
                    for s, m in zip(running, metas, strict=True)
                )
                raise ConfigError(
                    f"JetStream cluster {self.name} not ready within {within:g}s ({seen}); "
                    f"logs under {self.base_dir}"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop every server; idempotent."""
        await _stop_all(self.servers)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


# --- a hub with a leafnode ----------------------------------------------------------------------


class NatsLeafPair:
    """A hub server and a leaf server connected to it (an agency's own server on its premises).

    The hub has JetStream; the leaf has none unless ``leaf_config`` enables it (then give it its
    own JetStream ``domain``). Both share the global account unless the configs say otherwise.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        hub_config: Mapping[str, Any] | None = None,
        leaf_config: Mapping[str, Any] | None = None,
        ready_timeout: float = READY_TIMEOUT_S,
    ) -> None:
        self.ready_timeout = ready_timeout
        self.hub = NatsServer(
            Path(base_dir) / "hub",
            name="plm-hub",
            ready_timeout=ready_timeout,
            config=_merge({"leafnodes": {"listen": f"{LOOPBACK}:-1"}}, hub_config or {}),
        )
        self.leaf = NatsServer(
            Path(base_dir) / "leaf",
            name="plm-leaf",
            jetstream=False,
            ready_timeout=ready_timeout,
            config=leaf_config,
        )

    async def start(self) -> Self:
        """Start the hub, then the leaf pointed at it, and wait for the leaf connection."""
        try:
            await self.hub.start()
            port = self.hub.ports["leafnode"]
            # Pin the leafnode port too: a restarted hub must come back where the leaf points.
            self.hub.config = _merge(
                self.hub.config, {"leafnodes": {"listen": f"{LOOPBACK}:{port}"}}
            )
            self.leaf.config = _merge(
                self.leaf.config,
                {"leafnodes": {"remotes": [{"url": f"nats-leaf://{LOOPBACK}:{port}"}]}},
            )
            await self.leaf.start()
            await self.wait_connected()
        except BaseException:
            await self.stop()
            raise
        return self

    async def wait_connected(self, within: float | None = None) -> None:
        """Wait until both ends list the leaf connection in ``/leafz``."""
        within = self.ready_timeout if within is None else within
        deadline = time.monotonic() + within
        while True:
            seen = await asyncio.gather(
                _get_async(self.hub.monitor_url + "/leafz"),
                _get_async(self.leaf.monitor_url + "/leafz"),
            )
            if all((data or {}).get("leafnodes", 0) >= 1 for _, data in seen):
                return
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"leaf {self.leaf.name} did not connect to hub {self.hub.name} within "
                    f"{within:g}s; leaf log:\n{self.leaf.log_tail()}\n"
                    f"hub log:\n{self.hub.log_tail()}"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop both servers; idempotent."""
        await _stop_all([self.leaf, self.hub])

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
