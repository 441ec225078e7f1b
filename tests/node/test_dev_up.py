"""``palermo dev up``: a local federation a person can publish into, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.harness import EXAMPLES, PALERMO

EXAMPLE = EXAMPLES / "01-routes-central-med-departure.json"


def test_dev_up_publish_and_ctrl_c(tmp_path: Path) -> None:
    """It announces node configs, accepts a publish from another process, and stops on SIGINT."""
    out = tmp_path / "dev.out"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [PALERMO, "dev", "up", "--state-dir", str(tmp_path / "st")],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "300"},
        )
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops everything" not in out.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text()
            time.sleep(0.1)
        config = tmp_path / "st" / "fed" / "ITA-GDF.node.toml"
        done = subprocess.run(
            [PALERMO, "publish", str(EXAMPLE), "--config", str(config), "--json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert 0 == done.returncode, done.stderr
        assert '"MLT-AFM"' in done.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    assert 0 == code, out.read_text()
    assert [] == _processes_mentioning(str(tmp_path / "st" / "nats"))


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (Linux /proc; processes may vanish meanwhile)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text in (entry / "cmdline").read_bytes().decode(errors="ignore"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
