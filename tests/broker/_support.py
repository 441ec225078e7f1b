"""Helpers for broker tests: a dev federation in a real server's directory, envelopes, readers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig

from broker.streams import StreamLimits, ensure_streams
from palermo.devfed import DevFederation
from protocol.directory import Directory
from protocol.envelope import seal
from protocol.transport import publish_subject
from schemas import EnvelopeHeader, Handling, new_uuid7

MED = ["ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM"]


async def setup_federation(url: str, fed: DevFederation) -> None:
    """Streams plus every signed document of the federation in the directory."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js, StreamLimits())
    directory = Directory(js, fed.trust_store(), fed.policy_store())
    for doc in fed.documents():
        await directory.publish(doc)
    await nc.close()


def envelope(
    fed: DevFederation,
    originator: str = "ITA-GDF",
    recipients: Sequence[str] = ("MLT-AFM", "GRC-HCG", "ESP-GC", "LBY-DCIM", "AUS-ABF"),
    *,
    tlp: str = "AMBER",
    rel_to: Sequence[str] = ("group:med-coastal",),
    body: bytes = b"x" * 2048,
    route: str = "central-med",
    created: datetime | None = None,
) -> tuple[EnvelopeHeader, bytes]:
    """A sealed envelope, created now unless ``created`` says when (tests that verify at a fixed
    time must seal at it too: a long suite run moves the wall clock on)."""
    agency = fed.agencies[originator]
    header = EnvelopeHeader(
        id=new_uuid7(),
        originator=originator,
        kid=agency.signing.kid,
        created=created or datetime.now(UTC),
        kind="report",
        route=route,
        category="routes",
        handling=Handling(tlp=tlp, rel_to=list(rel_to)),
        recipients=list(recipients),
    )
    keys = [fed.agencies[r].encryption.public for r in header.recipients]
    return header, seal(header, body, agency.signing, keys)


async def publish(nc: Client, items: Sequence[tuple[EnvelopeHeader, bytes]]) -> None:
    js = nc.jetstream()
    futures = [
        await js.publish_async(publish_subject(h), data, headers={"Nats-Msg-Id": h.id})
        for h, data in items
    ]
    await asyncio.gather(*futures)


async def stream_messages(nc: Client, stream: str) -> list[Any]:
    """Every message now in a stream, in order (by direct get; fine for test sizes)."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            out.append(await js.get_msg(stream, seq))
        except nats.js.errors.NotFoundError:
            continue
    return out


async def wait_for(predicate: Any, within: float = 30.0, every: float = 0.05) -> None:
    """Poll an async predicate until true, or fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


async def stream_count(nc: Client, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.messages)


def write_broker_config(tmp: Path, fed: DevFederation, url: str, **overrides: Any) -> Path:
    """Keys on disk and a broker.toml pointing at them, for a broker subprocess."""
    return fed.broker_config(tmp, url, **overrides)


def start_broker_process(
    config: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``palermo broker run`` as a real process, its log in a file (``env``: extra variables)."""
    palermo = Path(sys.executable).parent / "palermo"
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(palermo), "broker", "run", "--config", str(config)],
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def standing_policy_denying(fed: DevFederation, originator: str, target: str) -> dict[str, Any]:
    """``originator``'s standing policy one version up with a ``deny target`` rule added,
    signed by its key: what an agency publishes when it stops trusting a partner."""
    from policies import AgencyPolicy, DenyRule
    from protocol.trust import sign_document

    agency = fed.agencies[originator]
    held = AgencyPolicy.model_validate(agency.policy["document"]) if agency.policy else None
    policy = AgencyPolicy(
        agency=originator,
        version=held.version + 1 if held else 1,
        issued=datetime.now(UTC),
        rules=[
            *(held.rules if held else []),
            DenyRule(rule="deny", targets=[target], note="partner no longer trusted"),
        ],
    )
    return sign_document(policy, agency.signing, originator)


async def publish_document(url: str, fed: DevFederation, signed: dict[str, Any]) -> None:
    """Put one signed document in the live directory, as 'palermo directory publish' does."""
    nc = await nats.connect(url)
    try:
        directory = Directory(nc.jetstream(), fed.trust_store(), fed.policy_store())
        await directory.publish(signed)
    finally:
        await nc.close()


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


async def read_all(nc: Client, stream: str, subject: str = ">") -> list[Any]:
    """Every message of a stream (on ``subject``) through an ephemeral pull consumer."""
    js = nc.jetstream()
    # No acks: an unacked backlog would stop the fetches at max_ack_pending.
    sub = await js.pull_subscribe(
        subject, stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
    )
    out: list[Any] = []
    try:
        total = int((await sub.consumer_info()).num_pending)
        while len(out) < total:
            out.extend(await sub.fetch(min(1000, total - len(out)), timeout=5))
    finally:
        await sub.unsubscribe()
    return out
