"""test_envelope_tampering.py again with suite-2 (hybrid) keys: every header field, tampered,
is refused under suite 2 exactly as under suite 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.envelope import decode
from tests.envelope._factories import use_suite
from tests.envelope._rerun import rerun_under_suite_2

globals().update(
    rerun_under_suite_2(
        Path(__file__).with_name("test_envelope_tampering.py"),
        "tests.adversarial._tampering_as_suite2",
        (),
    )
)


@pytest.fixture(autouse=True, scope="module")
def _suite_2() -> Iterator[int]:
    with use_suite(2) as suite:
        yield suite


def test_the_rerun_envelopes_are_suite_2() -> None:
    """The module's envelopes really are sealed with suite 2 (hybrid stanzas of 1,168 bytes)."""
    env = decode(rerun_module.DATA)  # type: ignore[name-defined]  # noqa: F821
    assert 2 == env.suite
    assert {1168} == {len(s.enc) for s in env.rcpt}
