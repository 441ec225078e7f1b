"""The operator's CLI as a real process, for tests that drive it against live servers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

PALERMO = Path(sys.executable).parent / "palermo"


async def palermo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``palermo ARGS`` in a thread (the event loop keeps serving) and capture its output."""
    return await asyncio.to_thread(
        subprocess.run, [str(PALERMO), *args], capture_output=True, text=True, timeout=timeout
    )
