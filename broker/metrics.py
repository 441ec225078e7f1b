"""Prometheus metrics of one broker process (its own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from protocol.trust import TrustStore

__all__ = ["BrokerMetrics"]


@dataclass
class BrokerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.verified = Counter(
            "palermo_envelopes_verified",
            "Envelopes whose format and signature verified",
            registry=r,
        )
        self.delivered = Counter(
            "palermo_deliveries", "Copies delivered to allowed recipients", registry=r
        )
        self.denied = Counter(
            "palermo_denied",
            "Refusals (a recipient denied or an envelope invalid)",
            ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "palermo_dead_lettered", "Messages written to PLM_DEAD", registry=r
        )
        self.latency = Histogram(
            "palermo_processing_seconds",
            "From taking an envelope to acking it",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        # Decision 0014: alert on the first; the second warns before it happens.
        self.revocation_list_expired = Gauge(
            "palermo_revocation_list_expired",
            "1 if the revocation list held has passed its next_update (deliveries go on under it)",
            registry=r,
        )
        self.revocation_list_seconds_left = Gauge(
            "palermo_revocation_list_seconds_to_next_update",
            "Seconds until the revocation list held passes its next_update (negative: overdue; "
            "+Inf: the list has no next_update)",
            registry=r,
        )

    def watch_revocations(
        self, trust: TrustStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        """Read the revocation-list gauges from ``trust`` at each scrape."""
        self.revocation_list_expired.set_function(
            lambda: float(trust.revocation_list_overdue(clock()) is not None)
        )
        self.revocation_list_seconds_left.set_function(
            lambda: trust.revocation_seconds_left(clock())
        )
