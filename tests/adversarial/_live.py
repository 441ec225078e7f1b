"""Helpers for the adversarial tests that need a real nats-server: doctored envelopes of a dev
federation, and one server run per module whose results the named tests then inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol import crypto
from protocol.envelope import Envelope, decode, encode
from protocol.envelope._format import Stanza, signed_bytes
from protocol.envelope._seal import DOMAIN_SIGNATURE
from protocol.keys import SigningKey

T = TypeVar("T")


@dataclass(frozen=True)
class Case:
    """One hostile message: what is sent, where, and the refusal it must earn."""

    name: str
    data: bytes
    subject: str
    code: str
    fragment: str
    stage: str | None = None


def resign(env: Envelope, key: SigningKey) -> bytes:
    sig = crypto.sign(key.private, DOMAIN_SIGNATURE, signed_bytes(env))
    return encode(replace(env, sig=sig))


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def with_recipient(data: bytes, agency: str) -> bytes:
    """``agency`` added to hdr.recipients with a stanza copied from another recipient."""
    env = decode(data)
    hdr = {**env.hdr, "recipients": sorted([*env.hdr["recipients"], agency])}
    stanza = Stanza(agency, "0" * 16, env.rcpt[0].enc)
    rcpt = tuple(sorted([*env.rcpt, stanza], key=lambda s: (s.agency, s.kid)))
    return encode(replace(env, hdr=hdr, rcpt=rcpt))


def run_once(tmp: Path, scenario: Callable[[NatsServer], Awaitable[T]]) -> T:
    """Run ``scenario`` against a fresh nats-server in its own event loop (module fixtures)."""

    async def main() -> T:
        async with NatsServer(tmp / "nats", name="plm-adversarial") as server:
            return await scenario(server)

    return asyncio.run(main())


def by_data(messages: Sequence[Any]) -> dict[bytes, list[Any]]:
    out: dict[bytes, list[Any]] = {}
    for m in messages:
        out.setdefault(bytes(m.data), []).append(m)
    return out


__all__ = ["Case", "DevFederation", "by_data", "flip", "resign", "run_once", "with_recipient"]
