"""Who may read the node's TAXII server: one bearer token per client tool, kept hashed.

``palermo taxii token add CLIENT --collections ...`` draws a random token, prints it once and
keeps only its SHA-256 digest, with the collections the client may read, in
``STATE_DIR/taxii-clients.json`` (0600, like the node's other secrets). A token is 256 random
bits, not a password, so one unsalted hash is enough to make a stolen file useless (decision
0030). The server re-reads the file when it changes: a token added or removed while the node
runs takes effect at the next request, no restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from protocol.keys import shared_access
from schemas import Route
from schemas.errors import ConfigError, InputError

__all__ = [
    "ALL_COLLECTIONS",
    "CLIENTS_FILE",
    "OWN_COLLECTION",
    "TaxiiClient",
    "TaxiiClients",
    "collection_names",
]

CLIENTS_FILE: Final[str] = "taxii-clients.json"
OWN_COLLECTION: Final[str] = "own"
"""The alias of the collection of the node's own publications."""
ALL_COLLECTIONS: Final[str] = "*"
"""Every collection the node serves, now and later (a route subscribed tomorrow included)."""
MAX_CLIENTS_FILE_BYTES: Final[int] = 1024 * 1024
_CLIENT_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SCHEME: Final[str] = "bearer "


def collection_names() -> list[str]:
    """Every alias a client can be granted: ``own``, each route, and ``*``."""
    return [OWN_COLLECTION, *(r.value for r in Route), ALL_COLLECTIONS]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TaxiiClient:
    """A client tool: its name, and the collection aliases it may read."""

    name: str
    collections: tuple[str, ...]
    added: str

    def may_read(self, alias: str) -> bool:
        return ALL_COLLECTIONS in self.collections or alias in self.collections


class TaxiiClients:
    """The clients file of one node: read (and re-read when it changes), added to, removed from."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / CLIENTS_FILE
        self._by_digest: dict[str, TaxiiClient] = {}
        self._seen: tuple[int, int, int] | None = None

    # --- the file ---------------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return {}
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{self.path} is not a regular file")
        if (loose := shared_access(self.path, info.st_mode)) is not None:
            raise ConfigError(f"the TAXII clients file {loose}")
        if info.st_size > MAX_CLIENTS_FILE_BYTES:
            raise ConfigError(f"{self.path} is {info.st_size} bytes: not a TAXII clients file")
        try:
            data = json.loads(self.path.read_text())
            clients = data["clients"]
            if not isinstance(clients, dict):
                raise TypeError("clients is not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"cannot read the TAXII clients file {self.path} ({exc}); remove it and add the "
                "tokens again with 'palermo taxii token add'"
            ) from exc
        return clients

    def _write(self, clients: dict[str, dict[str, Any]]) -> None:
        """All or nothing: a temporary 0600 file renamed over the old one."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump({"clients": clients}, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    # --- the commands -----------------------------------------------------------------------

    def add(self, name: str, collections: list[str], now: datetime | None = None) -> str:
        """A new token for ``name`` (replacing its old one); returns it: shown once, never kept."""
        if not _CLIENT_NAME.match(name):
            raise InputError(
                f"client name {name[:70]!r}: use 1-64 lower-case letters, digits, '.', '_' or "
                "'-', starting with a letter or digit (e.g. opencti-prod)"
            )
        known = collection_names()
        unknown = [c for c in collections if c not in known]
        if unknown or not collections:
            raise InputError(
                f"--collections {', '.join(unknown) or '(none)'}: name at least one of "
                f"{', '.join(known)} (a route, 'own' for this node's publications, '*' for all)"
            )
        token = secrets.token_urlsafe(32)
        clients = self._read()
        clients[name] = {
            "digest": _digest(token),
            "collections": sorted(set(collections)),
            "added": (now or datetime.now(UTC)).isoformat(),
        }
        self._write(clients)
        return token

    def remove(self, name: str) -> None:
        clients = self._read()
        if clients.pop(name, None) is None:
            raise InputError(f"no TAXII client {name!r}; see 'palermo taxii token list'")
        self._write(clients)

    def list(self) -> list[TaxiiClient]:
        return [
            TaxiiClient(name, tuple(entry["collections"]), str(entry.get("added", "")))
            for name, entry in sorted(self._read().items())
        ]

    # --- the server -------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Re-read the file if it changed since the last request (one stat per request)."""
        try:
            info = self.path.stat()
            seen: tuple[int, int, int] | None = (info.st_ino, info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            seen = None
        if seen == self._seen and (seen is not None or not self._by_digest):
            return
        self._by_digest = {
            str(entry["digest"]): TaxiiClient(
                name, tuple(entry["collections"]), str(entry.get("added", ""))
            )
            for name, entry in self._read().items()
        }
        self._seen = seen

    def authenticate(self, authorization: str | None) -> TaxiiClient | None:
        """The client whose token the ``Authorization`` header carries, or None.

        Only the SHA-256 digest of what was sent is looked up, never the token: how long a
        lookup takes tells a caller nothing about how close a guess came to a real token.
        """
        self._refresh()
        value = authorization or ""
        if value[: len(_SCHEME)].lower() != _SCHEME:
            return None
        digest = _digest(value[len(_SCHEME) :].strip())
        return self._by_digest.get(digest)
