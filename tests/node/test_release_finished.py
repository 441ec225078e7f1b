"""Release requests, finished (issue 15 item 8) on a live stack: the release copy refs the
original and goes to the granted target only, with the original's handling; the broker's audit
records release-used; the requester sees each decision; a retracted report is never released."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.service import Node
from palermo.devfed import DevFederation
from schemas.errors import InputError
from tests.harness import example, running_federation, stream_messages, wait_for

AGENCIES = ("ITA-GDF", "MLT-AFM", "AUS-ABF")


@pytest.fixture
async def nodes(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[dict[str, Node]]:
    async with running_federation(federated_url, fed, AGENCIES, tmp_path) as running:
        yield running


async def _decisions(node: Node, want: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    async def decided() -> bool:
        nonlocal rows
        rows = await node.release_status()
        return sum(r["decision"] != "pending" for r in rows) >= want

    await wait_for(decided, within=20)
    return rows


async def test_a_grant_is_one_release_that_refs_the_original_audited_and_seen_by_the_requester(
    nodes: dict[str, Node],
) -> None:
    """MLT-AFM asks twice to pass ITA-GDF's report to AUS-ABF. Before any decision its status
    says pending; the grant seals a copy for AUS-ABF only, refs the original, keeps the
    original's handling (AUS-ABF added to rel_to, nothing else); the audit flags the delivery
    release-used; MLT-AFM sees granted with the release id. ITA-GDF then retracts the report:
    the second request can no longer be granted, and its denial reaches MLT-AFM with the reason."""
    ita, mlt, aus = nodes["ITA-GDF"], nodes["MLT-AFM"], nodes["AUS-ABF"]
    sealed = await ita.publish(example("01"))
    original = sealed.header
    assert "AUS-ABF" not in original.recipients

    async def at_mlt() -> bool:
        return mlt.inbox.seen(original.id)

    await wait_for(at_mlt, within=20)
    to_aus = await mlt.request_release(original.id, "AUS-ABF", "joint operation on the route")
    again = await mlt.request_release(original.id, "AUS-ABF", "interception at sea")

    async def asked() -> bool:
        return len(ita.inbox.release_requests()) == 2

    await wait_for(asked, within=20)
    assert {to_aus.id: "pending", again.id: "pending"} == {
        r["id"]: r["state"] for r in ita.inbox.release_requests()
    }
    assert {to_aus.id: "pending", again.id: "pending"} == {
        r["request"]: r["decision"] for r in await mlt.release_status()
    }

    release_id = await ita.decide_release(to_aus.id, grant=True, reason="duty officer")
    assert release_id is not None
    release = ita.inbox.sent_header(release_id)
    assert (["AUS-ABF"], "release") == (release.recipients, release.kind.value)
    assert original.id in release.refs
    widened = original.handling.model_copy(
        update={"rel_to": sorted({*original.handling.rel_to, "AUS-ABF"})}
    )
    assert widened == release.handling

    async def at_aus() -> bool:
        return aus.inbox.seen(release_id)

    await wait_for(at_aus, within=20)
    audit = [json.loads(m.data) for m in await stream_messages(ita.nc, "PLM_AUDIT")]
    [record] = [
        r for e in audit if e["type"] == "decisions" for r in e["records"]
        if r["envelope"] == release_id
    ]  # fmt: skip
    assert [("AUS-ABF", "allow", ["release-used"])] == [
        (d["recipient"], d["decision"], d.get("audit_flags")) for d in record["decisions"]
    ]

    await ita.retract(original.id, "superseded")

    async def purged_at_aus() -> bool:
        # The release target holds a copy: the retraction of the original reaches it too.
        entry, report = aus.inbox.show(release_id)
        return report is None and entry.purged_ms is not None

    await wait_for(purged_at_aus, within=20)
    with pytest.raises(InputError, match="was retracted"):
        await ita.decide_release(again.id, grant=True)
    await ita.decide_release(again.id, grant=False, reason="report withdrawn")
    rows = await _decisions(mlt, 2)
    seen = {r["request"]: (r["decision"], r["release"], r["reason"]) for r in rows}
    assert ("granted", release_id, "duty officer") == seen[to_aus.id]
    assert ("denied", None, "report withdrawn") == seen[again.id]
