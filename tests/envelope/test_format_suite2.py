"""test_format.py again with suite-2 keys: every structural refusal holds for hybrid stanzas.

Left out: the tests that name suite 1's own numbers (its 80-byte stanzas, the suite field's
value 1); suite 2's are in test_suite2.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.envelope import decode
from tests.envelope._factories import use_suite
from tests.envelope._rerun import rerun_under_suite_2

SUITE_1_ONLY = (
    "test_decoded_fields",
    "test_stanza_enc_wrong_length",
    "test_non_minimal_int_for_suite",
    "test_suite_2_envelope_with_suite_1_stanzas_is_malformed",
)

globals().update(
    rerun_under_suite_2(
        Path(__file__).with_name("test_format.py"), "tests.envelope._format_as_suite2", SUITE_1_ONLY
    )
)


@pytest.fixture(autouse=True, scope="module")
def _suite_2() -> Iterator[int]:
    with use_suite(2) as suite:
        yield suite


def test_the_rerun_envelopes_are_suite_2() -> None:
    env = decode(rerun_module.DATA)  # type: ignore[name-defined]  # noqa: F821
    assert 2 == env.suite
