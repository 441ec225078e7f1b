"""The NATS boundary: subjects, and mapping every nats-py exception to our TransportError.

Nothing outside this module should catch nats-py exceptions (httpx's ``map_httpcore_exceptions``):
callers see ``TransportError`` subclasses whose reason says what to check at 3 a.m.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client

from schemas import EnvelopeHeader, Priority
from schemas.errors import TransportError

__all__ = [
    "NatsUnavailable",
    "PublishRejected",
    "connect",
    "deliver_subject",
    "map_nats_errors",
    "publish_subject",
    "subject_originator",
]

SUBJECT_PREFIX_PUB: Final[str] = "plm.pub"
SUBJECT_PREFIX_DLV: Final[str] = "plm.dlv"
LANE_URGENT: Final[str] = "urgent"
"""The last token of every urgent-lane subject (protocol/lanes.py)."""


class NatsUnavailable(TransportError):
    code = "nats_unavailable"


class PublishRejected(TransportError):
    """The server refused a publish; ``err_code`` is JetStream's (e.g. 10071 wrong sequence)."""

    code = "publish_rejected"

    def __init__(self, reason: str, err_code: int = 0) -> None:
        super().__init__(reason)
        self.err_code = err_code


def _lane(header: EnvelopeHeader) -> tuple[str, ...]:
    # The signed priority picks the lane (protocol/lanes.py, decision 0032): a subject that
    # claims another lane is a subject mismatch, refused like any other.
    return (LANE_URGENT,) if header.priority is Priority.URGENT else ()


def publish_subject(header: EnvelopeHeader) -> str:
    """plm.pub.<originator>.<kind>.<route>.<category>, and ``.urgent`` for an urgent one."""
    return ".".join((SUBJECT_PREFIX_PUB, *header.subject_tokens(), *_lane(header)))


def deliver_subject(recipient: str, header: EnvelopeHeader) -> str:
    """plm.dlv.<recipient>.<originator>.<kind>.<route>.<category>[.urgent]"""
    return ".".join((SUBJECT_PREFIX_DLV, recipient, *header.subject_tokens(), *_lane(header)))


def subject_originator(subject: str, prefix_tokens: int = 2) -> str | None:
    """The originator a lane subject names (after ``prefix_tokens`` tokens: 2 for plm.pub,
    3 for plm.dlv.<recipient>), or None when it is not a lane subject at all."""
    tokens = subject.split(".")
    tail = tokens[prefix_tokens:]
    if len(tail) == 4 or (len(tail) == 5 and tail[4] == LANE_URGENT):
        return tail[0]
    return None


# JetStream's refusals of a publish because a stream or the server's storage is full:
# 10077 store failed (maximum bytes / messages exceeded), 10047 storage resources exceeded,
# 10023 insufficient resources.
STREAM_FULL: Final[frozenset[int]] = frozenset({10077, 10047, 10023})


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


@contextmanager
def map_nats_errors(action: str) -> Iterator[None]:
    """Turn any nats-py (or socket) failure during ``action`` into a TransportError."""
    try:
        yield
    except (nats.errors.NoServersError, ConnectionRefusedError, OSError) as exc:
        raise NatsUnavailable(
            f"{action}: cannot reach NATS ({_reason(exc)}); is nats-server running at the URL "
            "given with --nats?"
        ) from exc
    except (nats.errors.MaxPayloadError, nats.js.errors.BadRequestError) as exc:
        raise PublishRejected(f"{action}: the server refused it ({_reason(exc)})") from exc
    except nats.js.errors.APIError as exc:
        if exc.err_code in STREAM_FULL:
            raise PublishRejected(
                f"{action}: the JetStream stream for this subject is full ({exc.description}); "
                "nothing was stored: retry later, and ask the federation operator to raise the "
                "stream limits (broker StreamLimits) or free disk space on the NATS servers",
                exc.err_code or 0,
            ) from exc
        raise TransportError(f"{action}: {_reason(exc)}") from exc
    except nats.js.errors.NoStreamResponseError as exc:
        raise PublishRejected(
            f"{action}: no JetStream stream answered; are the Palermo streams created?"
        ) from exc
    except (TimeoutError, nats.errors.TimeoutError) as exc:
        raise TransportError(f"{action}: timed out waiting for NATS") from exc
    except nats.errors.Error as exc:
        raise TransportError(f"{action}: {_reason(exc)}") from exc


@asynccontextmanager
async def connect(url: str | list[str], name: str, **options: Any) -> AsyncIterator[Client]:
    """Connect with bounded retries, and always close (drain) on exit."""
    servers = [url] if isinstance(url, str) else url
    with map_nats_errors(f"connect to {', '.join(servers)}"):
        nc = await nats.connect(
            servers=servers,
            name=name,
            connect_timeout=options.pop("connect_timeout", 5),
            max_reconnect_attempts=options.pop("max_reconnect_attempts", 60),
            allow_reconnect=True,
            **options,
        )
    try:
        yield nc
    finally:
        if not nc.is_closed:
            with map_nats_errors("drain the connection"):
                await nc.drain()
