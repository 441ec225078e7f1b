"""An embargoed delivery that reaches the node more than RELEASE_SKEW before its ``not_before`` by
the node's own clock: the node's clock behind the server's, or a broker that released it early.

It is kept, never refused for good: put back (a nak with a delay) until ``not_before`` by this
node's clock, looked at again at least every ``DeliveryOptions.early_recheck_s``; until then
nothing is stored and no receipt is sent, a warning says which of the two it is (check NTP on
this node, or a broker released it early) and ``palermo_node_early_total{cause}`` counts each look.

A real nats-server and MLT-AFM's node; the deliveries are written straight into PLM_DLV (as the
broker writes them, or as a broker releasing early could) and taken by ``Node.handle``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from node.reports import SealedReport, seal_report
from node.service import DeliveryOptions, Node
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from tests.harness import (
    connect_node,
    example,
    first_delivery,
    receipts_about,
    setup_federation,
)

ME = "MLT-AFM"
FED = DevFederation.build(datetime.now(UTC) - timedelta(days=1))  # valid when sealed 2 h ago
RECHECK_S = 0.5  # looked at again this soon in these tests (5 minutes by default)


@pytest.fixture
async def node(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Node]:
    """MLT-AFM's node (not running: the test hands it each delivery) on a live server."""
    await setup_federation(nats_server.client_url, FED)
    delivery = DeliveryOptions(early_recheck_s=RECHECK_S)
    async with connect_node(nats_server.client_url, FED, ME, tmp_path, delivery=delivery) as n:
        yield n


def _sealed(not_before: datetime, created: datetime | None = None) -> SealedReport:
    """ITA-GDF's example report, embargoed until ``not_before``, sealed for MLT-AFM (at
    ``created``, now by default)."""
    report = example("01")
    report = report.model_copy(
        update={"handling": report.handling.model_copy(update={"not_before": not_before})}
    )
    trust = FED.trust_store()
    return seal_report(report, FED.agencies[report.originator].signing, [ME], trust,
                       FED.policy_store(trust), created or datetime.now(UTC))  # fmt: skip


async def _delivered(
    node: Node, sealed: SealedReport
) -> tuple[JetStreamContext.PullSubscription, Msg]:
    """``sealed`` written into PLM_DLV for MLT-AFM, and its first delivery."""
    return await first_delivery(node.js, ME, sealed.header, sealed.data)


async def _receipts(node: Node, sealed: SealedReport) -> list[tuple[str, str | None]]:
    return await receipts_about(node.nc, ME, sealed.header)


def _early(node: Node, cause: str) -> float:
    value = node.metrics.registry.get_sample_value("palermo_node_early_total", {"cause": cause})
    return value or 0.0


async def test_a_delivery_early_by_the_nodes_own_clock_is_kept_until_due(node: Node) -> None:
    """Released at its not_before by the server's clock, it reaches a node whose clock is an
    hour behind: not refused, not stored, no receipt, a warning to check NTP; looked at again
    (still early: put back again), and stored once this node's clock reaches not_before."""
    now = datetime.now(UTC)
    # Sealed two hours ago (held since): not "created in the future" by this node's clock.
    sealed = _sealed(now.replace(microsecond=0) - timedelta(seconds=1), now - timedelta(hours=2))
    behind = now - timedelta(hours=1)
    node.clock = lambda: behind
    sub, msg = await _delivered(node, sealed)
    with structlog.testing.capture_logs() as logs:
        assert "early" == await node.handle(msg)
    assert not node.inbox.seen(sealed.header.id)
    assert [] == await _receipts(node, sealed)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert "check NTP" in warning["event"], warning
    assert (sealed.header.id, 1.0, 0.0) == (
        warning["envelope"],
        _early(node, "clock_behind"),
        _early(node, "released_early"),
    )
    assert warning["behind_s"] >= 3600, warning
    [again] = await sub.fetch(1, timeout=10)  # back after early_recheck_s, not an hour
    assert "early" == await node.handle(again)
    assert 2.0 == _early(node, "clock_behind")
    node.clock = lambda: datetime.now(UTC)  # the operator fixed NTP
    [due] = await sub.fetch(1, timeout=10)
    assert "stored" == await node.handle(due)
    assert [("delivered", None)] == await _receipts(node, sealed)
    await sub.unsubscribe()


async def test_a_copy_released_early_is_held_until_not_before(node: Node) -> None:
    """A copy in PLM_DLV an hour before its not_before (a broker releasing early): the node's
    clock is right, so the warning says it was released early; the report is not stored nor
    receipted before not_before by this node's clock, and is stored then."""
    not_before = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    sealed = _sealed(not_before)
    sub, msg = await _delivered(node, sealed)
    with structlog.testing.capture_logs() as logs:
        assert "early" == await node.handle(msg)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert "released before its not_before" in warning["event"], warning
    assert (1.0, 0.0) == (_early(node, "released_early"), _early(node, "clock_behind"))
    assert not node.inbox.seen(sealed.header.id)
    assert [] == await _receipts(node, sealed)
    node.clock = lambda: not_before - timedelta(minutes=3)  # nearer, still early here
    [again] = await sub.fetch(1, timeout=10)
    assert "early" == await node.handle(again)
    assert not node.inbox.seen(sealed.header.id)
    node.clock = lambda: not_before
    [due] = await sub.fetch(1, timeout=10)
    assert "stored" == await node.handle(due)
    assert [("delivered", None)] == await _receipts(node, sealed)
    await sub.unsubscribe()
