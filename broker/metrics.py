"""Prometheus metrics of one broker process (its own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from protocol.metrics import RevocationListGauges
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
        self.held = Counter(
            "palermo_embargo_held",
            "Embargoed envelopes held in PLM_HOLD until not_before",
            registry=r,
        )
        self.released = Counter(
            "palermo_embargo_released",
            "Held envelopes the server released at not_before and the broker took again",
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
        self.lane_deferred = Counter(
            "palermo_broker_lane_deferred",
            "Urgent envelopes held back for a later turn because their originator had used its "
            "share of an urgent turn (lane fair share, decision 0032)",
            ["originator"],
            registry=r,
        )
        self.lane_turns = Counter(
            "palermo_broker_lane_turns", "Batches taken per lane", ["lane"], registry=r
        )
        self.revocation_list = RevocationListGauges(r)

    def watch_revocations(
        self, trust: TrustStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        """Read the revocation-list gauges from ``trust`` at each scrape."""
        self.revocation_list.watch(trust, clock)
