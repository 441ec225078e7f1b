"""Disclosure control on a live stack (issue 16 item 2): ITA-GDF's node suppresses a return
before sealing, UNODC-STATS receives it with k in header and body; a hand-sealed return that
breaks its declared k is refused by UNODC-STATS's node with a receipt ITA-GDF's status shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.reports import seal_report
from node.service import Node
from palermo.devfed import DevFederation
from policies import LinkedReturnsDisclose
from protocol.envelope import seal
from protocol.transport import publish_subject
from schemas import EnvelopeHeader, Report
from tests.harness import running_federation, wait_for
from tests.node.test_stats_disclosure import statistics_report

ORIGINATOR, STATS = "ITA-GDF", "UNODC-STATS"


@pytest.fixture
async def nodes(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[dict[str, Node]]:
    async with running_federation(federated_url, fed, (ORIGINATOR, STATS), tmp_path) as running:
        yield running


async def test_a_return_arrives_suppressed_with_k_in_header_and_body(
    nodes: dict[str, Node],
) -> None:
    """The 3 and its complement are withheld at k=5 before sealing; both carry k=5."""
    sent = await nodes[ORIGINATOR].publish(statistics_report([3, 40, 30]), to=[STATS])
    assert 5 == sent.header.suppression_k
    stats = nodes[STATS]

    async def stored() -> bool:
        return stats.inbox.seen(sent.header.id)

    await wait_for(stored, within=20)
    entry, report = stats.inbox.show(sent.header.id)
    assert 5 == entry.header["suppression_k"]
    assert report is not None
    assert report.statistics is not None
    assert 5 == report.statistics.suppression_k
    assert [None, 40, None, 73] == [c.count for c in report.statistics.cells]


async def test_linked_returns_are_suppressed_together(nodes: dict[str, Node]) -> None:
    """The node links a return to the ones it has sent (decision 0025): a correction keeps the
    cells the first version withheld, a quarter after its month withholds them too, and a month
    whose small cell the quarter already gave is refused."""
    ita = nodes[ORIGINATOR]

    async def cells(counts: list[int], period: str = "2026-07") -> list[int | None]:
        sent = await ita.publish(statistics_report(counts, period=period), to=[STATS])
        statistics = ita.inbox.sent_report(sent.header.id).statistics
        assert statistics is not None
        return [c.count for c in statistics.cells]

    assert [None, 40, None, 73] == await cells([3, 40, 30])
    assert [None, 40, None, 77] == await cells([7, 40, 30])
    assert [None, 120, None, 217] == await cells([9, 120, 88], period="2026-Q3")
    with pytest.raises(LinkedReturnsDisclose, match=r"2026-08 must withhold .*border_type=land"):
        await cells([30, 3, 40], period="2026-08")


def _breaking(fed: DevFederation) -> tuple[EnvelopeHeader, bytes]:
    """A return that declares k=5 and still publishes a 3, signed by ITA-GDF."""
    data = statistics_report([3, 40, 30]).to_wire()
    data["statistics"]["suppression_k"] = 5
    report = Report.from_wire(data)
    ita = fed.agencies[ORIGINATOR]
    now = datetime.now(UTC)
    header = seal_report(
        report, ita.signing, [STATS], fed.trust_store(), fed.policy_store(), now
    ).header
    body = msgpack.packb(report.to_wire(), use_bin_type=True)
    return header, seal(header, body, ita.signing, [fed.agencies[STATS].encryption.public])


async def test_a_return_breaking_its_k_is_refused_with_a_receipt(
    nodes: dict[str, Node], fed: DevFederation
) -> None:
    """UNODC-STATS's node re-checks the cells; ITA-GDF's status shows disclosure_control."""
    ita, stats = nodes[ORIGINATOR], nodes[STATS]
    header, data = _breaking(fed)
    assert 5 == header.suppression_k
    await ita._publish(publish_subject(header), data, header.id, "inject a breaking return")
    row: dict[str, Any] = {}

    async def answered() -> bool:
        row.update((await ita.delivery_status(header.id)).get(STATS) or {})
        return bool(row)

    await wait_for(answered, within=30, every=0.2)
    assert "refused" == row["status"], row
    [reason] = row["reasons"]
    assert "disclosure_control" == reason["code"], row
    assert "publishes 3, below k=5" in reason["message"]
    assert not stats.inbox.seen(header.id)
