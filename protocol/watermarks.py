"""Persisted high-water marks: the trust store's marks in a small JSON file in the state dir.

A process that remembers only in memory the versions it has accepted forgets them on restart,
and then adopts whatever the directory offers, older versions included (a rolled-back revocation
list un-revokes keys; an older standing policy loosens an originator's restrictions). The node
keeps the marks in its ``state_dir`` and the broker in its own ``state_dir`` (a volume per
replica), so a rollback never survives a restart (docs/decisions/0013-trust-high-water-marks.md).

The file, ``trust-marks.json`` (0600, written to a temporary file, fsynced and renamed, so a
crash leaves either the old or the new file, never half of one)::

    {"format": 1, "root": "<kid of the pinned root>",
     "marks": {"cert.ITA-GDF": {"version": 3, "sha256": "<hex>"}, ...}}

Marks count only under the root they were taken with: versions of another federation (a
re-rendered development deployment, a new root) say nothing about this one, so a file written
under another root is set aside (logged) and replaced. Whoever can change the pinned root file
already decides what the process trusts; the marks do not defend against that.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import structlog

from protocol.marks import Mark
from schemas.errors import ConfigError

__all__ = ["FILE_NAME", "FORMAT", "MAX_FILE_BYTES", "MarksFile"]

FILE_NAME: Final[str] = "trust-marks.json"
FORMAT: Final[int] = 1
MAX_FILE_BYTES: Final[int] = 16 * 1024 * 1024
"""Four keys per member at ~120 bytes each: room for 30,000 members, far above MAX_MEMBERS."""
_log = structlog.get_logger("palermo.directory")


class MarksFile:
    """The marks of one process (node or broker replica); never shared by two processes."""

    def __init__(self, state_dir: Path, root_kid: str) -> None:
        self.path = state_dir / FILE_NAME
        self.root_kid = root_kid

    def load(self) -> dict[str, Mark]:
        """The marks on disk; none on a first start, or when they were taken under another root."""
        try:
            if self.path.stat().st_size > MAX_FILE_BYTES:
                raise ConfigError(
                    f"{self.path} is larger than {MAX_FILE_BYTES} bytes; it is not a marks file"
                )
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(self._unreadable(f"{type(exc).__name__}: {exc}")) from exc
        try:
            if data["format"] != FORMAT:
                raise ConfigError(self._unreadable(f"format {data['format']!r}, not {FORMAT}"))
            if data["root"] != self.root_kid:
                _log.warning(
                    "trust marks taken under another federation root set aside",
                    path=str(self.path),
                    root=data["root"],
                    pinned=self.root_kid,
                )
                return {}
            marks = {
                str(key): Mark(int(value["version"]), _digest(value.get("sha256")))
                for key, value in data["marks"].items()
            }
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(self._unreadable(f"wrong shape: {exc!r}")) from exc
        return marks

    def save(self, marks: Mapping[str, Mark]) -> None:
        """Replace the file atomically (temporary file, fsync, rename, fsync of the folder)."""
        body = {
            key: {"version": m.version, **({"sha256": m.digest} if m.digest else {})}
            for key, m in sorted(marks.items())
        }
        document = {"format": FORMAT, "root": self.root_kid, "marks": body}
        data = json.dumps(document, indent=1).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
        # 0600 from the start (not chmod after): what a process has trusted is its own business.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _unreadable(self, why: str) -> str:
        return (
            f"cannot read the trust high-water marks {self.path} ({why}); it is written only by "
            "Palermo. Restore it from a backup, or, to start from the versions the directory "
            "holds now (a rollback written there meanwhile would then be adopted), move it away"
        )


def _digest(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 64:
        raise ValueError(f"sha256 {value!r} is not 64 hex digits")
    int(value, 16)
    return value
