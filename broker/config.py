"""Broker configuration: a TOML file, overridden by ``PALERMO_BROKER_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from node.config import NatsSettings

__all__ = ["BrokerSettings"]


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
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_ms: int = Field(default=1000, ge=10)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8480, ge=0, le=65535)
