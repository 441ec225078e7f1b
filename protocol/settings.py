"""Node configuration: a TOML file, overridden by ``PALERMO_NODE_*`` environment variables."""

from __future__ import annotations

import ipaddress
import json
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Final, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from policies.trust import ROOT
from schemas._validation import invalid
from schemas.errors import ConfigError

from .keys import EncryptionKey, PublicSigningKey, SigningKey, load_private_key, shared_access

__all__ = [
    "DEFAULT_MAX_ENVELOPE_AGE",
    "NatsSettings",
    "NodeSettings",
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
        """Keyword arguments for :func:`node.transport.connect` (``nats.connect``)."""
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


# The oldest envelope a node takes. The broker refuses one created more than 7 days before it
# reaches it (BrokerOptions.max_age) and refuses an embargoed one outright (the policy denies
# until not_before, so an embargo never holds a copy in a stream); PLM_DLV keeps a delivery
# for 30 days (StreamLimits.delivery_days), so a node back from a month offline still takes its
# backlog. One day more for clocks. Anything older is a replay from a record, not a delivery.
DEFAULT_MAX_ENVELOPE_AGE: Final[timedelta] = timedelta(days=7 + 30 + 1)


class NodeSettings(NatsSettings):
    """Everything a node needs. Secrets never appear in a repr."""

    model_config = SettingsConfigDict(env_prefix="PALERMO_NODE_", extra="forbid")
    what: ClassVar[str] = "node config"

    agency: str = Field(pattern=r"^[A-Z][A-Z0-9-]{1,31}$")
    root_key: Path = Field(description="The pinned federation root (root.pub.json).")
    signing_key: Path
    encryption_keys: list[Path] = Field(min_length=1, description="Newest first; old ones kept.")
    key_passphrase: SecretStr | None = None
    state_dir: Path = Field(description="Inbox database and storage key.")
    publish_on_start: list[Path] = Field(
        default_factory=list,
        description="Signed documents this node publishes to the directory when it starts "
        "(its key bundle, its subscriptions), each verified first.",
    )
    # 'palermo status' shows a broker's refusals only from notices these keys signed: a notice
    # is a claim about other agencies, and anyone who can write to the receipt stream could
    # forge one (docs/node.md, "Receipts and status").
    broker_keys: list[Path] = Field(
        default_factory=list,
        description="The broker's public key file(s) (broker.pub.json); notices signed by any "
        "other key are ignored.",
    )
    max_envelope_age: timedelta = Field(
        default=DEFAULT_MAX_ENVELOPE_AGE,
        gt=timedelta(0),
        description="Oldest delivery taken (ISO 8601 duration, e.g. 'P38D'); see "
        "DEFAULT_MAX_ENVELOPE_AGE.",
    )
    http_host: str = Field(
        default="127.0.0.1", description="/healthz, /readyz and /metrics only (no ingest)."
    )
    http_port: int = Field(default=0, ge=0, le=65535)
    # Ingest (POST /v1/reports) makes this agency sign and publish: its own listener, off
    # unless configured, and authenticated (docs/decisions/0016-authenticated-ingest.md).
    ingest_host: str = Field(default="127.0.0.1", description="Ingest TCP address.")
    ingest_port: int | None = Field(
        default=None, ge=0, le=65535, description="Ingest TCP port (0: a free one; unset: none)."
    )
    ingest_socket: Path | None = Field(default=None, description="Ingest on a Unix socket.")
    ingest_socket_mode: int = Field(
        default=0o600, description="0o600 (this user) or 0o660 (and its group)."
    )
    ingest_token_file: Path | None = Field(
        default=None, description="Bearer token callers must send (file 0600)."
    )
    ingest_tls_cert: Path | None = Field(default=None, description="Ingest server certificate.")
    ingest_tls_key: Path | None = Field(default=None, description="Its key (0600).")
    ingest_tls_client_ca: Path | None = Field(
        default=None, description="CA whose client certificates ingest requires (mTLS)."
    )

    @field_validator("ingest_socket_mode")
    @classmethod
    def _socket_mode(cls, mode: int) -> int:
        if mode not in (0o600, 0o660):
            raise ValueError("must be 0o600 (384) or 0o660 (432): others never reach ingest")
        return mode

    @property
    def ingest_enabled(self) -> bool:
        return self.ingest_port is not None or self.ingest_socket is not None

    @property
    def ingest_mtls(self) -> bool:
        return self.ingest_tls_client_ca is not None

    def secret_files(self) -> list[Path]:
        extra = [p for p in (self.ingest_token_file, self.ingest_tls_key) if p]
        return super().secret_files() + extra

    def check_secure(self) -> None:
        """The NATS checks, then ingest's: an unauthenticated ingest anyone on the network
        reaches is refused even in dev mode (it signs in the agency's name)."""
        self.check_ingest()
        super().check_secure()

    def check_ingest(self) -> None:
        """Refuse an ingest listener that anyone who reaches it could use, saying what to fix."""
        problems: list[str] = []
        tls = (self.ingest_tls_cert, self.ingest_tls_key, self.ingest_tls_client_ca)
        if any(tls) and not all(tls):
            problems.append(
                "ingest_tls_cert, ingest_tls_key and ingest_tls_client_ca go together: mTLS "
                "needs the server's certificate and key and the CA of its clients' certificates"
            )
        authenticated = self.ingest_token_file is not None or all(tls)
        if self.ingest_port is not None and not authenticated:
            if not is_loopback(self.ingest_host):
                problems.append(
                    f"ingest on {self.ingest_host}, not a loopback address, without "
                    "authentication: whoever reaches it could make this agency sign and publish; "
                    "set ingest_token_file (a 0600 file with a random token) or ingest_tls_cert, "
                    'ingest_tls_key and ingest_tls_client_ca, or ingest_host = "127.0.0.1"'
                )
            elif not self.dev:
                problems.append(
                    "ingest without authentication: every local process could make this agency "
                    "sign and publish; set ingest_token_file (a 0600 file with a random token), "
                    "or ingest_tls_*, or use ingest_socket (a 0600 Unix socket) instead"
                )
        if self.ingest_socket is not None and len(str(self.ingest_socket).encode()) > MAX_SOCKET:
            problems.append(
                f"ingest_socket {self.ingest_socket} is longer than {MAX_SOCKET} bytes, the "
                "limit of a Unix socket path: choose a shorter path"
            )
        if problems:
            raise ConfigError(
                f"refusing to start with an insecure {self.what}: " + "; ".join(problems)
            )

    def keys(self) -> tuple[SigningKey, list[EncryptionKey]]:
        secret = self.key_passphrase.get_secret_value().encode() if self.key_passphrase else None
        signing = load_private_key(self.signing_key, secret)
        if not isinstance(signing, Ed25519PrivateKey):
            raise ConfigError(f"{self.signing_key} is not an Ed25519 signing key")
        decryption = []
        for path in self.encryption_keys:
            key = load_private_key(path, secret)
            if not isinstance(key, X25519PrivateKey):
                raise ConfigError(f"{path} is not an X25519 encryption key")
            decryption.append(EncryptionKey(self.agency, key))
        return SigningKey(self.agency, signing), decryption


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
