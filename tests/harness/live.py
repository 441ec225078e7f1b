"""The running side of the stateful test: a real nats-server, a broker and one node per agency,
all on one asyncio loop in a background thread (hypothesis state machines are synchronous).

Nothing here decides what is right; it starts, stops and reads the services, and waits on
conditions with deadlines (never a fixed sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final, TypeVar

import nats
import nats.errors

from broker.audit import ChainReport, verify_entries
from broker.service import CONSUMER, URGENT_CONSUMER, Broker, BrokerOptions
from node.inbox import InboxEntry
from node.service import Node
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.directory import BUCKET, Directory
from protocol.envelope import decode
from schemas import Report
from tests.harness.services import (
    broker_on,
    connect_node,
    follow_directory,
    setup_federation,
)
from tests.harness.streams import read_all, stream_messages

T = TypeVar("T")
WAIT_S: Final[float] = 45.0
"""How long a condition may take on a loaded 2-core machine before the test fails."""


class LoopThread:
    """An event loop running in a daemon thread; ``call`` runs a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="stateful-loop")
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 4 * WAIT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_leftovers() -> None:
            # nats-py leaves watchdog tasks (ordered consumers' activity checks) behind.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_leftovers(), timeout=WAIT_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


async def wait_until(what: str, predicate: Callable[[], Awaitable[bool]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {WAIT_S:g}s: {what}")
        await asyncio.sleep(0.02)


class Live:
    """One example's federation on a fresh nats-server in ``tmp``."""

    def __init__(self, tmp: Path, fed: DevFederation) -> None:
        self.tmp, self.fed = tmp, fed
        self.server = NatsServer(tmp / "nats", name="plm-stateful")
        self.nodes: dict[str, Node] = {}
        self.stored: Counter[tuple[str, str]] = Counter()
        """(envelope id, agency) -> how many times a node stored it (exactly once, or never)."""
        self._stack = AsyncExitStack()
        self._node_tasks: list[asyncio.Task[None]] = []
        self.broker: Broker | None = None
        self.broker_directory: Directory | None = None
        self._broker_task: asyncio.Task[None] | None = None
        self._broker_stack: AsyncExitStack | None = None
        self.broker_starts = 0

    @property
    def url(self) -> str:
        return self.server.client_url

    async def start(self) -> None:
        await self.server.start()
        await setup_federation(self.url, self.fed)
        self.nc = await self._stack.enter_async_context(_connection(self.url))
        self.js = self.nc.jetstream()
        # The operator's own view, for publishing root-signed documents (revocations).
        self.directory = Directory(self.js, self.fed.trust_store(), self.fed.policy_store())
        for agency in self.fed.agencies:
            node = await self._stack.enter_async_context(
                connect_node(self.url, self.fed, agency, self.tmp / "state")
            )
            node.on_stored.append(self._count(agency))
            self.nodes[agency] = node
            self._node_tasks.append(asyncio.create_task(node.run(), name=f"node-{agency}"))
        await self.start_broker()

    def _count(self, agency: str) -> Callable[[InboxEntry, Report], None]:
        def stored(entry: InboxEntry, _report: Report) -> None:
            self.stored[(entry.id, agency)] += 1

        return stored

    async def start_broker(self) -> None:
        """A broker as ``palermo broker run`` builds it: its own connection and live directory."""
        assert self.broker is None
        stack = AsyncExitStack()
        nc = await stack.enter_async_context(_connection(self.url))
        # Its own state directory, kept across restarts as a replica's volume is: the trust
        # high-water marks it persists there keep a restarted broker from adopting rollbacks.
        directory = await follow_directory(nc, self.fed, state_dir=self.tmp / "state" / "broker")
        stack.push_async_callback(directory.close)
        # A short ack_wait so a crashed broker's batch comes back within the test's deadlines.
        options = BrokerOptions(broker_id="BROKER-1", fetch_timeout_s=0.2, ack_wait_s=2.0,
                                nak_delay_s=0.2)  # fmt: skip
        self.broker = broker_on(nc, directory, self.fed, options)
        self.broker_directory = directory
        self._broker_task = asyncio.create_task(self.broker.run(), name="broker")
        self._broker_stack = stack
        self.broker_starts += 1

    async def stop_broker(self, *, crash: bool = False) -> None:
        """Stop gracefully, or crash: the broker's connection drops first, wherever it is in a
        batch, so nothing in hand is acknowledged and its audit chain ends where it stood.

        (Cancelling the task is no crash: nats-py turns some cancellations into errors that
        the broker's loop retries.)
        """
        assert self.broker is not None
        assert self._broker_task is not None
        if crash:
            await self.broker.nc.close()
        self.broker.stop()
        done, _ = await asyncio.wait({self._broker_task}, timeout=WAIT_S)
        assert done, f"the broker did not stop within {WAIT_S:g}s"
        assert self._broker_stack is not None
        stack, self._broker_stack = self._broker_stack, None
        self.broker = self._broker_task = self.broker_directory = None
        # After a crash the directory watcher cannot unsubscribe from a closed connection.
        with contextlib.suppress(*((nats.errors.ConnectionClosedError,) if crash else ())):
            await stack.aclose()

    def views(self) -> dict[str, Directory]:
        """Every live directory view that decides something: the running broker's and each
        node's (the operator's own view, ``directory``, only publishes)."""
        views = {f"node {a}": n.directory for a, n in self.nodes.items()}
        if self.broker_directory is not None:
            views["broker"] = self.broker_directory
        return views

    async def put_raw(self, key: str, signed: dict[str, Any]) -> None:
        """Write a document under ``key`` as a member with write access to the bucket would:
        straight into the key-value store, with no check of ours on the way."""
        kv = await self.js.key_value(BUCKET)
        await kv.put(key, json.dumps(signed, sort_keys=True).encode())

    async def restart_server(self, *, kill: bool = False) -> None:
        """Stop nats-server (SIGTERM, or SIGKILL as a crash would) and start it on the same port
        and store; wait until every client has reconnected."""
        if kill:
            await self.server.kill()
            await self.server.start()
        else:
            await self.server.restart()
        clients = [self.nc, *(n.nc for n in self.nodes.values())]
        if self.broker is not None:
            clients.append(self.broker.nc)

        async def reconnected() -> bool:
            return all(c.is_connected for c in clients)

        await wait_until("every client reconnects after the server restart", reconnected)

    async def close(self) -> None:
        if self.broker is not None:
            await self.stop_broker()
        for node in self.nodes.values():
            node.stop()
        await asyncio.gather(*self._node_tasks, return_exceptions=True)
        await self._stack.aclose()
        await self.server.stop()

    # --- reading the streams -----------------------------------------------------------------

    def _consumers(self) -> list[tuple[str, str]]:
        """The broker's and every node's consumers, both lanes of each (decision 0032)."""
        consumers = [("PLM_PUB", CONSUMER), ("PLM_PUB", URGENT_CONSUMER)]
        for a in self.nodes:
            consumers += [("PLM_DLV", f"node-{a}"), ("PLM_DLV", f"node-{a}-urgent")]
        return consumers

    async def quiet(self) -> bool:
        """The broker and every node have taken and settled everything there is."""
        try:
            for stream, name in self._consumers():
                info = await self.js.consumer_info(stream, name)
                if info.num_pending or info.num_ack_pending:
                    return False
        except (nats.errors.Error, TimeoutError):
            return False  # a consumer not created yet, or the server busy: not quiet yet
        return True

    async def diagnose(self, envelopes: set[str]) -> str:
        """For a failure message: consumers' state, and what the streams hold of ``envelopes``."""
        lines = []
        for stream, name in self._consumers():
            try:
                i = await self.js.consumer_info(stream, name)
                lines.append(f"{name}: pending {i.num_pending}, ack pending {i.num_ack_pending}, "
                             f"redelivered {i.num_redelivered}")  # fmt: skip
            except (nats.errors.Error, TimeoutError) as exc:
                lines.append(f"{name}: {exc!r}")
        for stream in ("PLM_PUB", "PLM_DLV", "PLM_DEAD"):
            for msg in await stream_messages(self.nc, stream):
                envelope = str(decode(msg.data).hdr["id"])
                if envelope in envelopes:
                    lines.append(f"{stream} {msg.subject} {dict(msg.headers or {})}")
        return "\n".join(lines)

    async def deliveries(self) -> tuple[Counter[tuple[str, str]], list[str], dict[str, bytes]]:
        """(envelope id, recipient) -> copies in PLM_DLV, read from the envelope and the
        subject; every copy whose Nats-Msg-Id (the broker's dedup key) is not
        ``<envelope>.<recipient>``; and the bytes of each delivered envelope."""
        copies: Counter[tuple[str, str]] = Counter()
        wrong: list[str] = []
        data: dict[str, bytes] = {}
        for msg in await read_all(self.nc, "PLM_DLV"):
            key = (str(decode(msg.data).hdr["id"]), msg.subject.split(".")[2])
            copies[key] += 1
            data[key[0]] = msg.data
            msg_id = (msg.headers or {}).get("Nats-Msg-Id")
            if msg_id != ".".join(key):
                wrong.append(f"{msg.subject} carries Nats-Msg-Id {msg_id!r}")
        return copies, wrong, data

    async def audit(self) -> tuple[list[ChainReport], set[tuple[str, str]]]:
        """Every chain verified, and every (envelope, recipient) the log says was allowed."""
        entries = [json.loads(m.data) for m in await read_all(self.nc, "PLM_AUDIT")]
        reports = verify_entries(entries, {self.fed.broker_key.kid: self.fed.broker_key.public.key})
        allowed = {
            (record["envelope"], decision["recipient"])
            for entry in entries
            if entry.get("type") == "decisions"
            for record in entry["records"]
            for decision in record.get("decisions", [])
            if decision["decision"] == "allow"
        }
        return reports, allowed


@contextlib.asynccontextmanager
async def _connection(url: str) -> Any:
    nc = await nats.connect(url, max_reconnect_attempts=-1, name="plm-stateful")
    try:
        yield nc
    finally:
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await nc.close()


__all__ = ["WAIT_S", "Live", "LoopThread", "wait_until"]
