"""The node's record of every export (issue 18, "export is dissemination"): who took which
report out of Palermo's enforcement, in which format, with which handling, and what was left
out. One JSON line per export in ``exports.jsonl`` in the node's state directory, each line
carrying the SHA-256 of the line before it, so a removed or edited line breaks the chain
(:func:`verify`). The only module of ``node.interop`` that touches a file.

An export by a named agency's node is also an ``export`` entry of that node's per-officer access
log (:mod:`node.console.accesslog`, issue 17): administrators see exports beside openings,
publishes and grants, in one chain.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from schemas import Handling
from schemas.errors import ConfigError, InputError

__all__ = ["EXPORT_LOG", "entries", "record_export", "verify"]

EXPORT_LOG: Final = "exports.jsonl"
_GENESIS: Final = "0" * 64


def _digest(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()


def entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def verify(path: Path) -> None:
    """Raise InputError naming the first line whose predecessor hash does not match."""
    previous = _GENESIS
    lines = path.read_text().splitlines() if path.exists() else []
    for number, line in enumerate(lines, start=1):
        if json.loads(line).get("prev") != previous:
            raise InputError(f"{path} line {number}: the chain is broken (a line was changed)")
        previous = _digest(line)


def record_export(
    path: Path,
    *,
    officer: str,
    report_id: str,
    originator: str,
    fmt: str,
    handling: Handling,
    withheld: Collection[str],
    retracted: bool,
    destination: str,
    now: datetime,
    agency: str | None = None,
) -> dict[str, Any]:
    """Append one export to the log (created 0600) and, when ``agency`` names the node, to its
    access log; return the export entry. A ``ConfigError`` if a log cannot be read or written
    (then the caller must not export)."""
    try:
        entry = _append(path, officer, report_id, originator, fmt, handling, withheld, retracted,
                        destination, now)  # fmt: skip
        if agency is not None:
            from node.console.accesslog import AccessLog

            AccessLog.in_state_dir(path.parent, agency).record(
                officer, "export", report_id=report_id, detail=f"{fmt} to {destination}"
            )
        return entry
    except OSError as exc:
        raise ConfigError(
            f"cannot record the export in {path} ({exc.strerror or exc}): nothing was exported; "
            "the node's state directory must be writable by the officer exporting"
        ) from exc


def _append(
    path: Path,
    officer: str,
    report_id: str,
    originator: str,
    fmt: str,
    handling: Handling,
    withheld: Collection[str],
    retracted: bool,
    destination: str,
    now: datetime,
) -> dict[str, Any]:
    lines = path.read_text().splitlines() if path.exists() else []
    entry = {
        "at": now.isoformat(),
        "officer": officer,
        "report": report_id,
        "originator": originator,
        "format": fmt,
        "codes": handling.codes(),
        "rel_to": list(handling.rel_to),
        "withheld": sorted(withheld),
        "revoked": retracted,
        "destination": destination,
        "prev": _digest(lines[-1]) if lines else _GENESIS,
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as log:
        log.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry
