"""How a service reaches NATS (shared by the broker and nodes): TOML settings overridden by
environment variables, the secure-settings checks, and the pinned public key files."""

from __future__ import annotations

import ipaddress
import json
import ssl
from pathlib import Path
from typing import Any, ClassVar, Final, Self

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)

from schemas._validation import invalid
from schemas.errors import ConfigError

from .keys import PublicSigningKey, shared_access
from .trust import ROOT

__all__ = [
    "MAX_SOCKET",
    "NatsSettings",
    "TomlSettings",
    "is_loopback",
    "load_public_key_file",
    "load_root_public",
    "write_public_key_file",
]


MAX_SOCKET: Final[int] = 107
"""The longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``); a name that might resolve
    elsewhere counts as not loopback, so an unknown host is never trusted as local."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TomlSettings(BaseSettings):
    """Settings read from a TOML file, overridden by environment variables (the env prefix)."""

    what: ClassVar[str] = "config"
    toml_path: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path))
        return tuple(sources)

    @classmethod
    def load(cls, path: Path | None, **overrides: Any) -> Self:
        """Read ``path`` (TOML) with environment overrides; errors name the field to fix."""
        if path is not None and not path.is_file():
            raise ConfigError(f"{cls.what} {path} does not exist")
        cls.toml_path = path
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise ConfigError(invalid(exc, f"{cls.what} {path}").reason) from exc
        finally:
            cls.toml_path = None


class NatsSettings(TomlSettings):
    """How a service reaches NATS: URLs, TLS, credentials. Shared by the broker and nodes.

    Outside dev mode :meth:`check_secure` refuses to start without TLS and credentials, and
    with a secret file that group or others can read (``docs/operations.md``).
    """

    nats_url: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    nats_credentials: Path | None = Field(default=None, description="NATS JWT .creds file")
    nats_nkey_seed: Path | None = Field(default=None, description="NATS nkey user seed file")
    nats_tls_ca: Path | None = Field(default=None, description="CA bundle for the server's cert")
    nats_tls_cert: Path | None = Field(default=None, description="Client certificate (mTLS)")
    nats_tls_key: Path | None = Field(default=None, description="Client certificate's key")
    nats_inbox_prefix: str | None = Field(
        default=None,
        pattern=r"^_INBOX[A-Za-z0-9_-]*$",
        description="Reply subject prefix; the deployment's permissions allow only this one.",
    )
    nats_js_domain: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="JetStream domain of the hub, for a service behind a leafnode server.",
    )
    dev: bool = Field(default=False, description="Allow insecure settings (no TLS) for local use.")

    def secret_files(self) -> list[Path]:
        """Files that must be readable by the service's user only."""
        return [p for p in (self.nats_credentials, self.nats_nkey_seed, self.nats_tls_key) if p]

    def check_secure(self) -> None:
        """Refuse an insecure configuration outside dev mode, saying what to fix."""
        if self.dev:
            return
        problems: list[str] = []
        plain = [u for u in self.nats_url if not u.startswith("tls://")]
        if self.nats_tls_ca is None and plain:
            problems.append(
                f"no TLS: set nats_tls_ca (the CA of the servers' certificates) or use tls:// "
                f"URLs (not {', '.join(plain)})"
            )
        if self.nats_credentials is None and self.nats_nkey_seed is None:
            problems.append("no NATS credentials: set nats_nkey_seed or nats_credentials")
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            problems.append("nats_tls_cert and nats_tls_key go together: set both or neither")
        for path in self.secret_files():
            problems += _private_file_problems(path)
        if problems:
            raise ConfigError(
                f"refusing to start with an insecure {self.what}: "
                + "; ".join(problems)
                + " (dev = true allows this on a developer machine only)"
            )

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`protocol.transport.connect` (``nats.connect``)."""
        options: dict[str, Any] = {}
        if self.nats_credentials is not None:
            options["user_credentials"] = str(self.nats_credentials)
        if self.nats_nkey_seed is not None:
            options["nkeys_seed"] = str(self.nats_nkey_seed)
        if self.nats_inbox_prefix is not None:
            options["inbox_prefix"] = self.nats_inbox_prefix
        if self.nats_tls_ca is not None or self.nats_tls_cert is not None:
            options["tls"] = self.tls_context()
        return options

    def tls_context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(
                cafile=str(self.nats_tls_ca) if self.nats_tls_ca else None
            )
            if self.nats_tls_cert is not None and self.nats_tls_key is not None:
                context.load_cert_chain(str(self.nats_tls_cert), str(self.nats_tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{self.what}: cannot load the NATS TLS files (nats_tls_ca {self.nats_tls_ca}, "
                f"nats_tls_cert {self.nats_tls_cert}, nats_tls_key {self.nats_tls_key}): {exc}"
            ) from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def _private_file_problems(path: Path) -> list[str]:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return [f"cannot read {path}: {exc.strerror}"]
    loose = shared_access(path, mode)
    return [] if loose is None else [loose]


def load_public_key_file(path: Path, owner: str) -> PublicSigningKey:
    """A ``{"kid", "ed25519"}`` public key file (the pinned root, a broker's key)."""
    try:
        data = json.loads(path.read_text())
        key = PublicSigningKey.from_raw(owner, bytes.fromhex(data["ed25519"]))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a public key file ({{kid, ed25519}})") from exc
    if key.kid != data.get("kid"):
        raise ConfigError(f"{path}: kid does not match the key")
    return key


def write_public_key_file(path: Path, key: PublicSigningKey) -> None:
    path.write_text(json.dumps({"ed25519": key.raw.hex(), "kid": key.kid}, indent=2) + "\n")


def load_root_public(path: Path) -> PublicSigningKey:
    """The pinned federation root: ``root.pub.json`` written by ``palermo federation init``."""
    return load_public_key_file(path, ROOT)
