"""deny_to and all-members on a live federation (issue 15 items 4 and 5): a real nats-server,
the broker and one node per agency of the example federation, plus a second Libyan agency
(LBY-CG), so that ``country:LBY`` has two agencies to exclude.

The three enforcement points each get an envelope the one before should have stopped: the
originator's node seals for nobody excluded; an envelope sealed for an excluded agency anyway
(a doctored or buggy node) is denied per recipient by the broker; one written straight into
the excluded agency's delivery subject (a compromised broker) is refused by its node with a
signed refusal receipt. A release never reaches an excluded agency; all-members reaches every
member policy allows, subscribed to the route or not.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from node.reports import seal_report
from palermo.devfed import DevFederation
from policies import Federation
from protocol.envelope import seal
from protocol.transport import deliver_subject, publish_subject
from schemas import EnvelopeHeader, Handling, Report, Route, new_uuid7, partition
from schemas.errors import InputError
from tests.harness import EXAMPLES, PALERMO, Live, example, read_all, wait_until

EXCLUDED = Handling(tlp="GREEN", deny_to=["country:LBY"])
LIBYAN = {"LBY-DCIM", "LBY-CG"}
MED_COASTAL = {"ESP-GC", "GRC-HCG", "LBY-CG", "LBY-DCIM", "MLT-AFM", "TUR-CG"}


def _federation() -> DevFederation:
    """The example federation with LBY-CG (Libya, med-coastal) admitted."""
    data: dict[str, Any] = Federation.from_toml(
        (Path(__file__).resolve().parents[2] / "policies/examples/federation.toml").read_text()
    ).model_dump(mode="json")
    data["members"].append(
        {"id": "LBY-CG", "name": "Libyan Coast Guard", "country": "LBY",
         "groups": ["med-coastal"], "accreditation": "restricted"}
    )  # fmt: skip
    return DevFederation.build(datetime.now(UTC), federation=Federation.model_validate(data))


@asynccontextmanager
async def _live(tmp_path: Path) -> AsyncIterator[Live]:
    live = Live(tmp_path, _federation())
    await live.start()
    try:
        yield live
    finally:
        await live.close()


def _doctored(live: Live, report: Report, recipients: list[str]) -> tuple[EnvelopeHeader, bytes]:
    """ITA-GDF's report sealed for ``recipients`` without asking the policy, as a doctored or
    buggy node would: validly signed, deny_to in the header, an excluded agency inside."""
    ita = live.fed.agencies["ITA-GDF"]
    parts = partition(report)
    assert [] == parts.sections()
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.signing.kid, created=datetime.now(UTC),
        kind=report.kind, priority=report.priority, route=report.route,
        category=report.category, handling=report.handling, schema_=report.schema_,
        recipients=recipients,
    )  # fmt: skip
    keys = [live.fed.agencies[a].encryption.public for a in header.recipients]
    return header, seal(header, msgpack.packb(parts.main, use_bin_type=True), ita.signing, keys)


async def _receipts(live: Live, envelope: str, agency: str) -> list[tuple[str, str | None]]:
    subject = f"plm.rcpt.ITA-GDF.receipt.{agency}"
    docs = [json.loads(m.data)["document"] for m in await read_all(live.nc, "PLM_RCPT", subject)]
    return [(d["status"], d.get("code")) for d in docs if d["envelope"] == envelope]


async def test_a_country_exclusion_holds_at_all_three_points(tmp_path: Path) -> None:
    """deny_to country:LBY: the node seals for neither Libyan agency (their decisions say
    denied-by-originator); the broker dead-letters a copy for LBY-DCIM that a doctored node
    sealed, and delivers the same envelope to MLT-AFM; LBY-CG's node refuses a copy written
    straight into its delivery subject and tells ITA-GDF why."""
    async with _live(tmp_path) as live:
        ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
        report = example("01").model_copy(update={"handling": EXCLUDED})

        # 1. The originator's node: both Libyan agencies subscribe to central-med.
        sealed = await ita.publish(report)
        assert LIBYAN <= set(sealed.decisions)
        assert set() == LIBYAN & set(sealed.recipients)
        assert "MLT-AFM" in sealed.recipients
        for agency in LIBYAN:
            assert ["denied-by-originator"] == [r.code for r in sealed.decisions[agency].reasons]

        async def delivered() -> bool:
            return all(live.nodes[a].inbox.seen(sealed.header.id) for a in sealed.recipients)

        await wait_until("every allowed recipient stores the report", delivered)
        _, stored = mlt.inbox.show(sealed.header.id)
        assert stored is not None
        assert ["country:LBY"] == stored.handling.deny_to

        # 2. The broker: an envelope sealed for LBY-DCIM against the signed deny_to.
        header, data = _doctored(live, report, ["LBY-DCIM", "MLT-AFM"])
        await live.js.publish(publish_subject(header), data, headers={"Nats-Msg-Id": header.id})

        async def dead_lettered() -> list[Any]:
            dead = await read_all(live.nc, "PLM_DEAD", "plm.dead.ITA-GDF.policy")
            return [m for m in dead if m.headers.get("Palermo-Envelope-Id") == header.id]

        async def judged() -> bool:
            return bool(await dead_lettered()) and mlt.inbox.seen(header.id)

        await wait_until("the broker denies LBY-DCIM's copy and delivers MLT-AFM's", judged)
        [dead] = await dead_lettered()
        assert ("LBY-DCIM", "denied-by-originator") == (
            dead.headers["Palermo-Recipient"],
            dead.headers["Palermo-Reason-Code"],
        )
        copies = await read_all(live.nc, "PLM_DLV", "plm.dlv.LBY-DCIM.>")
        assert [] == [m for m in copies if m.headers.get("Nats-Msg-Id", "").startswith(header.id)]
        assert not live.nodes["LBY-DCIM"].inbox.seen(header.id)

        # 3. The receiving node: the same kind of envelope, as a compromised broker would
        # deliver it to LBY-CG.
        header, data = _doctored(live, report, ["LBY-CG"])
        await live.js.publish(
            deliver_subject("LBY-CG", header), data, headers={"Nats-Msg-Id": f"{header.id}.x"}
        )

        async def refused() -> bool:
            return bool(await _receipts(live, header.id, "LBY-CG"))

        await wait_until("LBY-CG's node refuses and says so", refused)
        assert [("refused", "local_policy")] == await _receipts(live, header.id, "LBY-CG")
        assert not live.nodes["LBY-CG"].inbox.seen(header.id)
        assert 0 == sum(n for (_, agency), n in live.stored.items() if agency in LIBYAN)


async def test_a_release_never_reaches_an_excluded_agency(tmp_path: Path) -> None:
    """MLT-AFM holds an AMBER+STRICT report that excludes country:LBY and asks ITA-GDF to pass
    it to LBY-DCIM: ITA-GDF's node refuses on arrival (no officer is asked) and MLT-AFM is told
    the exclusion; a release sealed for LBY-DCIM anyway is refused at sealing."""
    async with _live(tmp_path) as live:
        ita, mlt = live.nodes["ITA-GDF"], live.nodes["MLT-AFM"]
        strict = Handling(tlp="AMBER+STRICT", rel_to=["MLT-AFM"], deny_to=["country:LBY"])
        sealed = await ita.publish(example("01").model_copy(update={"handling": strict}),
                                   to=["MLT-AFM"])  # fmt: skip

        async def at_mlt() -> bool:
            return mlt.inbox.seen(sealed.header.id)

        await wait_until("MLT-AFM stores the report", at_mlt)
        await mlt.request_release(sealed.header.id, "LBY-DCIM", "joint operation at sea")

        async def answered() -> list[dict[str, Any]]:
            answers = await read_all(mlt.nc, "PLM_RCPT", "plm.rcpt.MLT-AFM.release.>")
            return [json.loads(m.data)["document"] for m in answers]

        await wait_until("MLT-AFM gets ITA-GDF's answer", lambda: _truthy(answered()))
        [answer] = await answered()
        assert ("LBY-DCIM", "denied") == (answer["target"], answer["decision"])
        assert "ITA-GDF excludes LBY-DCIM" in answer["reason"]
        assert [] == ita.inbox.release_requests("pending")

        # Even past the request check: the release report keeps deny_to, so it cannot be
        # sealed for LBY-DCIM.
        [row] = ita.inbox.release_requests()
        release = ita._release_report(row)
        assert ["country:LBY"] == release.handling.deny_to
        with pytest.raises(InputError, match=r"denied|excludes"):
            seal_report(release, ita.identity.signing, ["LBY-DCIM"], ita.trust, ita.policy,
                        datetime.now(UTC))  # fmt: skip
        assert 0 == live.stored[(sealed.header.id, "LBY-DCIM")]


async def test_all_members_reaches_every_allowed_member_subscribed_or_not(tmp_path: Path) -> None:
    """A route: other report with rel_to all-members goes to every member in good standing that
    policy allows, though nobody subscribes to 'other' (AUS-ABF and IDN-IMI take only Bali
    Process routes), and the suspended ALB-BP is not even a candidate;
    with --to all-members (the API's to=["all-members"]) an AMBER report is considered for
    every member and goes to those its rel_to and agreements allow."""
    async with _live(tmp_path) as live:
        ita = live.nodes["ITA-GDF"]
        # In good standing: not ITA-GDF itself, nor ALB-BP (suspended in the example policy).
        everyone = sorted(set(live.nodes) - {"ITA-GDF", "ALB-BP"})
        report = example("01").model_copy(
            update={"route": Route.OTHER, "handling": Handling(tlp="GREEN", rel_to=["all-members"])}
        )
        assert [] == ita.interested(report)
        sealed = await ita.publish(report)
        # Everyone but the aggregate-only statistics body (it takes only statistics).
        assert everyone == sorted(sealed.decisions)
        assert [a for a in everyone if a != "UNODC-STATS"] == sealed.recipients
        assert ["aggregate-only"] == [r.code for r in sealed.decisions["UNODC-STATS"].reasons]

        async def delivered() -> bool:
            return all(live.nodes[a].inbox.seen(sealed.header.id) for a in sealed.recipients)

        await wait_until("every member stores the all-members report", delivered)
        assert {"AUS-ABF", "IDN-IMI"} <= set(sealed.recipients)

        amber = example("01").model_copy(update={"route": Route.OTHER})  # rel_to group:med-coastal
        with pytest.raises(InputError, match="no candidate recipients"):
            await ita.publish(amber)
        sent = await ita.publish(amber, to=["all-members"])
        assert everyone == sorted(sent.decisions)
        # Only group:med-coastal is in rel_to; each still needs an agreement with ITA-GDF.
        assert {"ESP-GC", "GRC-HCG", "LBY-DCIM", "MLT-AFM"} <= set(sent.recipients)
        assert set(sent.recipients) <= MED_COASTAL
        assert ["not-in-rel-to"] == [r.code for r in sent.decisions["AUS-ABF"].reasons]
        with pytest.raises(InputError, match="give it alone"):
            await ita.publish(amber, to=["all-members", "MLT-AFM"])


async def _truthy(value: Any) -> bool:
    return bool(await value)


def test_palermo_publish_to_all_members(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """'palermo publish FILE --to all-members' on a route nobody subscribes to: sealed for every
    member in good standing that policy allows, and the output says why LBY-DCIM (excluded by
    deny_to country:LBY) and the statistics body were left out."""
    data = json.loads((EXAMPLES / "01-routes-central-med-departure.json").read_text())
    data["route"] = "other"
    data["handling"] = {"tlp": "GREEN", "deny_to": ["country:LBY"]}
    report = tmp_path / "green-other.json"
    report.write_text(json.dumps(data))
    fed.write(tmp_path / "fed")
    ita = fed.node_config(tmp_path / "fed", "ITA-GDF", federated_url)
    done = subprocess.run(
        [PALERMO, "publish", str(report), "--config", str(ita), "--to", "all-members", "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    sent = json.loads(done.stdout)
    assert ["AUS-ABF", "ESP-GC", "GRC-HCG", "IDN-IMI", "MLT-AFM", "SRB-BP", "TUR-CG"] == sent[
        "recipients"
    ]
    assert {"LBY-DCIM", "UNODC-STATS"} == set(sent["refused"])
    assert "denied-by-originator" == sent["refused"]["LBY-DCIM"][0]["code"]
