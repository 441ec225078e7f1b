"""Logging set-up for the CLI and services. The library itself never configures logging.

A redaction processor runs before the renderer: any event key that looks like a secret or
plaintext (keys, passphrases, bodies, persons) is replaced, so a careless ``log.info(body=...)``
can never put intelligence or key material into a log file.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

__all__ = ["REDACTED", "configure_logging", "quiet_known_noise", "redact"]

REDACTED: Final[str] = "[redacted]"
_SENSITIVE: Final[tuple[str, ...]] = (
    "key",
    "secret",
    "passphrase",
    "password",
    "token",
    "body",
    "plaintext",
    "report",
    "persons",
    "narrative",
)
_ALLOWED: Final[frozenset[str]] = frozenset({"kid", "key_id", "broker_key_kid", "directory_key"})


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for name in list(event):
        lowered = name.lower()
        if name not in _ALLOWED and any(s in lowered for s in _SENSITIVE):
            event[name] = REDACTED
    return event


def configure_logging(*, json_output: bool = True, level: int = logging.INFO) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


# asyncio warns this whenever a TLS peer closes a nats-py connection; it is harmless (nats-py
# returns True from eof_received on every transport) and only alarms whoever reads stderr.
_NOISE: Final[tuple[str, ...]] = ("eof_received() has no effect when using ssl",)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in _NOISE)


def quiet_known_noise() -> None:
    """Drop asyncio's harmless TLS warning from the CLI's output (idempotent)."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _DropNoise) for f in logger.filters):
        logger.addFilter(_DropNoise())
