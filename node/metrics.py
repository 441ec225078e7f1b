"""Prometheus metrics of one node process (its own registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from protocol.metrics import RevocationListGauges
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
        # Directive (EU) 2023/977 art. 5(1) deadlines: "received" are requests this agency
        # owes an answer to, "sent" are answers owed to it (node/requests.py).
        self.requests_overdue = Gauge(
            "palermo_node_requests_overdue",
            "Unanswered requests past their deadline",
            ["direction"],
            registry=r,
        )
        self.requests_overdue_total = Counter(
            "palermo_node_requests_overdue_events",
            "Requests that went past their deadline unanswered (once each)",
            ["direction"],
            registry=r,
        )
        self.lane_deferred = Counter(
            "palermo_node_lane_deferred",
            "Urgent deliveries held back for a later turn because their originator had used "
            "its share of an urgent turn (lane fair share, decision 0032)",
            ["originator"],
            registry=r,
        )
        self.early = Counter(
            "palermo_node_early",
            "Looks at a delivery that came early by this node's clock and was put back, not "
            "refused: an embargoed one before its not_before, cause clock_behind (the server "
            "stored it after not_before: this node's clock is behind, check NTP) or "
            "released_early (a broker released it early); or one created more than 5 minutes "
            "ahead of this node's clock, cause created_ahead (the broker took it by its clock: "
            "this node's clock is behind, or the broker's ahead; check NTP, see the log)",
            ["cause"],
            registry=r,
        )
        self.revocation_list = RevocationListGauges(r)

    def watch_revocations(
        self, trust: TrustStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        """Read the revocation-list gauges from ``trust`` at each scrape."""
        self.revocation_list.watch(trust, clock)
