"""A lean JetStream pull consumer: one pull request per fetch, its messages collected as they
arrive (issue 19, decision 0037).

nats-py's ``PullSubscription.fetch`` waits for every message of a batch with its own
``asyncio.wait_for`` (a new task, a timer and a uuid per message): at a few thousand envelopes a
second that was a tenth of the broker's event-loop time. Here a fetch is one ``$JS.API.CONSUMER.
MSG.NEXT`` request with ``no_wait`` and ``expires``, which the server answers with what is
available at once (up to the batch), or else with the first messages to arrive before it
expires; every message of it is handed to a plain subscription callback that appends it to the
request's list. Nothing is per message but that append.

One fetch at a time per consumer. Each request has its own reply subject (``<inbox>.<n>``),
which the server's end of it names (a ``404 No Messages`` or ``408 Request Timeout`` status), so
a late end of a request given up on never ends the next one; the batch being full ends it too.
A request is given up only after a reconnect (or a server that never ends it). A message that
arrives while no request is open (one given up on still delivers) is kept and handed out first
by the next fetch: it is older than anything a later request brings, so the stream's order is
kept, and it is never left to its ack wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Final

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = ["LeanPull"]

_log = structlog.get_logger("palermo.pull")

_NO_MESSAGES: Final[str] = "404"
_TIMEOUT: Final[str] = "408"
_HEARTBEAT: Final[str] = "100"
_GRACE_S: Final[float] = 1.0
_GIVE_UP_S: Final[float] = 30.0
"""A request is waited for until the server ends it (its 408 comes at ``expires``, whatever
this process's load), and given up only when the connection was re-established since it was
sent (the server forgets a request whose reply subject lost its interest) or, as a last resort,
this long after ``expires``. Giving up on a request still under way on a merely busy
connection would let its messages arrive beside the next request's, more than the batch in
hand at once."""


class _Request:
    __slots__ = ("batch", "done", "error", "msgs", "reply")

    def __init__(self, reply: str, batch: int, done: asyncio.Future[None]) -> None:
        self.reply = reply
        self.batch = batch
        self.msgs: list[Msg] = []
        self.done = done
        self.error: nats.errors.Error | None = None


class LeanPull:
    """Fetches from the durable pull consumer ``durable`` of ``stream`` (which must exist).

    Same contract as nats-py's ``PullSubscription.fetch``: a list of at least one message, or
    ``nats.errors.TimeoutError`` when none came before the request expired; a server error status (a
    consumer deleted, a leadership change) raises ``nats.js.errors.APIError``.
    """

    def __init__(self, nc: Client, stream: str, durable: str, api_prefix: str = "$JS.API") -> None:
        self._nc = nc
        # ``api_prefix``: ``$JS.<domain>.API`` for a node reaching its hub's JetStream domain
        # through a leafnode, as its JetStreamContext does.
        self._api = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._prefix = nc.new_inbox()
        self._sub: Subscription | None = None
        self._current: _Request | None = None
        self._strays: list[Msg] = []
        self._serial = 0

    async def start(self) -> LeanPull:
        self._sub = await self._nc.subscribe(f"{self._prefix}.*", cb=self._on_msg)
        return self

    async def unsubscribe(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        # A message of the stream comes with its own subject; only a status names the request
        # (its reply subject), so a late status of a request given up on ends nothing.
        status = msg.headers.get("Status") if msg.headers else None
        request = self._current
        if status is None:
            if request is None or len(request.msgs) >= request.batch:
                self._strays.append(msg)  # its request was given up: the next fetch takes it
                return
            request.msgs.append(msg)
            if len(request.msgs) >= request.batch and not request.done.done():
                request.done.set_result(None)
            return
        if request is None or msg.subject != request.reply or status == _HEARTBEAT:
            return
        if status not in (_NO_MESSAGES, _TIMEOUT):
            description = msg.headers.get("Description", "") if msg.headers else ""
            request.error = nats.js.errors.APIError(
                code=int(status) if status.isdigit() else None,
                description=f"pull request on {self._api}: {status} {description}".strip(),
            )
        if not request.done.done():
            request.done.set_result(None)

    async def _wait(self, request: _Request, expires_s: float, reconnects: int) -> None:
        """Until the request ends; given up (what it brought is returned, what comes later is a
        stray) only after a reconnect, or ``_GIVE_UP_S`` past its expiry."""
        waited = 0.0
        step = expires_s + _GRACE_S
        while not request.done.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(request.done), step)
            waited += step
            step = _GRACE_S
            if self._nc.stats["reconnects"] != reconnects or self._nc.is_closed:
                return
            if waited > expires_s + _GIVE_UP_S:
                _log.warning("pull request given up: the server never ended it",
                             subject=self._api, waited_s=round(waited, 1))  # fmt: skip
                return

    async def fetch(self, batch: int, expires_s: float) -> list[Msg]:
        """Up to ``batch`` messages: those available now, else the first to arrive within
        ``expires_s``."""
        if self._sub is None:
            raise nats.errors.BadSubscriptionError
        if self._strays:
            taken, self._strays = self._strays[:batch], self._strays[batch:]
            return taken
        if self._current is not None:
            raise RuntimeError("one fetch at a time per consumer")
        self._serial += 1
        request = _Request(
            f"{self._prefix}.{self._serial}", batch, asyncio.get_running_loop().create_future()
        )
        self._current = request
        try:
            payload = {"batch": batch, "expires": int(expires_s * 1e9), "no_wait": True}
            reconnects = self._nc.stats["reconnects"]
            await self._nc.publish(self._api, json.dumps(payload).encode(), reply=request.reply)
            await self._wait(request, expires_s, reconnects)
        finally:
            self._current = None
        if request.msgs:
            return request.msgs
        if request.error is not None:
            raise request.error
        raise nats.errors.TimeoutError
