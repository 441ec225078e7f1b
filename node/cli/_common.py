"""What every node command group shares: the ``--config`` option and opening the node or its
inbox from a node.toml."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The node's node.toml.")]


@asynccontextmanager
async def _node(config: Path) -> Any:
    from ..config import NodeSettings
    from ..service import Node

    async with Node.open(NodeSettings.load(config)) as node:
        yield node


@contextmanager
def _open_inbox(config: Path) -> Iterator[Any]:
    """The node's inbox file, read directly (no NATS needed to read what was received)."""
    from ..config import NodeSettings
    from ..inbox import Inbox, StorageKey

    state = NodeSettings.load(config).state_dir
    inbox = Inbox(state / "inbox.db", StorageKey.load_or_create(state / "storage.key"))
    try:
        yield inbox
    finally:
        inbox.close()
