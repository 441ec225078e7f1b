"""Fixtures shared by every test package.

The live-stack fixtures (a server, a 3-node cluster, a hub with a leafnode, the example
federation in a server's directory) are ``tests/harness/fixtures.py``, loaded here; the helpers
that start brokers and nodes and read the streams are ``tests.harness`` (its ``__init__``).
"""

from __future__ import annotations

from typing import Any

from tests.stateful._summary import print_counts, stateful_first

pytest_plugins = ["tests.harness.fixtures"]

# --- Order and summary ------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """The longest tests (the stateful shards) first, one per xdist worker."""
    stateful_first(items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The stateful run's counts, if a shard ran."""
    print_counts(terminalreporter)
