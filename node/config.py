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
from protocol.keys import EncryptionKey, SigningKey, load_private_key
from protocol.lanes import LaneShares
from protocol.settings import MAX_SOCKET, NatsSettings, is_loopback
from schemas.errors import ConfigError

from ._lanes import FETCH_BATCH, DeliveryOptions

__all__ = ["DEFAULT_MAX_EMBARGO", "DEFAULT_MAX_ENVELOPE_AGE", "NodeSettings"]


# The oldest envelope a node takes. The broker refuses one created more than 7 days before it
# reaches it (BrokerOptions.max_age); PLM_DLV keeps a delivery for 30 days
# (StreamLimits.delivery_days), so a node back from a month offline still takes its backlog.
# One day more for clocks. Anything older is a replay from a record, not a delivery. For an
# embargoed envelope (held in PLM_HOLD until not_before) every one of these ages counts from
# not_before (policies.envelope_age).
DEFAULT_MAX_ENVELOPE_AGE: Final[timedelta] = timedelta(days=7 + 30 + 1)
DEFAULT_MAX_EMBARGO: Final[timedelta] = timedelta(days=30)
"""The furthest ahead 'palermo publish' accepts not_before: the broker's default cap."""


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
