"""``palermo dev up``: the whole example federation on an embedded nats-server, until Ctrl-C.

The broker and every agency's node run here, in one process, through the very code a
deployment runs (:func:`broker.runner.run_broker`, :func:`node.runner.run_node`) from the
``broker.toml`` and ``<AGENCY>.node.toml`` written under the state folder: the broker follows
the directory (a revocation reaches it within a second, as on a rendered deployment), holds
embargoed envelopes, and each node stores its deliveries and sends receipts.

The federation it creates (root, keys, documents, inboxes, JetStream state) is kept: ``dev up``
again resumes it, pointing the configs at the new server address. ``--fresh`` starts over.

Each node serves its officer console on a free loopback port (plain HTTP: dev only, so the
session cookie is not marked Secure; docs/console.md), with one officer per role: ``reader``,
``officer``, ``release`` (release authority) and ``admin`` (administrator), sharing a random
password per node kept in ``fed/<AGENCY>.officers.password`` (0600) and printed with the URLs.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import nats

from broker.config import BrokerSettings
from broker.runner import run_broker
from broker.streams import StreamLimits, ensure_directory_bucket, ensure_streams
from node.config import NodeSettings
from node.console.officers import OfficerStore, Role
from node.ingest import generate_token
from node.runner import run_node
from protocol.directory import Directory

from .devfed import DevFederation
from .natsserver import NatsServer

__all__ = ["BROKER_CONFIG", "run_dev"]

BROKER_CONFIG: Final[str] = "broker.toml"
DEV_OFFICERS: Final[tuple[tuple[str, Role], ...]] = (
    ("reader", "reader"),
    ("officer", "officer"),
    ("release", "release-authority"),
    ("admin", "administrator"),
)
EXAMPLE: Final[Path] = (
    Path(__file__).resolve().parent.parent
    / "schemas"
    / "examples"
    / "01-routes-central-med-departure.json"
)
# What a fresh start removes: everything the last federation left behind.
_STATE: Final[tuple[str, ...]] = ("fed", "nats", "broker-state", BROKER_CONFIG)


def _resumable(state_dir: Path) -> bool:
    """A federation 'dev up' made before, whole: its configs, keys and server state."""
    return (
        (state_dir / BROKER_CONFIG).is_file()
        and (state_dir / "fed" / "root.pub.json").is_file()
        and (state_dir / "nats").is_dir()
    )


def _wipe(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in _STATE:
        path = state_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _point_at(path: Path, url: str) -> None:
    """Rewrite a config's ``nats_url`` (the embedded server's port changes at each start)."""
    _set(path, nats_url=[url])


def _set(path: Path, **values: Any) -> None:
    settings: dict[str, Any] = tomllib.loads(path.read_text())
    settings.update(values)
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))


def _dev_officers(config: Path) -> str:
    """The node's console on a free loopback port and its four dev officers (one per role);
    returns their password (made once, kept beside the node's config, 0600)."""
    _set(config, console_listen="127.0.0.1:0")
    secret = config.with_name(config.name.removesuffix(".node.toml") + ".officers.password")
    if not secret.is_file():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_token()[:20] + "\n")
    password = secret.read_text().strip()
    store = OfficerStore.in_state_dir(NodeSettings.load(config).state_dir)
    missing = [(name, [role]) for name, role in DEV_OFFICERS if store.get(name) is None]
    if missing:
        store.add_many(missing, password)
    return password


async def _create(state_dir: Path, url: str) -> None:
    """A new example federation: keys and configs on disk, streams and directory in NATS."""
    fed = DevFederation.build(datetime.now(UTC))
    fed.broker_config(state_dir, url)  # also writes the keys and documents under fed/
    for agency in fed.agencies:
        fed.node_config(state_dir / "fed", agency, url)
    nc = await nats.connect(url, name="palermo-dev")
    try:
        js = nc.jetstream()
        await ensure_streams(js, StreamLimits())
        await ensure_directory_bucket(js)
        directory = Directory(js, fed.trust_store(), fed.policy_store())
        for doc in fed.documents():
            await directory.publish(doc)
    finally:
        await nc.close()


async def _first_done(tasks: list[asyncio.Task[Any]], event: asyncio.Event) -> None:
    """Wait for ``event``, or for any task to end first (a service that failed to start)."""
    waiter = asyncio.create_task(event.wait())
    try:
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


async def run_dev(
    state_dir: Path,
    ready: asyncio.Event | None = None,
    announce: Callable[[str], object] = lambda _: None,
    *,
    fresh: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the federation until SIGINT or SIGTERM (or ``stop``); ``ready`` once all is up."""
    resume = not fresh and _resumable(state_dir)
    if not resume:
        _wipe(state_dir)
    fed_dir = state_dir / "fed"
    stop = stop or asyncio.Event()
    async with NatsServer(state_dir / "nats") as server:
        url = server.client_url
        if resume:
            for path in [state_dir / BROKER_CONFIG, *sorted(fed_dir.glob("*.node.toml"))]:
                _point_at(path, url)
        else:
            await _create(state_dir, url)
        configs = {
            p.name.removesuffix(".node.toml"): p for p in sorted(fed_dir.glob("*.node.toml"))
        }
        # argon2id hashes for every officer, made once: not on the event loop.
        passwords = {a: await asyncio.to_thread(_dev_officers, p) for a, p in configs.items()}
        consoles: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks: list[asyncio.Task[Any]] = []
        try:
            broker_ready = asyncio.Event()
            settings = BrokerSettings.load(state_dir / BROKER_CONFIG)
            tasks.append(asyncio.create_task(run_broker(settings, ready=broker_ready, stop=stop)))
            await _first_done(tasks, broker_ready)
            nodes_ready = {a: asyncio.Event() for a in configs}
            for agency, path in configs.items():
                said = _prefixed(announce, agency, consoles)
                tasks.append(asyncio.create_task(run_node(NodeSettings.load(path), stop=stop,
                             ready=nodes_ready[agency], announce=said)))  # fmt: skip
            for event in nodes_ready.values():
                await _first_done(tasks, event)
            if any(t.done() for t in tasks):
                stop.set()  # one failed to start: stop the others, and raise its error below
            else:
                _announce(announce, state_dir, url, configs, resume, consoles, passwords)
                if ready is not None:
                    ready.set()
                await _first_done(tasks, stop)
        finally:
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        for result in results:
            if isinstance(result, BaseException):
                raise result


def _prefixed(
    announce: Callable[[str], object], agency: str, consoles: dict[str, str]
) -> Callable[[str], object]:
    """A node's lines (its ingest URL) under its agency's name; its console URL is kept for
    the summary with the logins."""

    def said(line: str) -> None:
        if line.startswith("console: "):
            consoles[agency] = line.removeprefix("console: ")
            return
        announce(f"{agency} {line}")

    return said


def _console_lines(consoles: dict[str, str], passwords: dict[str, str]) -> list[str]:
    """Each node's console URL with its logins (one officer per role, one password a node)."""
    names = ", ".join(f"{n} ({r})" for n, r in DEV_OFFICERS)
    width = max(map(len, consoles), default=0)
    return [
        f"Officer consoles (dev: plain HTTP on loopback). Logins on each: {names}:",
        *(f"  {a:<{width}}  {consoles[a]}  password: {passwords[a]}" for a in sorted(consoles)),
    ]


def _announce(
    announce: Callable[[str], object],
    state_dir: Path,
    url: str,
    configs: dict[str, Path],
    resume: bool,
    consoles: dict[str, str],
    passwords: dict[str, str],
) -> None:
    fed_dir = state_dir / "fed"
    ita, mlt = configs.get("ITA-GDF"), configs.get("MLT-AFM")
    how = "resumed (--fresh starts over)" if resume else "created"
    for line in (
        f"NATS: {url}  (JetStream state in {state_dir / 'nats'})",
        f"Federation {how}: keys and documents in {fed_dir}",
        f"Broker running ({state_dir / BROKER_CONFIG}), following the directory.",
        f"Nodes running: {', '.join(configs)} (configs: {fed_dir}/<AGENCY>.node.toml)",
        "Try, in another terminal:",
        f"  palermo publish {EXAMPLE} --config {ita}",
        f"  palermo inbox list --config {mlt}",
        "HTTP ingest: each node's URL is printed above; it needs the node's token:",
        f'  curl -H "Authorization: Bearer $(cat {fed_dir / "ITA-GDF.ingest.token"})"'
        f" --data @{EXAMPLE} URL",
        *_console_lines(consoles, passwords),
        "Ctrl-C stops everything.",
    ):
        announce(line)
