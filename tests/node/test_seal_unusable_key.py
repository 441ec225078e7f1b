"""Sealing when one partner's key cannot be used: that partner is dropped from the envelope and
reported as a denial; the report still reaches everyone else.

The bundle check that refuses a low-order key when a bundle is accepted is bypassed here by
writing the publisher's trust state directly: this is about the publisher's last line, a key
that got in anyway (accepted before the check existed, or by an older node).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.reports import seal_report
from node.service import Node
from palermo.devfed import DevFederation
from policies import Decision
from protocol.crypto import key_id
from protocol.trust import TrustStore
from schemas import Report
from schemas.export import parse_report
from tests.harness import running_broker, running_nodes, wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
BAD = "MLT-AFM"
PARTNERS = ["ESP-GC", "GRC-HCG", BAD]
LOW_ORDER = bytes(32)  # u = 0: every Diffie-Hellman with it gives the all-zero secret


def _example_01() -> Report:
    return parse_report(next(EXAMPLES.glob("01*.json")).read_text())


def _low_order_key_for(store: TrustStore, agency: str) -> None:
    """``agency``'s held bundle now lists only a low-order X25519 key (state written directly)."""
    bundle = store.bundles[agency]
    low = bundle.keys[0].model_copy(update={"kid": key_id(LOW_ORDER), "x25519": LOW_ORDER.hex()})
    store._bundles[agency] = bundle.model_copy(update={"keys": [low]})


def _reason_codes(decisions: Mapping[str, Decision], agency: str) -> tuple[bool, list[str]]:
    decision = decisions[agency]
    return decision.allowed, [r.code for r in decision.reasons]


def test_a_low_order_key_drops_only_its_agency_from_the_envelope() -> None:
    """seal_report: MLT-AFM (low-order key) is denied with no-usable-key, the others sealed."""
    fed = DevFederation.build(datetime.now(UTC))
    trust = fed.trust_store()
    _low_order_key_for(trust, BAD)
    sealed = seal_report(_example_01(), fed.agencies["ITA-GDF"].signing, PARTNERS, trust,
                         fed.policy_store(trust), datetime.now(UTC))  # fmt: skip
    assert ["ESP-GC", "GRC-HCG"] == sealed.recipients
    assert (False, ["no-usable-key"]) == _reason_codes(sealed.decisions, BAD)
    assert "low-order" in sealed.decisions[BAD].reasons[0].message


def test_a_partner_without_any_key_is_reported_as_denied() -> None:
    """seal_report: a partner the policy allows but with no key bundle is a denial with a
    reason, not a silent omission."""
    fed = DevFederation.build(datetime.now(UTC))
    trust = TrustStore(fed.root.public)
    without_bad_bundle = [
        d
        for d in fed.documents()
        if "policy" not in d["document"]["kind"]
        and (d["document"]["kind"], d["document"].get("agency")) != ("key-bundle", BAD)
    ]
    trust.load(without_bad_bundle)
    sealed = seal_report(_example_01(), fed.agencies["ITA-GDF"].signing, PARTNERS, trust,
                         fed.policy_store(trust), datetime.now(UTC))  # fmt: skip
    assert ["ESP-GC", "GRC-HCG"] == sealed.recipients
    assert (False, ["no-usable-key"]) == _reason_codes(sealed.decisions, BAD)


@pytest.fixture
async def federation(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[dict[str, Node]]:
    """A broker and the nodes of ITA-GDF and its three coastal partners, live."""
    async with (
        running_nodes(federated_url, fed, ["ITA-GDF", *PARTNERS], tmp_path) as nodes,
        running_broker(federated_url, fed),
    ):
        yield nodes


async def test_one_partners_low_order_key_does_not_stop_the_report_reaching_the_others(
    federation: dict[str, Node],
) -> None:
    """ITA-GDF's node holds a low-order key for MLT-AFM: the publish succeeds, MLT-AFM is in
    the refusals with a reason, and ESP-GC and GRC-HCG store the report."""
    ita = federation["ITA-GDF"]
    _low_order_key_for(ita.trust, BAD)
    sealed = await ita.publish(_example_01(), to=PARTNERS)
    assert (False, ["no-usable-key"]) == _reason_codes(sealed.decisions, BAD)

    async def stored() -> bool:
        return all(federation[a].inbox.seen(sealed.header.id) for a in ("ESP-GC", "GRC-HCG"))

    await wait_for(stored, within=20)
    assert ["ESP-GC", "GRC-HCG"] == sealed.recipients
    assert not federation[BAD].inbox.seen(sealed.header.id)


async def test_a_retraction_still_reaches_the_others_when_one_key_became_unusable(
    federation: dict[str, Node],
) -> None:
    """ITA-GDF retracts a report after MLT-AFM's key became low-order in its view: the
    retraction is sealed for ESP-GC and GRC-HCG, who purge the report."""
    ita = federation["ITA-GDF"]
    sealed = await ita.publish(_example_01(), to=PARTNERS)

    async def stored() -> bool:
        return all(federation[a].inbox.seen(sealed.header.id) for a in PARTNERS)

    await wait_for(stored, within=20)
    _low_order_key_for(ita.trust, BAD)
    retraction = await ita.retract(sealed.header.id, "wrong vessel")
    assert ["ESP-GC", "GRC-HCG"] == retraction.recipients

    async def purged() -> bool:
        shown = [federation[a].inbox.show(sealed.header.id) for a in ("ESP-GC", "GRC-HCG")]
        return all(report is None for _, report in shown)

    await wait_for(purged, within=20)
