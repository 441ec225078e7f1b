"""Metrics every service exposes the same way (the broker's and the node's registries)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge

from .trust import TrustStore

__all__ = ["RevocationListGauges"]


class RevocationListGauges:
    """The overdue-revocation-list alarm (decision 0014): alert on the first gauge; the second
    warns before it happens."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.expired = Gauge(
            "palermo_revocation_list_expired",
            "1 if the revocation list held has passed its next_update (deliveries go on under it)",
            registry=registry,
        )
        self.seconds_left = Gauge(
            "palermo_revocation_list_seconds_to_next_update",
            "Seconds until the revocation list held passes its next_update (negative: overdue; "
            "+Inf: the list has no next_update)",
            registry=registry,
        )

    def watch(
        self, trust: TrustStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        """Read both gauges from ``trust`` at each scrape."""
        self.expired.set_function(lambda: float(trust.revocation_list_overdue(clock()) is not None))
        self.seconds_left.set_function(lambda: trust.revocation_seconds_left(clock()))
