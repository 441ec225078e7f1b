"""A delivery whose signed ``created`` is more than the envelope's clock-skew tolerance (5
minutes) ahead of the receiving node's clock.

Every copy in PLM_DLV was put there by the broker, which refuses an envelope created more than 5
minutes ahead of its own clock: so such a copy means this node's clock is behind (or the
broker's is ahead), a fault of the receiving side, not of the originator, and usually transient
(NTP fixes it). It is kept, never refused for it: put back (a nak with a delay) until ``created``
minus the tolerance by this node's clock, looked at again at least every
``DeliveryOptions.early_recheck_s``; until then nothing is decided, decrypted, stored or
receipted, a warning says what to fix and ``palermo_node_early_total{cause="created_ahead"}``
counts each look.

Bounded: a copy created more than ``max_envelope_age`` ahead is refused as before
(``clock_skew``), and the wait is decided on a header whose signature verified: a copy with a
broken signature is refused, never parked.

A real nats-server and MLT-AFM's node; the deliveries are written straight into PLM_DLV (as the
broker writes them) and taken by ``Node.handle``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from node._receiving import CLOCK_SKEW, created_wait
from node.reports import SealedReport, seal_report
from node.service import DeliveryOptions, Node
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from tests.harness import (
    connect_node,
    example,
    first_delivery,
    receipts_about,
    running_broker,
    running_nodes,
    setup_federation,
    wait_for,
)

ME = "MLT-AFM"
FED = DevFederation.build(datetime.now(UTC) - timedelta(days=1))
RECHECK_S = 0.5  # looked at again this soon in these tests (5 minutes by default)


@pytest.fixture
async def node(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Node]:
    """MLT-AFM's node (not running: the test hands it each delivery) on a live server."""
    await setup_federation(nats_server.client_url, FED)
    delivery = DeliveryOptions(early_recheck_s=RECHECK_S)
    async with connect_node(nats_server.client_url, FED, ME, tmp_path, delivery=delivery) as n:
        yield n


def _sealed(created: datetime) -> SealedReport:
    """ITA-GDF's example report (not embargoed), sealed for MLT-AFM at ``created``."""
    report = example("01")
    trust = FED.trust_store()
    return seal_report(report, FED.agencies[report.originator].signing, [ME], trust,
                       FED.policy_store(trust), created)  # fmt: skip


async def _delivered(
    node: Node, sealed: SealedReport, data: bytes | None = None
) -> tuple[JetStreamContext.PullSubscription, Msg]:
    """``sealed`` (or ``data`` on its subject) written into PLM_DLV for MLT-AFM, and its first
    delivery."""
    return await first_delivery(node.js, ME, sealed.header, data or sealed.data)


async def _receipts(node: Node, sealed: SealedReport) -> list[tuple[str, str | None]]:
    return await receipts_about(node.nc, ME, sealed.header)


def _early(node: Node, cause: str = "created_ahead") -> float:
    value = node.metrics.registry.get_sample_value("palermo_node_early_total", {"cause": cause})
    return value or 0.0


def _refused(node: Node, reason: str) -> float:
    value = node.metrics.registry.get_sample_value("palermo_node_refused_total", {"reason": reason})
    return value or 0.0


async def test_a_report_reaching_a_node_whose_clock_is_behind_is_kept_until_due(
    node: Node,
) -> None:
    """Sealed and delivered now; this node's clock is 20 minutes behind: not refused (it was
    lost for this partner before), not stored, no receipt, a warning to check NTP on this node;
    looked at again (still ahead: put back again); stored and receipted once, exactly once,
    when the clock has caught up."""
    now = datetime.now(UTC)
    sealed = _sealed(now)
    node.clock = lambda: now - timedelta(minutes=20)
    sub, msg = await _delivered(node, sealed)
    with structlog.testing.capture_logs() as logs:
        assert "early" == await node.handle(msg)
    assert not node.inbox.seen(sealed.header.id)
    assert [] == await _receipts(node, sealed)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert "this node's clock is behind" in warning["event"], warning
    assert "check NTP on this node" in warning["event"], warning
    assert (sealed.header.id, "created_ahead") == (warning["envelope"], warning["cause"])
    # The server stored it now: this node is behind by at least 20 minutes (not 15).
    assert 20 * 60 - 5 <= warning["behind_s"] <= 20 * 60 + 60, warning
    assert 1.0 == _early(node)
    assert (0.0, 0.0) == (_early(node, "clock_behind"), _refused(node, "clock_skew"))
    [again] = await sub.fetch(1, timeout=10)  # back after early_recheck_s, not 15 minutes
    node.clock = lambda: now - timedelta(minutes=6)  # nearer, still more than 5 minutes
    assert "early" == await node.handle(again)
    assert (2.0, False) == (_early(node), node.inbox.seen(sealed.header.id))
    node.clock = lambda: now - timedelta(minutes=4)  # NTP fixed it, to within the tolerance
    [due] = await sub.fetch(1, timeout=10)
    assert "stored" == await node.handle(due)
    assert [("delivered", None)] == await _receipts(node, sealed)
    assert 2.0 == _early(node)
    with pytest.raises(TimeoutError):  # acked: never comes again
        await sub.fetch(1, timeout=RECHECK_S * 4)
    await sub.unsubscribe()


async def test_a_copy_the_server_stored_before_it_was_due_names_the_broker_clock(
    node: Node,
) -> None:
    """Created 20 minutes ahead of this node's clock and of the NATS server's (an originator and
    a broker whose clocks are ahead, or a copy written to PLM_DLV directly): kept the same way,
    and the warning does not blame this node's clock."""
    now = datetime.now(UTC)
    node.clock = lambda: now
    sealed = _sealed(now + timedelta(minutes=20))
    sub, msg = await _delivered(node, sealed)
    with structlog.testing.capture_logs() as logs:
        assert "early" == await node.handle(msg)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert "stored it before created" in warning["event"], warning
    assert "this node's clock is behind" not in warning["event"], warning
    assert (1.0, False) == (_early(node), node.inbox.seen(sealed.header.id))
    node.clock = lambda: now + timedelta(minutes=16)
    [due] = await sub.fetch(1, timeout=10)
    assert "stored" == await node.handle(due)
    assert [("delivered", None)] == await _receipts(node, sealed)
    await sub.unsubscribe()


async def test_a_copy_created_beyond_max_envelope_age_ahead_is_refused(node: Node) -> None:
    """Created further ahead than any genuine delivery can be (more than ``max_envelope_age``,
    38 days: no copy stays in PLM_DLV that long) is a broken or hostile envelope, not a clock
    to wait for: refused (``clock_skew``) and terminated as before, never parked."""
    now = datetime.now(UTC)
    node.clock = lambda: now
    sealed = _sealed(now + node.max_envelope_age + timedelta(minutes=6))
    sub, msg = await _delivered(node, sealed)
    with structlog.testing.capture_logs() as logs:
        assert "clock_skew" == await node.handle(msg)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert "in the future" in warning["reason"], warning
    assert (0.0, 1.0) == (_early(node), _refused(node, "clock_skew"))
    assert not node.inbox.seen(sealed.header.id)
    with pytest.raises(TimeoutError):  # terminated: never comes again
        await sub.fetch(1, timeout=RECHECK_S * 4)
    await sub.unsubscribe()


async def test_a_copy_created_ahead_with_a_broken_signature_is_refused_not_parked(
    node: Node,
) -> None:
    """The wait is decided on a verified header only: a copy 20 minutes ahead whose signature
    does not verify is refused for its signature, with no receipt, never put back."""
    now = datetime.now(UTC)
    node.clock = lambda: now - timedelta(minutes=20)
    sealed = _sealed(now)
    forged = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    sub, msg = await _delivered(node, sealed, forged)
    assert "auth_failed" == await node.handle(msg)
    assert (0.0, 1.0) == (_early(node), _refused(node, "auth_failed"))
    assert [] == await _receipts(node, sealed)
    with pytest.raises(TimeoutError):
        await sub.fetch(1, timeout=RECHECK_S * 4)
    await sub.unsubscribe()


async def test_via_the_broker_a_node_20_minutes_behind_stores_the_report_once_its_clock_is_right(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """End to end: ITA-GDF publishes a report, the broker (its clock right) delivers it, and
    MLT-AFM's running node, its clock 20 minutes behind, keeps it: looked at again and again,
    neither stored nor refused (ITA-GDF hears nothing yet); once NTP has fixed the clock it is
    stored and ITA-GDF gets MLT-AFM's 'delivered' receipt."""
    await setup_federation(nats_server.client_url, FED)
    async with (
        running_nodes(nats_server.client_url, FED, ("ITA-GDF", ME), tmp_path) as nodes,
        running_broker(nats_server.client_url, FED),
    ):
        ita, mlt = nodes["ITA-GDF"], nodes[ME]
        mlt.delivery = replace(mlt.delivery, early_recheck_s=RECHECK_S)
        mlt.clock = lambda: datetime.now(UTC) - timedelta(minutes=20)
        sealed = await ita.publish(example("01"), to=[ME])

        async def kept() -> bool:
            return _early(mlt) >= 2

        await wait_for(kept, within=30)
        assert not mlt.inbox.seen(sealed.header.id)
        assert ME not in await ita.delivery_status(sealed.header.id)  # no refusal, no receipt
        assert 0.0 == _refused(mlt, "clock_skew")
        mlt.clock = lambda: datetime.now(UTC)  # NTP fixed

        async def delivered() -> bool:
            row = (await ita.delivery_status(sealed.header.id)).get(ME, {})
            return row.get("status") == "delivered"

        await wait_for(delivered, within=20)
        assert (1, 0) == (mlt.received, mlt.refused)


T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MOST = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("created", "wait"),
    [
        (T - timedelta(hours=1), None),
        (T + CLOCK_SKEW, None),  # within the tolerance: due now
        (T + CLOCK_SKEW + timedelta(seconds=1), timedelta(seconds=1)),
        (T + CLOCK_SKEW + MOST, MOST),
        # However far behind this node's clock is, looked at again after at most MOST.
        (T + timedelta(days=3), MOST),
    ],
)
def test_created_ahead_is_put_back_until_within_the_tolerance_at_most_a_few_minutes_at_a_time(
    created: datetime, wait: timedelta | None
) -> None:
    """Put back until ``created`` minus the 5-minute tolerance, in steps of at most ``most``."""
    assert wait == created_wait(created, T, MOST)
