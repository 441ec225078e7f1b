"""Trust-plane rollbacks (issue #12, items 1 and 12): a directory key holds only its own
subject's document, no document below the highest version seen is adopted, the same version
with other content is refused, and the high-water marks survive a restart of a node or broker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from node.reports import seal_report
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from policies import AgencyPolicy
from protocol.directory import BUCKET, Directory
from protocol.trust import (
    ROOT,
    RevocationList,
    Subscriptions,
    TopicFilter,
    sign_document,
)
from protocol.view import PolicyStore
from schemas import EnvelopeHeader, Report
from schemas.errors import ConfigError, TrustError
from schemas.export import parse_report
from tests.harness import (
    connect_node,
    envelope,
    live_view,
    setup_federation,
    start_broker_process,
    stop_process,
    wait_for,
    write_broker_config,
)

X, PARTNER, OTHER, WRITER = "ITA-GDF", "MLT-AFM", "GRC-HCG", "MLT-AFM"
"""X originates; its current standing policy denies PARTNER (who is also the hostile writer,
the member that wants X's reports); OTHER is allowed either way."""
EXAMPLE = Path(__file__).resolve().parents[2] / "schemas" / "examples"
REPORT: Report = parse_report((EXAMPLE / "01-routes-central-med-departure.json").read_text())
SENTINEL_AGENCY = "TUR-CG"
VICTIM = "LBY-DCIM"


def _federation() -> tuple[DevFederation, dict[str, Any]]:
    """A dev federation whose X holds standing policy v3 (the example v2 plus "deny PARTNER");
    returns it and X's genuine, older v2 (still validly signed: the attacker's material)."""
    fed = DevFederation.build(datetime.now(UTC))
    x = fed.agencies[X]
    assert x.policy is not None
    older = x.policy
    example = AgencyPolicy.model_validate(older["document"])
    current = AgencyPolicy.model_validate(
        {
            **example.model_dump(mode="json", exclude_none=True),
            "version": 3,
            "rules": [
                *example.model_dump(mode="json", exclude_none=True)["rules"],
                {"rule": "deny", "targets": [PARTNER], "note": "suspected leak"},
            ],
        }
    )
    x.policy = sign_document(current, x.signing, X)
    return fed, older


def _header(fed: DevFederation) -> EnvelopeHeader:
    """A header X's v2 policy lets through to PARTNER and v3 does not."""
    header, _ = envelope(fed, X, [PARTNER, OTHER], rel_to=["group:med-coastal"])
    return header


def _sentinel(fed: DevFederation) -> dict[str, Any]:
    """A genuine update written after an attack: a view that has it has processed the attack
    too (the directory watcher delivers in order)."""
    subs = Subscriptions(agency=SENTINEL_AGENCY, seq=2, issued=datetime.now(UTC),
                         filters=[TopicFilter(route="central-med")])  # fmt: skip
    return sign_document(subs, fed.agencies[SENTINEL_AGENCY].signing, SENTINEL_AGENCY)


async def _put(nc: Client, key: str, signed: dict[str, Any]) -> None:
    """Write straight into the bucket, as a member (its own key) or the broker account could."""
    kv = await nc.jetstream().key_value(BUCKET)
    await kv.put(key, json.dumps(signed).encode())


async def _settled(*views: Directory) -> None:
    async def seen() -> bool:
        return all(v.store.subscriptions[SENTINEL_AGENCY].seq == 2 for v in views)

    await wait_for(seen, within=10, every=0.02)


def test_x_v2_would_send_to_partner_and_v3_does_not() -> None:
    """Precondition of the attacks below: the rollback target really is looser."""
    fed, older = _federation()
    view = fed.policy_store()
    header, now = _header(fed), datetime.now(UTC)
    before = view.decide(header, PARTNER, now).allowed
    loose = PolicyStore(fed.root.public, fed.trust_store())
    loose.set_federation(fed.signed_policy)
    loose.set_agency_policy(older)
    assert (False, True) == (before, loose.decide(header, PARTNER, now).allowed)


@pytest.mark.parametrize("key", [f"policy.agency.{WRITER}", f"policy.agency.{X}"])
async def test_older_standing_policy_written_to_the_directory_is_not_adopted(
    nats_server: NatsServer, tmp_path: Path, key: str
) -> None:
    """A member writes X's older signed standing policy under its own key or X's: the broker's
    view and X's own node keep v3, and X's node does not seal for the partner v3 denies."""
    fed, older = _federation()
    await setup_federation(nats_server.client_url, fed)
    nc = await nats.connect(nats_server.client_url)
    try:
        async with (
            live_view(nc, fed) as broker,
            connect_node(nats_server.client_url, fed, X, tmp_path / "x") as node,
        ):
            await _put(nc, key, older)
            await _put(nc, f"subs.{SENTINEL_AGENCY}", _sentinel(fed))
            await _settled(broker, node.directory)
            now = datetime.now(UTC)
            sealed = seal_report(REPORT, node.identity.signing, [PARTNER, OTHER], node.trust,
                                 node.policy, now)  # fmt: skip
            outcome = (
                broker.policy.agency_policies[X].version,
                node.policy.agency_policies[X].version,
                broker.policy.decide(_header(fed), PARTNER, now).allowed,
                sealed.recipients,
                sorted(broker.rejected),
            )
    finally:
        await nc.close()
    assert (3, 3, False, [OTHER], [key]) == outcome


async def test_a_rollback_written_while_the_node_was_down_is_not_adopted_on_restart(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """X's node saw v3; while it is down the directory is rolled back to v2 under X's own key:
    restarted on the same state dir, it adopts nothing below v3, denies instead of sealing, and
    counts the refused entry in palermo_trust_documents_below_mark."""
    fed, older = _federation()
    await setup_federation(nats_server.client_url, fed)
    async with connect_node(nats_server.client_url, fed, X, tmp_path / "x") as node:
        seen = node.policy.agency_policies[X].version
    nc = await nats.connect(nats_server.client_url)
    try:
        await _put(nc, f"policy.agency.{X}", older)
    finally:
        await nc.close()
    async with connect_node(nats_server.client_url, fed, X, tmp_path / "x") as node:
        held = node.policy.agency_policies.get(X)
        decision = node.policy.decide(_header(fed), PARTNER, datetime.now(UTC))
        alarm = node.metrics.registry.get_sample_value("palermo_trust_documents_below_mark")
    reasons = [r.code for r in decision.reasons]
    assert (3, None, False, ["standing-policy-missing"], 1.0) == (
        seen,
        held and held.version,
        decision.allowed,
        reasons,
        alarm,
    )


async def test_load_order_does_not_decide(nats_server: NatsServer, tmp_path: Path) -> None:
    """X's v3 under its key and v2 under the writer's key (which sorts after X's): a process
    starting fresh loads v3, and the writer's key is refused."""
    fed, older = _federation()
    assert f"policy.agency.{WRITER}" > f"policy.agency.{X}"
    await setup_federation(nats_server.client_url, fed)
    nc = await nats.connect(nats_server.client_url)
    try:
        await _put(nc, f"policy.agency.{WRITER}", older)
    finally:
        await nc.close()
    async with connect_node(nats_server.client_url, fed, X, tmp_path / "fresh") as node:
        outcome = (node.policy.agency_policies[X].version, sorted(node.directory.rejected))
    assert (3, [f"policy.agency.{WRITER}"]) == outcome


async def test_a_rolled_back_revocation_list_stops_a_restarting_node(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """A node that accepted revocation list seq 2 refuses to start on a directory that offers
    only seq 1 (running on it would un-revoke keys): a Rollback naming the key and both seqs."""
    fed, _ = _federation()
    await setup_federation(nats_server.client_url, fed)
    newer = sign_document(RevocationList(seq=2, issued=datetime.now(UTC)), fed.root, ROOT)
    async with connect_node(nats_server.client_url, fed, X, tmp_path / "x") as node:
        await node.directory.publish(newer)
    nc = await nats.connect(nats_server.client_url)
    try:
        await _put(nc, "revocations", fed.revocations)
    finally:
        await nc.close()
    with pytest.raises(TrustError) as info:
        async with connect_node(nats_server.client_url, fed, X, tmp_path / "x"):
            pass
    error = info.value
    assert ("rollback", "revocations", 2, 1) == (
        error.code,
        getattr(error, "key", None),
        getattr(error, "held", None),
        getattr(error, "offered", None),
    )


def _other_members_documents(fed: DevFederation) -> dict[str, dict[str, Any]]:
    """PARTNER's own genuine documents, each written under VICTIM's key."""
    partner = fed.agencies[PARTNER]
    return {
        f"cert.{VICTIM}": partner.certificate,
        f"bundle.{VICTIM}": partner.bundle,
        f"subs.{VICTIM}": partner.subscriptions,
    }


async def test_every_per_agency_key_holds_only_its_own_agency(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """Another member's certificate, bundle or subscriptions under LBY-DCIM's keys are refused
    (never filed under the agency named inside), and LBY-DCIM's certificate stays."""
    fed, _ = _federation()
    await setup_federation(nats_server.client_url, fed)
    nc = await nats.connect(nats_server.client_url)
    wrong = _other_members_documents(fed)
    try:
        async with live_view(nc, fed) as view:
            for key, signed in wrong.items():
                await _put(nc, key, signed)
            await _put(nc, f"subs.{SENTINEL_AGENCY}", _sentinel(fed))
            await _settled(view)
            rejected = dict(view.rejected)
            held = view.store.members[VICTIM].signing_key
    finally:
        await nc.close()
    expected = fed.agencies[VICTIM].signing.public.raw.hex()
    assert (set(wrong), expected) == (set(rejected), held)
    assert f"holds the document of cert.{PARTNER}" in rejected[f"cert.{VICTIM}"]


# --- item 12: the same version with other content -------------------------------------------


def test_federation_policy_same_version_other_content_is_refused() -> None:
    """A second federation policy under the version in force is refused; the first stays."""
    fed, _ = _federation()
    view = fed.policy_store()
    other = fed.federation.model_copy(update={"name": "A different federation text"})
    with pytest.raises(TrustError) as info:
        view.set_federation(sign_document(other, fed.root, ROOT))
    assert view.federation is not None
    assert ("rollback", fed.federation.name) == (info.value.code, view.federation.name)


def test_subscriptions_same_seq_other_content_are_refused() -> None:
    """Subscriptions with the seq held but other topics are refused; the held ones stay."""
    fed, _ = _federation()
    trust = fed.trust_store()
    held = trust.subscriptions[PARTNER]
    other = Subscriptions(agency=PARTNER, seq=held.seq, issued=datetime.now(UTC),
                          filters=[TopicFilter(route="*")])  # fmt: skip
    with pytest.raises(TrustError) as info:
        trust.set_subscriptions(sign_document(other, fed.agencies[PARTNER].signing, PARTNER))
    assert ("rollback", held) == (info.value.code, trust.subscriptions[PARTNER])


def test_standing_policy_same_version_other_content_is_refused() -> None:
    """X's standing policy with the version in force but other rules is refused."""
    fed, _ = _federation()
    view = fed.policy_store()
    held = view.agency_policies[X]
    loose = held.model_copy(update={"rules": []})
    with pytest.raises(TrustError) as info:
        view.set_agency_policy(sign_document(loose, fed.agencies[X].signing, X))
    assert ("rollback", held) == (info.value.code, view.agency_policies[X])


# --- the broker's state ----------------------------------------------------------------------


async def test_broker_keeps_its_marks_across_a_restart(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """A broker with a state_dir that accepted revocation list seq 2 keeps that mark on disk,
    and refuses to start again once the directory is rolled back to seq 1 (exit 2)."""
    fed, _ = _federation()
    await setup_federation(nats_server.client_url, fed)
    state = tmp_path / "broker-state"
    config = write_broker_config(tmp_path, fed, nats_server.client_url, state_dir=str(state))
    nc = await nats.connect(nats_server.client_url)
    newer = sign_document(RevocationList(seq=2, issued=datetime.now(UTC)), fed.root, ROOT)
    try:
        await _put(nc, "revocations", newer)
        broker = start_broker_process(config, tmp_path / "broker1.log")
        marks = state / "trust-marks.json"

        async def recorded() -> bool:
            log = (tmp_path / "broker1.log").read_text()
            if broker.poll() is not None:
                raise AssertionError(log[-2000:])
            # "broker started" is logged once SIGTERM is handled (a stop is then graceful).
            if "broker started" not in log:
                return False
            data = json.loads(marks.read_text())
            return bool(data["marks"].get("revocations", {}).get("version") == 2)

        await wait_for(recorded, within=60)
        first = stop_process(broker)
        mode = marks.stat().st_mode & 0o777
        await _put(nc, "revocations", fed.revocations)
    finally:
        await nc.close()
    again = start_broker_process(config, tmp_path / "broker2.log")
    code = await asyncio.to_thread(again.wait, 60)
    log = (tmp_path / "broker2.log").read_text()
    refused = "offers revocations version 1, but this process has already accepted version 2"
    assert (0, 0o600, 2, True) == (first, mode, code, refused in log)


# --- the marks file ----------------------------------------------------------------------------


def test_marks_file_round_trips_owner_only_and_names_its_root(tmp_path: Path) -> None:
    """Saved marks load back equal, the file is 0600, and it records the pinned root's kid."""
    from protocol.marks import Mark
    from protocol.watermarks import MarksFile

    marks = {"revocations": Mark(3, "ab" * 32), "cert.ITA-GDF": Mark(2)}
    MarksFile(tmp_path, "root-kid").save(marks)
    path = tmp_path / "trust-marks.json"
    loaded = MarksFile(tmp_path, "root-kid").load()
    root = json.loads(path.read_text())["root"]
    assert (marks, 0o600, "root-kid") == (loaded, path.stat().st_mode & 0o777, root)


def test_marks_taken_under_another_root_are_set_aside(tmp_path: Path) -> None:
    """A re-rendered federation (a new root) does not inherit the old federation's versions."""
    from protocol.marks import Mark
    from protocol.watermarks import MarksFile

    MarksFile(tmp_path, "old-root").save({"revocations": Mark(7, "cd" * 32)})
    assert {} == MarksFile(tmp_path, "new-root").load()


@pytest.mark.parametrize(
    "text", ["not json", '{"format": 2, "root": "r", "marks": {}}', '{"format": 1}', "[]"]
)
def test_a_damaged_marks_file_stops_start_up(tmp_path: Path, text: str) -> None:
    """A marks file that cannot be read is a config error naming it, never an empty start."""
    from protocol.watermarks import MarksFile

    (tmp_path / "trust-marks.json").write_text(text)
    with pytest.raises(ConfigError) as info:
        MarksFile(tmp_path, "r").load()
    assert str(tmp_path / "trust-marks.json") in info.value.reason


async def test_a_node_publishes_above_its_marks_when_its_own_document_is_gone(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """X's node that saw its subscriptions at seq 4 and holds none now publishes seq 5, not 1
    (which its own directory view would refuse as a rollback)."""
    fed, _ = _federation()
    await setup_federation(nats_server.client_url, fed)
    x = fed.agencies[X]
    later = Subscriptions(agency=X, seq=4, issued=datetime.now(UTC),
                          filters=[TopicFilter(route="central-med")])  # fmt: skip
    async with connect_node(nats_server.client_url, fed, X, tmp_path / "x") as node:
        await node.directory.publish(sign_document(later, x.signing, X))
        node.trust._subscriptions.pop(X)
        subs = await node.subscribe(["air"])
        held = node.trust.subscriptions[X].seq
    assert (5, 5) == (subs.seq, held)
