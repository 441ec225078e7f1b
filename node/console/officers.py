"""Officer accounts: names, cumulative roles, argon2id password hashes, optional TOTP.

Kept in ``officers.json`` in the node's state directory, mode 0600, written atomically (a
temporary file renamed over the old one), and re-read when it changes on disk: ``palermo
officer disable`` on the host takes effect on a running node's next request. Only the argon2id
hash of a password is stored (argon2-cffi's ``PasswordHasher``, type ID: memory-hard, so a
stolen file costs an attacker 64 MiB per guess). The TOTP secret has to be stored as is to
verify codes; the file's mode is its protection, like the node's storage key beside it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from schemas.errors import ConfigError, InputError

__all__ = [
    "MIN_PASSWORD_CHARS",
    "OFFICERS_FILE",
    "ROLES",
    "Officer",
    "OfficerStore",
    "Role",
    "effective_roles",
    "has_role",
    "otpauth_uri",
    "totp_for",
]

Role = Literal["reader", "officer", "release-authority", "administrator"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
OFFICERS_FILE: Final[str] = "officers.json"
MIN_PASSWORD_CHARS: Final[int] = 12
MAX_PASSWORD_CHARS: Final[int] = 1024
"""argon2 hashes any length; the cap only stops a megabyte 'password' costing CPU per try."""
TOTP_STEP: Final[int] = 30
TOTP_DIGITS: Final[int] = 6
_NAME: Final = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")

# Roles are cumulative (issue 17): a release authority may do all an officer may, an officer
# all a reader may. An administrator manages accounts and reads, but does not publish or grant:
# whoever creates accounts should not also be able to release in someone else's name.
_IMPLIES: Final[Mapping[Role, frozenset[Role]]] = {
    "reader": frozenset({"reader"}),
    "officer": frozenset({"reader", "officer"}),
    "release-authority": frozenset({"reader", "officer", "release-authority"}),
    "administrator": frozenset({"reader", "administrator"}),
}

# Parameters fixed here (argon2-cffi's RFC 9106 "low memory" profile, its default), so a
# library upgrade changing defaults does not silently change what new hashes cost.
_HASHER: Final = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, type=Type.ID)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name takes as long as a wrong password
    (made on first use: not every ``palermo`` command should pay for an argon2 hash)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def effective_roles(roles: Iterable[Role]) -> frozenset[Role]:
    """Every role ``roles`` grant, the implied ones included."""
    out: set[Role] = set()
    for role in roles:
        out |= _IMPLIES[role]
    return frozenset(out)


def has_role(roles: Iterable[Role], required: Role) -> bool:
    return required in effective_roles(roles)


def totp_for(secret_b32: str) -> TOTP:
    """The RFC 6238 generator of a stored secret (SHA-1, 6 digits, 30 s: what every
    authenticator app speaks)."""
    key = base64.b32decode(secret_b32)
    return TOTP(key, TOTP_DIGITS, SHA1(), TOTP_STEP, enforce_key_length=True)  # noqa: S303 (RFC 6238's HMAC-SHA1, not a collision use)


def otpauth_uri(officer: Officer, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app enrols from (shown once, at creation)."""
    if officer.totp_secret is None:
        raise InputError(f"officer {officer.name} has no TOTP second factor")
    return totp_for(officer.totp_secret).get_provisioning_uri(officer.name, f"Palermo {issuer}")


@dataclass
class Officer:
    """One account as stored (``password_hash`` never leaves the node)."""

    name: str
    roles: list[Role]
    password_hash: str
    disabled: bool = False
    totp_secret: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    last_totp_step: int = -1  # a code's time step is accepted once (no replay within 30 s)
    # Raised by a new password or second factor: sessions logged in before it end (a reset
    # after a compromise must also log the intruder out, not wait for the idle timeout).
    generation: int = 0

    @property
    def effective(self) -> frozenset[Role]:
        return effective_roles(self.roles)

    def to_json(self) -> dict[str, Any]:
        return {
            "roles": list(self.roles),
            "password_hash": self.password_hash,
            "disabled": self.disabled,
            "totp_secret": self.totp_secret,
            "created": self.created,
            "last_totp_step": self.last_totp_step,
            "generation": self.generation,
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> Officer:
        roles = [r for r in data["roles"] if r in ROLES]
        return cls(
            name=name,
            roles=roles,
            password_hash=str(data["password_hash"]),
            disabled=bool(data.get("disabled", False)),
            totp_secret=data.get("totp_secret"),
            created=str(data.get("created", "")),
            last_totp_step=int(data.get("last_totp_step", -1)),
            generation=int(data.get("generation", 0)),
        )


class OfficerStore:
    """The accounts of one node (``state_dir/officers.json``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._officers: dict[str, Officer] = {}
        self._stamp: tuple[int, int] | None = None
        self.refresh()

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> OfficerStore:
        return cls(state_dir / OFFICERS_FILE)

    # --- reading --------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the file if it changed on disk since last read (another process wrote it)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._officers, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        if st.st_mode & 0o077:
            raise ConfigError(
                f"{self.path} is readable by others (mode {st.st_mode & 0o777:o}): it holds "
                f"password hashes and TOTP secrets; chmod 600 {self.path}"
            )
        try:
            data = json.loads(self.path.read_text())
            officers = {n: Officer.from_json(n, d) for n, d in data["officers"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the officer accounts in {self.path}: {exc}") from exc
        self._officers, self._stamp = officers, stamp

    def get(self, name: str) -> Officer | None:
        self.refresh()
        return self._officers.get(name)

    def all(self) -> list[Officer]:
        self.refresh()
        return [self._officers[n] for n in sorted(self._officers)]

    # --- changing -------------------------------------------------------------------------------

    def add(
        self, name: str, roles: Iterable[Role], password: str, *, totp: bool = False
    ) -> Officer:
        """A new account; raises :class:`InputError` saying what to change if refused."""
        return self.add_many([(name, list(roles))], password, totp=totp)[0]

    def add_many(
        self,
        accounts: Iterable[tuple[str, Iterable[Role]]],
        password: str,
        *,
        totp: bool = False,
    ) -> list[Officer]:
        """New accounts sharing one initial password, hashed once (the dev stack's four per
        node: an argon2id hash costs 64 MiB and a fifth of a second by design)."""
        check_password(password)
        wanted = [(name, sorted(set(roles))) for name, roles in accounts]
        digest = _HASHER.hash(password)
        made = []
        with self._writing():
            for index, (name, roles) in enumerate(wanted):
                earlier = dict.fromkeys((n for n, _ in wanted[:index]), None)
                _check_account(name, roles, {**self._officers, **earlier})
            for name, roles in wanted:
                secret = base64.b32encode(secrets.token_bytes(20)).decode() if totp else None
                officer = Officer(name, roles, digest, totp_secret=secret)
                self._officers[name] = officer
                made.append(officer)
        return made

    def disable(self, name: str) -> Officer:
        with self._writing():
            officer = self._require(name)
            officer.disabled = True
        return officer

    def enrol_totp(self, name: str) -> Officer:
        """A new TOTP secret for ``name`` (replacing any): the old authenticator stops working."""
        with self._writing():
            officer = self._require(name)
            officer.totp_secret = base64.b32encode(secrets.token_bytes(20)).decode()
            officer.last_totp_step = -1
            officer.generation += 1
        return officer

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        digest = _HASHER.hash(password)
        with self._writing():
            officer = self._require(name)
            officer.password_hash = digest
            officer.generation += 1

    def _require(self, name: str) -> Officer:
        self.refresh()
        officer = self._officers.get(name)
        if officer is None:
            raise InputError(f"no officer {name[:70]!r}; 'palermo officer list' shows them")
        return officer

    # --- verifying ------------------------------------------------------------------------------

    def verify_password(self, name: str, password: str) -> Officer | None:
        """The enabled officer if ``password`` is theirs, else None, in about the same time
        whether the name exists or not. A hash made with older parameters is upgraded."""
        officer = self.get(name)
        stored = officer.password_hash if officer is not None else _dummy_hash()
        try:
            _HASHER.verify(stored, password[:MAX_PASSWORD_CHARS])
        except (VerificationError, InvalidHashError):
            return None
        if officer is None or officer.disabled:
            return None
        if _HASHER.check_needs_rehash(stored):
            digest = _HASHER.hash(password)
            with self._writing():
                current = self._officers.get(name)
                if current is not None and current.password_hash == stored:
                    current.password_hash = digest
        return officer

    def verify_totp(self, officer: Officer, code: str, now: datetime) -> bool:
        """True if ``code`` is the officer's current code (or one step either side, for clock
        drift) and its step was not used before, by this process or another (the step used
        is recorded under the file lock)."""
        if officer.totp_secret is None or not re.fullmatch(r"\d{6}", code):
            return False
        totp = totp_for(officer.totp_secret)
        step = int(now.timestamp()) // TOTP_STEP
        with self._writing():
            current = self._officers.get(officer.name)
            if current is None or current.totp_secret != officer.totp_secret:
                return False
            for candidate in (step - 1, step, step + 1):
                if candidate <= current.last_totp_step:
                    continue
                with contextlib.suppress(InvalidToken):
                    totp.verify(code.encode(), candidate * TOTP_STEP)
                    current.last_totp_step = officer.last_totp_step = candidate
                    return True
        return False

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Read, change and write the file under an exclusive lock: the node and a ``palermo
        officer`` command never undo each other's change. Saved only if the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._stamp = None  # re-read whatever is on disk now
            self.refresh()
            yield
            self._save()
        finally:
            os.close(fd)  # releases the lock

    # --- storage --------------------------------------------------------------------------------

    def _save(self) -> None:
        data = {"version": 1, "officers": {n: o.to_json() for n, o in self._officers.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".officers-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        st = self.path.stat()
        self._stamp = (st.st_mtime_ns, st.st_size)


def _check_account(name: str, roles: Sequence[str], existing: Mapping[str, object]) -> None:
    if not _NAME.fullmatch(name):
        raise InputError(
            f"officer name {name[:70]!r}: use 2-64 lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter"
        )
    if name in existing:
        raise InputError(f"officer {name} exists; choose another name or disable it first")
    bad = [r for r in roles if r not in ROLES]
    if not roles or bad:
        raise InputError(f"roles must be some of {', '.join(ROLES)} (got {roles})")


def check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InputError(
            f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters "
            f"(got {len(password)}); a passphrase of a few words is easiest"
        )
