"""A release granted for a partner revoked since it was requested (found by the stateful test)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from palermo.devfed import DevFederation
from protocol.trust import ROOT, RevocationEntry, RevocationList, sign_document
from schemas.errors import InputError
from schemas.export import parse_report
from tests.harness import Live, read_all, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"


async def test_grant_for_a_revoked_target_is_refused_and_stays_pending(tmp_path: Path) -> None:
    """MLT-AFM asks to pass a report to AUS-ABF, AUS-ABF is revoked, the officer grants: a typed
    error, nothing sent, the request still pending; denying it then tells MLT-AFM."""
    async with _report_at_mlt(tmp_path) as (live, fed, report_id):
        ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
        await mlt.request_release(report_id, "AUS-ABF", "joint operation")

        async def asked() -> bool:
            return len(ita.inbox.release_requests("pending")) == 1

        await wait_until("the request reaches ITA-GDF", asked)
        await _revoke_aus(live, fed)
        [request] = ita.inbox.release_requests()
        sent_before = (await ita.js.stream_info("PLM_PUB")).state.last_seq
        with pytest.raises(InputError, match="AUS-ABF was revoked"):
            await ita.decide_release(request["id"], grant=True)
        assert sent_before == (await ita.js.stream_info("PLM_PUB")).state.last_seq
        assert ["pending"] == [r["state"] for r in ita.inbox.release_requests()]
        assert (
            await ita.decide_release(request["id"], grant=False, reason="AUS-ABF revoked") is None
        )
        answers = await read_all(mlt.nc, "PLM_RCPT", "plm.rcpt.MLT-AFM.release.>")
        assert [("AUS-ABF", "denied")] == [
            (d["target"], d["decision"]) for d in (json.loads(m.data)["document"] for m in answers)
        ]


async def test_request_to_release_to_a_revoked_agency_is_denied_on_arrival(
    tmp_path: Path,
) -> None:
    """AUS-ABF is already revoked when MLT-AFM asks to pass a report to it: ITA-GDF's node
    denies the request at once (no officer decision waits on it) and MLT-AFM is told why."""
    async with _report_at_mlt(tmp_path) as (live, fed, report_id):
        ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
        await _revoke_aus(live, fed)
        await mlt.request_release(report_id, "AUS-ABF", "joint operation")

        async def answered() -> bool:
            return bool(await read_all(mlt.nc, "PLM_RCPT", "plm.rcpt.MLT-AFM.release.>"))

        await wait_until("MLT-AFM gets the answer", answered)
        [request] = ita.inbox.release_requests()
        assert "denied" == request["state"]
        assert [] == ita.inbox.release_requests("pending")
        [answer] = await read_all(mlt.nc, "PLM_RCPT", "plm.rcpt.MLT-AFM.release.>")
        document = json.loads(answer.data)["document"]
        assert ("AUS-ABF", "denied") == (document["target"], document["decision"])
        assert "AUS-ABF was revoked" in json.dumps(document)


@asynccontextmanager
async def _report_at_mlt(tmp_path: Path) -> AsyncIterator[tuple[Live, DevFederation, str]]:
    """A live federation in which ITA-GDF published example 01 and MLT-AFM stored it: yields
    (live, federation, report id), and stops everything on exit."""
    fed = DevFederation.build(datetime.now(UTC))
    live = Live(tmp_path, fed)
    await live.start()
    try:
        ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
        sealed = await ita.publish(parse_report(next(EXAMPLES.glob("01*.json")).read_text()))

        async def at_mlt() -> bool:
            return mlt.inbox.seen(sealed.header.id)

        await wait_until("the report reaches MLT-AFM", at_mlt)
        yield live, fed, sealed.header.id
    finally:
        await live.close()


async def _revoke_aus(live: Live, fed: DevFederation) -> None:
    """The root revokes AUS-ABF; returns once ITA-GDF's node knows."""
    now = datetime.now(UTC)
    revoked = RevocationList(seq=2, issued=now, entries=[
        RevocationEntry(agency="AUS-ABF", reason="compromised", revoked_at=now)])  # fmt: skip
    await live.directory.publish(sign_document(revoked, fed.root, ROOT))

    async def known() -> bool:
        return live.nodes["ITA-GDF"].trust.revocations.seq == 2

    await wait_until("ITA-GDF knows of the revocation", known)
