"""The per-officer access log: who opened, published, granted, denied, overrode or exported
which report, and every login, logout and failed login; hash-chained (:mod:`protocol.hashchain`).

One JSON entry a line in ``state_dir/access-log.jsonl`` (0600). Every append takes an
exclusive lock on the file and re-reads its last entry, so the running node and a ``palermo
officer`` command on the same host extend one chain rather than forking it. Entries carry
report ids and action codes, never report content: the log is read by administrators, who
are not thereby cleared to read every report.

What the chain proves: no entry was changed, removed or reordered after a later one was
written; a rewrite of the whole file by someone holding the host is not detected by the chain
alone (decision 0026 says how to anchor it).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args

from aiohttp import web

from protocol.hashchain import GENESIS, ChainReport, HashChain, verify_chains
from schemas.errors import ConfigError

from .auth_state import CONSOLE, OFFICER, client_address
from .sessions import utc_now

__all__ = [
    "ACCESS_LOG_FILE",
    "ACTIONS",
    "AccessLog",
    "Action",
    "record_access",
]

ACCESS_LOG_FILE: Final[str] = "access-log.jsonl"
ENTRY_DOMAIN: Final[bytes] = b"palermo/v1/access-log-entry\x00"
CHECKPOINT_DOMAIN: Final[bytes] = b"palermo/v1/access-log-checkpoint\x00"
MAX_DETAIL: Final[int] = 500
Action = Literal[
    "open",
    "publish",
    "grant",
    "deny",
    "override",
    "export",
    "login",
    "logout",
    "login-failed",
    "officer-add",
    "officer-disable",
]
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)
_TAIL_CHUNK: Final[int] = 8192


class AccessLog:
    """The log file of one node; ``chain`` names it in every entry (the agency's name)."""

    def __init__(self, path: Path, chain: str, clock: Callable[[], datetime] = utc_now) -> None:
        self.path, self.chain, self.clock = path, chain, clock

    @classmethod
    def in_state_dir(
        cls, state_dir: Path, chain: str, clock: Callable[[], datetime] = utc_now
    ) -> AccessLog:
        return cls(state_dir / ACCESS_LOG_FILE, chain, clock)

    def record(
        self,
        officer: str,
        action: Action,
        *,
        report_id: str | None = None,
        detail: str | None = None,
        client: str | None = None,
    ) -> dict[str, Any]:
        """Append one entry (durably: fsync before returning) and return it."""
        if action not in ACTIONS:
            raise ValueError(f"unknown access-log action {action!r}; one of {ACTIONS}")
        record: dict[str, Any] = {"type": "access", "officer": officer, "action": action}
        if report_id is not None:
            record["report"] = report_id
        if detail:
            record["detail"] = detail[:MAX_DETAIL]
        if client:
            record["client"] = client
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file closes
            last = _last_entry(f)
            chain = HashChain(
                self.chain,
                seq=int(last["seq"]) if last else 0,
                head=str(last["hash"]) if last else GENESIS,
                entry_domain=ENTRY_DOMAIN,
                checkpoint_domain=CHECKPOINT_DOMAIN,
            )
            entry = chain.append(record, self.clock())
            f.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first; a line that is not JSON is reported as broken by
        :meth:`verify` rather than skipped."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return
        with f:
            for number, line in enumerate(f, 1):
                try:
                    entry = json.loads(line)
                except ValueError as exc:
                    raise ConfigError(
                        f"{self.path} line {number} is not a JSON entry: the access log was "
                        "damaged or edited"
                    ) from exc
                if not isinstance(entry, dict):
                    raise ConfigError(f"{self.path} line {number} is not a JSON object")
                yield entry

    def verify(self) -> ChainReport:
        """The chain checked from its first entry; ``broken`` says where and how if not."""
        try:
            reports = verify_chains(
                self.entries(),
                {},
                entry_domain=ENTRY_DOMAIN,
                checkpoint_domain=CHECKPOINT_DOMAIN,
                signer="node",
            )
        except ConfigError as exc:
            return ChainReport(self.chain, broken=str(exc))
        if not reports:
            return ChainReport(self.chain)
        if len(reports) > 1 or reports[0].chain != self.chain:
            names = ", ".join(r.chain for r in reports)
            return ChainReport(
                self.chain, broken=f"entries of other chains ({names}) were mixed in"
            )
        return reports[0]


def _last_entry(f: Any) -> dict[str, Any] | None:
    """The last line of an open file as JSON (read backwards, so appends stay O(1))."""
    end = f.seek(0, os.SEEK_END)
    if end == 0:
        return None
    data = b""
    pos = end
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
        if data.rstrip(b"\n").count(b"\n") >= 1:
            break
    line = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        entry = json.loads(line)
    except ValueError as exc:
        raise ConfigError(
            "the access log's last line is not a JSON entry: it was damaged or edited; "
            "'palermo officer access-log --verify' shows where"
        ) from exc
    if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
        raise ConfigError("the access log's last line is not an access-log entry")
    return entry


def record_access(
    request: web.Request,
    action: Action,
    *,
    report_id: str | None = None,
    detail: str | None = None,
    officer: str | None = None,
) -> dict[str, Any]:
    """Record ``action`` by the request's officer (or ``officer``, for a failed login) in the
    node's access log. ``detail``: codes and ids only, never report content."""
    current = request.get(OFFICER)
    name = officer or (current.name if current is not None else "-")
    console = request.app[CONSOLE]
    return console.access.record(
        name, action, report_id=report_id, detail=detail, client=client_address(request)
    )
