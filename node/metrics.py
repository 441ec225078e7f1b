"""Prometheus metrics of one node process (its own registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from protocol.trust import TrustStore

__all__ = ["NodeMetrics"]


@dataclass
class NodeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.stored = Counter("palermo_node_stored", "Reports stored in the inbox", registry=r)
        self.refused = Counter(
            "palermo_node_refused", "Deliveries refused by this node", ["reason"], registry=r
        )
        self.published = Counter("palermo_node_published", "Reports published", registry=r)
        self.purged = Counter("palermo_node_purged", "Reports purged (expiry)", registry=r)
        self.publish_retries = Counter(
            "palermo_node_publish_retries",
            "Publishes sent again because JetStream did not acknowledge them in time",
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
