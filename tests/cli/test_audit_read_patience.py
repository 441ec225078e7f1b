"""`palermo audit …` keeps asking while a restarted server or a new stream leader is not ready."""

from __future__ import annotations

import asyncio

import nats.errors
import pytest

from broker.cli import _patiently


class _Flaky:
    """Times out ``failures`` times (as nats-py does while a leader is elected), then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise nats.errors.TimeoutError
        return "answer"


async def test_timeouts_before_the_deadline_are_retried() -> None:
    flaky = _Flaky(failures=2)
    deadline = asyncio.get_running_loop().time() + 10
    assert "answer" == await _patiently(flaky, deadline)
    assert 3 == flaky.calls


async def test_a_timeout_past_the_deadline_is_raised() -> None:
    flaky = _Flaky(failures=100)
    with pytest.raises(nats.errors.TimeoutError):
        await _patiently(flaky, asyncio.get_running_loop().time())
    assert 1 == flaky.calls


async def test_other_errors_are_not_retried() -> None:
    async def refused() -> str:
        raise nats.errors.NoServersError

    with pytest.raises(nats.errors.NoServersError):
        await _patiently(refused, asyncio.get_running_loop().time() + 10)
