"""Node configuration: a TOML file, overridden by ``PALERMO_NODE_*`` environment variables.

The NATS half (URLs, TLS, credentials, the secure-settings checks) is
:class:`protocol.settings.NatsSettings`, shared with the broker.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from policies import DEFAULT_SUPPRESSION_K
from protocol.keys import EncryptionKey, HybridPrivateKey, SigningKey, load_private_key
from protocol.lanes import LaneShares
from protocol.settings import MAX_SOCKET, NatsSettings, is_loopback
from schemas.errors import ConfigError

from ._lanes import FETCH_BATCH, DeliveryOptions

__all__ = [
    "DEFAULT_MAX_EMBARGO",
    "DEFAULT_MAX_ENVELOPE_AGE",
    "DEFAULT_TAXII_PAGE_SIZE",
    "MAX_TAXII_PAGE_SIZE",
    "NodeSettings",
    "split_host_port",
]


# The oldest envelope a node takes. The broker refuses one created more than 7 days before it
# reaches it (BrokerOptions.max_age); PLM_DLV keeps a delivery for 30 days
# (StreamLimits.delivery_days), so a node back from a month offline still takes its backlog.
# One day more for clocks. Anything older is a replay from a record, not a delivery. For an
# embargoed envelope (held in PLM_HOLD until not_before) every one of these ages counts from
# not_before (policies.envelope_age).
DEFAULT_MAX_ENVELOPE_AGE: Final[timedelta] = timedelta(days=7 + 30 + 1)
DEFAULT_MAX_EMBARGO: Final[timedelta] = timedelta(days=30)
"""The furthest ahead 'palermo publish' accepts not_before: the broker's default cap."""
DEFAULT_TAXII_PAGE_SIZE: Final[int] = 100
"""Objects per TAXII answer unless the client asks fewer (``taxii_page_size``)."""
MAX_TAXII_PAGE_SIZE: Final[int] = 1000
"""The most ``taxii_page_size`` may be: every object of one answer is exported in memory."""


def split_host_port(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as (host, port); ValueError saying the form otherwise."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value[:80]!r} is not host:port (e.g. '127.0.0.1:8443', '[::1]:0')")
    return host, int(port)


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
    max_embargo: timedelta = Field(
        default=DEFAULT_MAX_EMBARGO,
        gt=timedelta(0),
        description="The furthest ahead this node publishes an embargoed report (ISO 8601 "
        "duration, e.g. 'P30D'); keep it at most the broker's max_embargo_days.",
    )
    statistics_k: int = Field(
        default=DEFAULT_SUPPRESSION_K,
        ge=2,
        le=1000,
        description="Disclosure control: a statistical return's non-zero counts below k are "
        "suppressed (with their complements) before sealing; the federation's [rules] "
        "statistics_min_k applies instead when higher (decision 0024).",
    )
    # Taking deliveries (node/_lanes.py, docs/node.md "Taking deliveries").
    ack_wait_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a delivery in hand may stay unacknowledged before JetStream offers "
        "it again; longer than the slowest store plus receipt.",
    )
    fetch_batch: int = Field(
        default=FETCH_BATCH, ge=1, le=1024, description="Deliveries fetched per request."
    )
    max_ack_pending: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Deliveries handed to this node and not yet acknowledged, per lane; at "
        "least fetch_batch.",
    )
    routine_share: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="After this many urgent turns in a row while routine deliveries wait, one "
        "routine delivery (routine never starves; decision 0032).",
    )
    urgent_per_originator: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="Urgent deliveries of one originator per urgent turn (fair share).",
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

    # TAXII 2.1, read-only (issue 18): its own listener, off unless taxii_port is set; every
    # request carries a client token from 'palermo taxii token add' (decision 0030).
    taxii_host: str = Field(default="127.0.0.1", description="TAXII server TCP address.")
    taxii_port: int | None = Field(
        default=None, ge=0, le=65535, description="TAXII port (0: a free one; unset: none)."
    )
    taxii_tls_cert: Path | None = Field(default=None, description="TAXII server certificate.")
    taxii_tls_key: Path | None = Field(default=None, description="Its key (0600).")
    taxii_page_size: int = Field(
        default=DEFAULT_TAXII_PAGE_SIZE,
        ge=1,
        le=MAX_TAXII_PAGE_SIZE,
        description="The most objects one TAXII answer holds (a client's limit is capped to it).",
    )

    # The officer console (issue 17, decision 0026): people log in here, so its own listener,
    # off unless configured, and TLS unless on loopback in dev mode or behind a TLS proxy.
    console_listen: str | None = Field(
        default=None,
        description="Officer console address, 'host:port' ('127.0.0.1:0': a free port; "
        "unset: no console).",
    )
    console_tls_cert: Path | None = Field(default=None, description="Console certificate.")
    console_tls_key: Path | None = Field(default=None, description="Its key (0600).")
    console_behind_tls_proxy: bool = Field(
        default=False,
        description="Plain HTTP on console_listen because a TLS-terminating proxy (the "
        "Kubernetes Ingress) is the only client; cookies are still marked Secure.",
    )
    console_trust_forwarded_for: bool = Field(
        default=False,
        description="Take the client address for login rate limits from the last "
        "X-Forwarded-For entry (only behind a proxy that sets it).",
    )
    console_idle_timeout: timedelta = Field(
        default=timedelta(minutes=15),
        gt=timedelta(0),
        description="A console session ends this long after its last request (ISO 8601).",
    )
    console_login_failures: int = Field(
        default=5, ge=1, le=100, description="Failed logins allowed per account and per "
        "client address within console_login_window before 429.",
    )  # fmt: skip
    console_login_window: timedelta = Field(
        default=timedelta(minutes=15), gt=timedelta(0), description="See console_login_failures."
    )

    @field_validator("console_listen")
    @classmethod
    def _console_listen(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value)
        return value

    @property
    def console_address(self) -> tuple[str, int] | None:
        return split_host_port(self.console_listen) if self.console_listen else None

    @property
    def console_tls(self) -> bool:
        return self.console_tls_cert is not None and self.console_tls_key is not None

    @property
    def console_secure_cookies(self) -> bool:
        """Whether browsers reach the console over HTTPS (so cookies get ``Secure``)."""
        return self.console_tls or self.console_behind_tls_proxy

    def check_console(self) -> None:
        """Refuse a console that would carry passwords in clear text, saying what to fix."""
        address = self.console_address
        if address is None:
            return
        problems: list[str] = []
        if (self.console_tls_cert is None) != (self.console_tls_key is None):
            problems.append("console_tls_cert and console_tls_key go together")
        if not self.console_secure_cookies:
            host = address[0]
            if not is_loopback(host):
                problems.append(
                    f"console on {host}, not a loopback address, without TLS: passwords and "
                    "session cookies would cross the network in clear; set console_tls_cert "
                    "and console_tls_key, or console_behind_tls_proxy = true if only a "
                    "TLS-terminating proxy reaches it"
                )
            elif not self.dev:
                problems.append(
                    "console without TLS: set console_tls_cert and console_tls_key (plain HTTP "
                    "on loopback is for dev = true only)"
                )
        if problems:
            raise ConfigError(
                f"refusing to start with an insecure {self.what}: " + "; ".join(problems)
            )

    @field_validator("ingest_socket_mode")
    @classmethod
    def _socket_mode(cls, mode: int) -> int:
        if mode not in (0o600, 0o660):
            raise ValueError("must be 0o600 (384) or 0o660 (432): others never reach ingest")
        return mode

    def delivery_options(self) -> DeliveryOptions:
        """How this node takes its deliveries (the settings above)."""
        return DeliveryOptions(
            ack_wait_s=self.ack_wait_s,
            fetch_batch=self.fetch_batch,
            max_ack_pending=max(self.max_ack_pending, self.fetch_batch),
            lanes=LaneShares(
                routine_share=self.routine_share,
                routine_slice=1,
                urgent_per_originator=self.urgent_per_originator,
                urgent_window=self.fetch_batch,
            ),
        )

    @property
    def ingest_enabled(self) -> bool:
        return self.ingest_port is not None or self.ingest_socket is not None

    @property
    def ingest_mtls(self) -> bool:
        return self.ingest_tls_client_ca is not None

    @property
    def taxii_enabled(self) -> bool:
        return self.taxii_port is not None

    def secret_files(self) -> list[Path]:
        keys = (
            self.ingest_token_file,
            self.ingest_tls_key,
            self.taxii_tls_key,
            self.console_tls_key,
        )
        extra = [p for p in keys if p]
        return super().secret_files() + extra

    def check_secure(self) -> None:
        """The NATS checks, then ingest's: an unauthenticated ingest anyone on the network
        reaches is refused even in dev mode (it signs in the agency's name)."""
        self.check_ingest()
        self.check_taxii()
        self.check_console()
        super().check_secure()

    def check_taxii(self) -> None:
        """Refuse a TAXII listener whose client tokens would cross the network in clear."""
        problems: list[str] = []
        if (self.taxii_tls_cert is None) != (self.taxii_tls_key is None):
            problems.append("taxii_tls_cert and taxii_tls_key go together")
        if (
            self.taxii_port is not None
            and self.taxii_tls_cert is None
            and not is_loopback(self.taxii_host)
        ):
            problems.append(
                f"TAXII on {self.taxii_host}, not a loopback address, without TLS: every "
                "client's token would cross the network in clear; set taxii_tls_cert and "
                'taxii_tls_key, or taxii_host = "127.0.0.1" behind a TLS proxy'
            )
        if problems:
            raise ConfigError(
                f"refusing to start with an insecure {self.what}: " + "; ".join(problems)
            )

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
            if not isinstance(key, X25519PrivateKey | HybridPrivateKey):
                raise ConfigError(
                    f"{path} is not an encryption key (X25519, or ML-KEM-768 + X25519)"
                )
            decryption.append(EncryptionKey.from_private(self.agency, key))
        return SigningKey(self.agency, signing), decryption
