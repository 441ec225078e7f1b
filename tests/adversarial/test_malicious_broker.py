"""A malicious broker (or relay) delivering doctored envelopes: the receiving node's Node.handle
refuses each with a typed reason, stores nothing and terminates the message.

A real nats-server and a real node (MLT-AFM); the "broker" is this test writing straight into
PLM_DLV, which a compromised broker could do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from structlog.testing import capture_logs

from node.reports import seal_report
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.envelope import decode, encode, seal
from protocol.transport import deliver_subject
from schemas import EnvelopeHeader, new_uuid7
from schemas.export import parse_report
from tests.harness import (
    MED,
    Case,
    connect_node,
    envelope,
    run_once,
    setup_federation,
    with_recipient,
)

ME = "MLT-AFM"
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
FED = DevFederation.build(datetime.now(UTC))


def _fresh(recipients: list[str] = MED) -> bytes:
    return envelope(FED, recipients=recipients)[1]


def _dlv(data: bytes, recipient: str = ME) -> str:
    return deliver_subject(recipient, EnvelopeHeader.model_validate(decode(data).hdr))


def _cases() -> list[Case]:
    def doctor(**fields: Any) -> bytes:
        return encode(replace(decode(_fresh()), **fields))

    env = decode(_fresh())
    other = decode(_fresh())
    dropped = tuple(s for s in env.rcpt if s.agency != "GRC-HCG")
    swapped = (env.rcpt[1], env.rcpt[0], *env.rcpt[2:])
    added = with_recipient(_fresh(), "AUS-ABF")
    rerouted = _fresh()
    renamed = _fresh()
    not_mine = _fresh(["ESP-GC"])
    auth = "altered or is not for this key"
    return [
        Case("recipient-added", added, _dlv(added), "auth_failed", auth, "signature"),
        Case("stanza-dropped", encode(replace(env, rcpt=dropped)), _dlv(encode(env)),
             "malformed", "no key stanza for listed recipients: GRC-HCG"),
        Case("stanzas-reordered", encode(replace(env, rcpt=swapped)), _dlv(encode(env)),
             "non_canonical", "sorted by (agency, kid)"),
        Case("body-swapped", doctor(body=other.body), _dlv(encode(other)), "auth_failed", auth,
             "signature"),
        Case("stanza-swapped-from-another-envelope",
             encode(replace(other, rcpt=(env.rcpt[0], *other.rcpt[1:]))), _dlv(encode(other)),
             "auth_failed", auth, "signature"),
        Case("rerouted-to-another-route", rerouted,
             _dlv(rerouted).replace(".central-med.", ".eastern-med."), "subject_mismatch",
             f"belongs on {_dlv(rerouted)}"),
        Case("rerouted-under-another-originator", renamed,
             _dlv(renamed).replace(".ITA-GDF.", ".GRC-HCG."), "subject_mismatch",
             f"belongs on {_dlv(renamed)}"),
        Case("delivered-to-a-non-recipient", not_mine, _dlv(not_mine), "not_a_recipient",
             "holds no key for MLT-AFM"),
    ]  # fmt: skip


def _signed_body(name: str, body: bytes, code: str, fragment: str) -> Case:
    """A member (or its buggy node) signs a body that is not a report: refused, never retried."""
    data = envelope(FED, recipients=MED, body=body)[1]
    return Case(name, data, _dlv(data), code, fragment)


ORIGINATOR_CASES = [
    _signed_body("originator-signed-body-not-msgpack", b"\xc1" * 32, "malformed",
                 "the opened body is not a msgpack report"),
    _signed_body("originator-signed-empty-map-body", msgpack.packb({}), "report_invalid",
                 "the opened body is not a valid report: 7 fields are invalid: originator"),
    _signed_body("originator-signed-body-of-wrong-types", msgpack.packb({"persons": [1]}),
                 "malformed", "the opened body is not a msgpack report"),
    _signed_body("originator-signed-body-is-a-list", msgpack.packb([1, 2]), "malformed",
                 "the opened body is not a msgpack report"),
]  # fmt: skip
CASES = _cases() + ORIGINATOR_CASES


def _genuine() -> bytes:
    """A real report (example 01), sealed by ITA-GDF's publishing path for the coastal partners."""
    report = parse_report(next(EXAMPLES.glob("01*.json")).read_text())
    now = datetime.now(UTC)
    trust = FED.trust_store()
    sealed = seal_report(report, FED.agencies["ITA-GDF"].signing, MED, trust,
                         FED.policy_store(trust), now)  # fmt: skip
    assert ME in sealed.recipients
    return sealed.data


GENUINE = _genuine()


@dataclass
class Handled:
    outcome: str
    log: dict[str, Any] | None
    stored: bool


async def _scenario(server: NatsServer, state: Path) -> tuple[dict[str, Handled], str, str]:
    await setup_federation(server.client_url, FED)
    async with connect_node(server.client_url, FED, ME, state) as node:
        js = node.js
        for i, case in enumerate(CASES):
            await js.publish(case.subject, case.data, headers={"Nats-Msg-Id": f"attack-{i}"})
        await js.publish(_dlv(GENUINE), GENUINE, headers={"Nats-Msg-Id": "genuine"})
        await js.publish(_dlv(GENUINE), GENUINE, headers={"Nats-Msg-Id": "replayed"})
        sub = await js.pull_subscribe(
            f"plm.dlv.{ME}.>", durable="attacker-view", stream="PLM_DLV",
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        )  # fmt: skip
        msgs = await sub.fetch(len(CASES) + 2, timeout=10)
        results: dict[str, Handled] = {}
        for case, msg in zip(CASES, msgs, strict=False):
            with capture_logs() as logs:
                outcome = await node.handle(msg)
            refusals = [e for e in logs if e["event"] == "delivery refused"]
            stored = node.inbox.seen(msgpack.unpackb(case.data)["hdr"]["id"])
            results[case.name] = Handled(outcome, refusals[0] if refusals else None, stored)
        genuine = await node.handle(msgs[len(CASES)])
        replay = await node.handle(msgs[len(CASES) + 1])
        return results, genuine, replay


@pytest.fixture(scope="module")
def handled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Handled], str, str]:
    tmp = tmp_path_factory.mktemp("malicious-broker")
    return run_once(tmp, lambda server: _scenario(server, tmp / "node"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_receiving_node_refuses_a_doctored_delivery(
    handled: tuple[dict[str, Handled], str, str], case: Case
) -> None:
    """Node.handle returns the error code, logs the typed reason, and stores nothing."""
    result = handled[0][case.name]
    assert case.code == result.outcome
    assert result.log is not None
    assert case.code == result.log["code"]
    assert case.fragment in result.log["reason"]
    assert case.stage == result.log["stage"]
    assert not result.stored


def test_genuine_delivery_is_stored_and_its_replay_is_a_duplicate(
    handled: tuple[dict[str, Handled], str, str],
) -> None:
    """Control: the untouched envelope is stored; delivered again it is a duplicate, not a
    second copy."""
    assert ("stored", "duplicate") == handled[1:]


async def test_redelivery_after_a_retraction_does_not_bring_the_report_back(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """A broker replaying a report after its originator retracted it: 'duplicate', and the
    plaintext stays purged (the tombstone remembers the id)."""
    await setup_federation(nats_server.client_url, FED)
    ita, me = FED.agencies["ITA-GDF"], FED.agencies[ME]
    original = EnvelopeHeader.model_validate(decode(GENUINE).hdr)
    retraction = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.signing.kid, created=datetime.now(UTC),
        kind="retraction", priority="urgent", route=original.route, category=original.category,
        handling=original.handling, recipients=[ME], refs=[original.id],
    )  # fmt: skip
    body = msgpack.packb({"retracts": original.id, "reason": "source withdrew"})
    withdrawn = seal(retraction, body, ita.signing, [me.encryption.public])
    async with connect_node(nats_server.client_url, FED, ME, tmp_path) as node:
        for n, data in enumerate((GENUINE, withdrawn, GENUINE)):
            await node.js.publish(_dlv(data), data, headers={"Nats-Msg-Id": f"d{n}"})
        sub = await node.js.pull_subscribe(f"plm.dlv.{ME}.>", durable="replayer", stream="PLM_DLV")
        outcomes = [await node.handle(m) for m in await sub.fetch(3, timeout=10)]
        entry, report = node.inbox.show(original.id)
    assert ["stored", "purged", "duplicate"] == outcomes
    assert report is None
    assert entry.id == original.id
