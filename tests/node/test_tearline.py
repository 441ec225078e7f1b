"""Tear-lines on a live stack (issue 15 item 6): the report to the partners policy allows, the
version without personal data to those refused only because of it, one status, one retraction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from node.ingest import IngestServer, IngestToken, generate_token
from node.service import Node
from palermo.devfed import DevFederation
from schemas import Handling, Report, parse_report
from schemas.errors import InputError, ReportInvalid
from tests.harness import example, running_federation, wait_for

AGENCIES = ("ITA-GDF", "MLT-AFM", "GRC-HCG", "LBY-DCIM", "ESP-GC", "TUR-CG", "AUS-ABF",
            "UNODC-STATS")  # fmt: skip
# Example 12 (ITA-GDF, AMBER to group:med-coastal, two suspects and a phone number): the EU
# partners have a data-protection agreement with ITA-GDF; LBY-DCIM and TUR-CG have agreements
# without one, and ITA-GDF's standing policy sends them no personal data.
FULL = ["ESP-GC", "GRC-HCG", "MLT-AFM"]
BELOW = ["LBY-DCIM", "TUR-CG"]


@pytest.fixture
async def nodes(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[dict[str, Node]]:
    """A broker and the nodes of AGENCIES, running on the example federation."""
    async with running_federation(federated_url, fed, AGENCIES, tmp_path) as running:
        yield running


def _alert(**update: object) -> Report:
    return example("12").model_copy(update=update)


async def _stored(nodes: dict[str, Node], holders: dict[str, str]) -> None:
    async def done() -> bool:
        return all(nodes[a].inbox.seen(envelope) for a, envelope in holders.items())

    await wait_for(done, within=20)


async def test_partners_without_data_protection_get_only_the_version_without_personal_data(
    nodes: dict[str, Node],
) -> None:
    """LBY-DCIM and TUR-CG hold the tear-line only, stubs without identifiers, refs the original;
    the EU partners hold the original with its persons."""
    ita = nodes["ITA-GDF"]
    sent = await ita.publish_tear_line(_alert())
    original, below = sent.original.header.id, sent.tear_line
    assert below is not None
    assert (FULL, BELOW, BELOW) == (sent.original.recipients, sent.candidates, below.recipients)
    assert [original] == below.header.refs
    assert [] == below.header.sections
    await _stored(nodes, {**dict.fromkeys(FULL, original), **dict.fromkeys(BELOW, below.header.id)})
    for agency in BELOW:
        assert not nodes[agency].inbox.seen(original)
        entry, report = nodes[agency].inbox.show(below.header.id)
        assert report is not None
        assert ([], [original]) == (report.identifiers, report.refs)
        assert [(p.ref, None, []) for p in _alert().persons] == [
            (p.ref, p.nationality, p.aliases) for p in report.persons
        ]
        assert "TLP:AMBER" in entry.codes
    for agency in FULL:
        assert not nodes[agency].inbox.seen(below.header.id)
        _, report = nodes[agency].inbox.show(original)
        assert _alert().identifiers == report.identifiers  # type: ignore[union-attr]


async def test_status_shows_the_original_and_the_tear_line_recipients_as_one_report(
    nodes: dict[str, Node],
) -> None:
    """'palermo status' of the original lists every recipient of both, the tear-line marked."""
    ita = nodes["ITA-GDF"]
    sent = await ita.publish_tear_line(_alert())
    assert sent.tear_line is not None
    original, below = sent.original.header.id, sent.tear_line.header.id

    async def receipted() -> bool:
        return set(FULL + BELOW) == set(await ita.delivery_status(original))

    await wait_for(receipted, within=20)
    rows = await ita.delivery_status(original)
    expected = {a: ("delivered", None) for a in FULL} | {a: ("delivered", below) for a in BELOW}
    assert expected == {a: (r["status"], r.get("tear_line")) for a, r in rows.items()}


async def test_retracting_the_original_retracts_the_tear_line(nodes: dict[str, Node]) -> None:
    """One retract: every holder of either version purges it and the status says so."""
    ita = nodes["ITA-GDF"]
    sent = await ita.publish_tear_line(_alert())
    assert sent.tear_line is not None
    original, below = sent.original.header.id, sent.tear_line.header.id
    await _stored(nodes, {**dict.fromkeys(FULL, original), **dict.fromkeys(BELOW, below)})
    retractions = await ita.retract_all(original, "wrong departure point")
    assert [[original], [below]] == [r.refs for r in retractions]
    assert [FULL, BELOW] == [r.recipients for r in retractions]

    async def purged() -> bool:
        rows = await ita.delivery_status(original)
        return {r.get("status") for r in rows.values()} == {"purged"} and len(rows) == 5

    await wait_for(purged, within=20)
    entry, content = nodes["LBY-DCIM"].inbox.show(below)
    assert (None, "retracted: wrong departure point") == (content, entry.purge_reason)


async def test_the_aggregate_only_member_gets_no_tear_line_it_gets_returns(
    nodes: dict[str, Node],
) -> None:
    """UNODC-STATS, refused for personal data, is refused the tear-line of an alert too (it takes
    only statistics); a statistics return never holds personal data (issue 16), so it needs no
    tear-line: the aggregate-only member gets the return itself. A partner refused for anything
    else (AUS-ABF: not in rel_to) never gets either."""
    ita = nodes["ITA-GDF"]
    handling = Handling(tlp="AMBER", rel_to=["group:med-coastal", "UNODC-STATS"])
    to = [*FULL, "UNODC-STATS", "AUS-ABF"]
    alert = await ita.publish_tear_line(_alert(), handling, to=to)
    assert alert.tear_line is None
    assert ["UNODC-STATS"] == alert.candidates
    assert not alert.decisions["UNODC-STATS"].allowed
    assert {"aggregate-only"} == {r.code for r in alert.decisions["UNODC-STATS"].reasons}
    assert "not-in-rel-to" in {r.code for r in alert.original.decisions["AUS-ABF"].reasons}

    with pytest.raises(ReportInvalid, match="persons"):
        parse_report({**example("22").to_wire(), "persons": [{"ref": "p1", "role": "driver"}]})
    stats = await ita.publish_tear_line(example("22"), to=to)
    assert (None, []) == (stats.tear_line, stats.candidates)
    assert "UNODC-STATS" in stats.original.recipients
    await _stored(nodes, {"UNODC-STATS": stats.original.header.id})
    assert not nodes["UNODC-STATS"].inbox.seen(alert.original.header.id)
    assert 0 == nodes["AUS-ABF"].received


async def test_no_tear_line_when_nobody_was_refused_for_personal_data(
    nodes: dict[str, Node],
) -> None:
    """A report without personal data is published as it is; no second envelope."""
    sent = await nodes["ITA-GDF"].publish_tear_line(example("01"))
    assert (None, []) == (sent.tear_line, sent.candidates)
    assert [] == nodes["ITA-GDF"].inbox.tear_lines(sent.original.header.id)


async def test_no_tear_line_without_a_report_to_cut_it_from(nodes: dict[str, Node]) -> None:
    """Only partners without data protection: nothing is published, and the error says how to
    reach them."""
    ita = nodes["ITA-GDF"]
    with pytest.raises(InputError, match="report of its own for LBY-DCIM, TUR-CG"):
        await ita.publish_tear_line(_alert(), to=BELOW)
    assert 0 == (await ita.js.stream_info("PLM_PUB")).state.messages


async def test_ingest_api_publishes_the_tear_line_on_request(nodes: dict[str, Node]) -> None:
    """POST /v1/reports?tear_line=true answers with both envelopes; a bad flag is a 400."""
    ita = nodes["ITA-GDF"]
    token = generate_token()
    server = IngestServer(port=0, token=IngestToken(token))
    (url,) = await server.start(ita.http_ingest)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.post(f"{url}?tear_line=yes", json=_alert().to_wire()) as resp:
                bad = resp.status
            async with http.post(f"{url}?tear_line=true", json=_alert().to_wire()) as resp:
                status, answer = resp.status, await resp.json()
    finally:
        await server.stop()
    assert 400 == bad
    assert 202 == status
    assert (FULL, BELOW) == (answer["recipients"], answer["tear_line"]["recipients"])
    assert [answer["tear_line"]["id"]] == ita.inbox.tear_lines(answer["id"])


async def test_a_tear_line_publish_takes_every_rule_of_publish(nodes: dict[str, Node]) -> None:
    """publish --tear-line goes through the same preparation as publish: a statistical return
    is disclosure-controlled (k in the signed header), and an embargoed report is decided as of
    its release, so the partners below the line get their version then too."""
    ita = nodes["ITA-GDF"]
    stats = await ita.publish_tear_line(example("22"))
    assert stats.original.header.suppression_k is not None
    assert stats.original.header.suppression_k >= 5
    later = datetime.now(UTC) + timedelta(minutes=5)
    alert = _alert()
    embargoed = alert.handling.model_copy(update={"not_before": later})
    held = await ita.publish_tear_line(alert, embargoed)
    assert held.tear_line is not None
    assert (FULL, BELOW) == (held.original.recipients, held.tear_line.recipients)
