"""Broker configuration: a TOML file, overridden by ``PALERMO_BROKER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from protocol.lanes import LaneShares
from protocol.marks import FEDERATION_KEY, REVOCATIONS_KEY, Mark
from protocol.settings import NatsSettings

from .streams import StreamLimits

__all__ = ["DEV_STATE_DIR", "BrokerSettings"]

DEV_STATE_DIR: Final[str] = "broker-state"
"""In dev mode, the state dir's default: this folder next to the config file."""


class BrokerSettings(NatsSettings):
    """Everything ``palermo broker run`` reads. Secrets never appear in a repr."""

    model_config = SettingsConfigDict(env_prefix="PALERMO_BROKER_", extra="forbid")
    what: ClassVar[str] = "broker config"

    broker_id: str = Field(default="BROKER-1", pattern=r"^[A-Z][A-Z0-9-]{1,31}$")
    root_key: Path = Field(description="The pinned federation root (root.pub.json).")
    signing_key: Path = Field(description="The broker's Ed25519 key (audit checkpoints, notices).")
    signing_key_passphrase: SecretStr | None = None
    replicas: int = Field(default=1, ge=1, le=5)
    max_envelope_bytes: int = Field(default=1024 * 1024, ge=4096, le=8 * 1024 * 1024)
    batch: int = Field(default=256, ge=1, le=4096)
    max_inflight: int = Field(default=1024, ge=1)
    max_deliver: int = Field(default=10, ge=1)
    ack_wait_s: float = Field(default=30.0, gt=0)
    routine_share: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="After this many urgent batches in a row while routine envelopes wait, one "
        "routine slice (routine never starves; decision 0032).",
    )
    routine_slice: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Routine envelopes per routine turn: an urgent envelope waits for at most "
        "one slice in progress.",
    )
    urgent_per_originator: int = Field(
        default=16, ge=1, le=4096, description="Urgent envelopes of one originator per batch."
    )
    urgent_window: int = Field(
        default=1024,
        ge=1,
        le=100_000,
        description="Urgent envelopes fetched ahead so that originators can be interleaved.",
    )
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_ms: int = Field(default=1000, ge=10)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8480, ge=0, le=65535)
    state_dir: Path | None = Field(
        default=None,
        description="This replica's own state: the trust high-water marks "
        "(docs/decisions/0013-trust-high-water-marks.md). One persistent volume per replica, "
        "never shared. Required outside dev mode; in dev mode 'broker-state' next to the config.",
    )
    min_revocation_seq: int = Field(
        default=0,
        ge=0,
        description="Never run on a revocation list below this seq (a replica with no state "
        "yet starts from it; 'palermo deploy render' and 'palermo federation revoke' write it).",
    )
    min_federation_version: int = Field(
        default=0, ge=0, description="Never run on a federation policy below this version."
    )
    max_embargo_days: float = Field(
        default=30,
        gt=0,
        le=365,
        description="The furthest ahead an embargoed envelope may be released (not_before); "
        "one further ahead is dead-lettered (embargo_too_far). PLM_HOLD keeps held envelopes "
        "a day longer: run 'palermo broker streams create' again after changing it.",
    )

    @model_validator(mode="after")
    def _dev_state_dir(self) -> Self:
        path = type(self).toml_path
        if self.state_dir is None and self.dev and path is not None:
            self.state_dir = path.resolve().parent / DEV_STATE_DIR
        return self

    def lane_shares(self) -> LaneShares:
        """The lane settings above, for BrokerOptions.lanes."""
        return LaneShares(
            routine_share=self.routine_share,
            routine_slice=self.routine_slice,
            urgent_per_originator=self.urgent_per_originator,
            urgent_window=self.urgent_window,
        )

    def stream_limits(self) -> StreamLimits:
        """The streams this configuration needs (``palermo broker streams create``)."""
        return StreamLimits(
            replicas=self.replicas,
            max_payload=self.max_envelope_bytes,
            hold_days=self.max_embargo_days + 1,
        )

    def minimum_marks(self) -> dict[str, Mark]:
        """The configured minimums as high-water marks (no digest: any document at them)."""
        minimums = {
            REVOCATIONS_KEY: self.min_revocation_seq,
            FEDERATION_KEY: self.min_federation_version,
        }
        return {key: Mark(version) for key, version in minimums.items() if version > 0}
