"""Every test of test_seal.py again with suite-2 keys: round trips, tampering, forgery, refusals.

Left out: the tests of suite 1's own construction (one shared X25519 ephemeral per part, the
RFC 9180 DHKEM rebuilt by hand), which suite 2 does not have; suite 2's own are in
test_suite2.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.envelope import decode
from tests.envelope._factories import use_suite
from tests.envelope._rerun import rerun_under_suite_2

SUITE_1_ONLY = (
    "test_fixed_randomness_gives_identical_envelopes",
    "test_envelope_opens_from_the_spec_with_cryptography_only",
    "test_one_ephemeral_per_part_and_a_fresh_one_per_envelope",
)

globals().update(
    rerun_under_suite_2(
        Path(__file__).with_name("test_seal.py"), "tests.envelope._seal_as_suite2", SUITE_1_ONLY
    )
)


@pytest.fixture(autouse=True, scope="module")
def _suite_2() -> Iterator[int]:
    with use_suite(2) as suite:
        yield suite


def test_the_rerun_envelopes_are_suite_2() -> None:
    """The module's envelopes really are sealed with suite 2 (hybrid stanzas of 1,168 bytes)."""
    env = decode(rerun_module.SEALED)  # type: ignore[name-defined]  # noqa: F821
    assert 2 == env.suite
    assert {1168} == {len(s.enc) for s in env.rcpt}
