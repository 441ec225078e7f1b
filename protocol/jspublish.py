"""Pipelined JetStream publishing where every server answer resolves its future.

nats-py 2.16's ``publish_async`` raises JetStream API errors inside its reply callback instead
of setting them on the future (``APIError.from_error`` raises), so a refused publish — a full
stream, a wrong expected sequence — leaves the caller waiting forever. This publisher keeps the
same pipelining (one reply subscription, a future per message) and turns every answer into a
result or a typed :class:`PublishRejected`, with a deadline for answers that never come.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from nats.aio.client import Client
from nats.aio.msg import Msg

from .transport import PublishRejected, map_nats_errors

__all__ = ["PipelinedPublisher", "StoredAck"]

WRONG_LAST_SEQUENCE: Final[int] = 10071
_NO_RESPONDERS: Final[str] = "503"


@dataclass(frozen=True, slots=True)
class StoredAck:
    stream: str
    seq: int
    duplicate: bool


class PipelinedPublisher:
    """Publish to JetStream without waiting for each ack; await the futures in batches."""

    def __init__(self, nc: Client, *, timeout_s: float = 10.0) -> None:
        self.nc = nc
        self.timeout_s = timeout_s
        self._prefix = ""
        self._futures: dict[str, asyncio.Future[StoredAck]] = {}
        self._counter = 0

    async def start(self) -> None:
        if self._prefix:
            return
        self._prefix = f"{self.nc.new_inbox()}."
        with map_nats_errors("subscribe to publish acknowledgements"):
            await self.nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._futures.pop(msg.subject[len(self._prefix) :], None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            future.set_exception(
                PublishRejected("no JetStream stream listens on this subject", err_code=0)
            )
            return
        try:
            answer: Any = json.loads(msg.data)
        except json.JSONDecodeError:
            future.set_exception(PublishRejected("unreadable acknowledgement", err_code=0))
            return
        error = answer.get("error") if isinstance(answer, dict) else None
        if error:
            future.set_exception(
                PublishRejected(
                    f"JetStream refused the message: {error.get('description')}",
                    err_code=int(error.get("err_code") or 0),
                )
            )
            return
        future.set_result(
            StoredAck(
                str(answer.get("stream")), int(answer.get("seq", 0)), bool(answer.get("duplicate"))
            )
        )

    async def publish(
        self, subject: str, payload: bytes, headers: Mapping[str, str] | None = None
    ) -> asyncio.Future[StoredAck]:
        """Send now; the returned future resolves when the server has stored it (or refused)."""
        if not self._prefix:
            await self.start()
        self._counter += 1
        token = str(self._counter)
        future: asyncio.Future[StoredAck] = asyncio.get_running_loop().create_future()
        self._futures[token] = future
        with map_nats_errors(f"publish to {subject}"):
            await self.nc.publish(
                subject, payload, reply=self._prefix + token, headers=dict(headers or {})
            )
        return future

    async def settle(
        self, futures: list[asyncio.Future[StoredAck]]
    ) -> list[StoredAck | BaseException]:
        """Wait for every future, up to the deadline; late ones fail with TimeoutError."""
        if not futures:
            return []
        _, pending = await asyncio.wait(futures, timeout=self.timeout_s)
        for future in pending:
            future.cancel()
        out: list[StoredAck | BaseException] = []
        for future in futures:
            if future in pending:
                out.append(TimeoutError("no acknowledgement from JetStream in time"))
            elif future.exception() is not None:
                out.append(future.exception())  # type: ignore[arg-type]
            else:
                out.append(future.result())
        # Forget tokens of cancelled futures so the table cannot grow without bound.
        for token in [t for t, f in self._futures.items() if f.done()]:
            del self._futures[token]
        return out
