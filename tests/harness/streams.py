"""Reading and writing what a live stack holds: publishing envelopes, reading streams and
inboxes, waiting on a condition with a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from protocol.transport import deliver_subject, publish_subject
from schemas import EnvelopeHeader


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
        except (nats.js.errors.NotFoundError, nats.js.errors.BadRequestError):
            # Deleted (a work queue's acked message, a purge): nothing to list at that sequence.
            continue
    return out


async def stream_count(nc: Client, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.messages)


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


async def first_delivery(
    js: JetStreamContext, agency: str, header: EnvelopeHeader, data: bytes
) -> tuple[JetStreamContext.PullSubscription, Msg]:
    """``data`` written into PLM_DLV as ``header``'s copy for ``agency`` (as the broker would),
    and its first delivery through a consumer of its own (the test hands it to a node)."""
    subject = deliver_subject(agency, header)
    await js.publish(subject, data, headers={"Nats-Msg-Id": header.id})
    sub = await js.pull_subscribe(subject, durable=f"t-{header.id}", stream="PLM_DLV")
    [msg] = await sub.fetch(1, timeout=10)
    return sub, msg


async def receipts_about(
    nc: Client, agency: str, header: EnvelopeHeader
) -> list[tuple[str, str | None]]:
    """(status, code) of every receipt ``agency`` sent about ``header``'s envelope."""
    subject = f"plm.rcpt.{header.originator}.receipt.{agency}"
    documents = [json.loads(m.data)["document"] for m in await read_all(nc, "PLM_RCPT", subject)]
    return [(d["status"], d.get("code")) for d in documents if d["envelope"] == header.id]


def inbox_ids(db: Path) -> list[tuple[str, str]]:
    """(originator, id) of every stored report, in the order the inbox stored them."""
    con = sqlite3.connect(db)
    try:
        return [tuple(r) for r in con.execute("SELECT originator, id FROM reports ORDER BY rowid")]
    finally:
        con.close()


async def wait_for(predicate: Any, within: float = 30.0, every: float = 0.05) -> None:
    """Poll an async predicate until true, or fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET on a service's health or metrics port; (0, "") while it is not
    listening yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


__all__ = [
    "http_get",
    "inbox_ids",
    "publish",
    "read_all",
    "stream_count",
    "stream_messages",
    "wait_for",
]
