"""Hostile publications to a real broker on a real nats-server: each lands in PLM_DEAD with its
reason code and a reason that says what is wrong, and nothing of it reaches PLM_DLV.

One server and one broker serve the whole module (the hostile messages go in together, as they
would in a batch); each case is then its own named test over what the broker stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import nats
import pytest

from broker.service import Broker, BrokerOptions
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.envelope import decode, encode
from protocol.keys import SigningKey
from protocol.transport import publish_subject
from protocol.trust import (
    ROOT,
    MembershipCertificate,
    RevocationEntry,
    RevocationList,
    sign_document,
)
from schemas import EnvelopeHeader, Handling, new_uuid7
from tests.harness import (
    MED,
    Case,
    by_data,
    envelope,
    flip,
    resign,
    run_once,
    running_broker,
    setup_federation,
    stream_messages,
    wait_for,
    with_recipient,
)

MAX_BYTES = 32 * 1024
NOW = datetime.now(UTC)
SUBJECT = "plm.pub.ITA-GDF.report.central-med.routes"


def _build() -> tuple[DevFederation, list[Case], list[bytes]]:
    """The federation (with a lapsed member and a revoked key) and every hostile case."""
    fed = DevFederation.build(NOW)
    tur = fed.agencies["TUR-CG"]
    lapsed = MembershipCertificate.model_validate(
        {**tur.certificate["document"], "serial": 900,
         "not_before": NOW - timedelta(days=400), "not_after": NOW - timedelta(days=1)}
    )  # fmt: skip
    tur.certificate = sign_document(lapsed, fed.root, ROOT)
    grc = fed.agencies["GRC-HCG"]
    stolen = RevocationEntry(agency="GRC-HCG", kid=grc.signing.kid, reason="stolen token",
                             revoked_at=NOW - timedelta(minutes=1))  # fmt: skip
    fed.revocations = sign_document(
        RevocationList(seq=1, issued=NOW, entries=[stolen]), fed.root, ROOT
    )

    def fresh(**kw: Any) -> bytes:
        return envelope(fed, recipients=MED, **kw)[1]

    def signed(created: datetime) -> bytes:
        ita = fed.agencies["ITA-GDF"]
        header = EnvelopeHeader(
            id=new_uuid7(), originator="ITA-GDF", kid=ita.signing.kid, created=created,
            kind="report", route="central-med", category="routes",
            handling=Handling(tlp="AMBER", rel_to=["group:med-coastal"]), recipients=MED,
        )  # fmt: skip
        from protocol.envelope import seal

        keys = [fed.agencies[r].encryption.public for r in header.recipients]
        return seal(header, b"x" * 64, ita.signing, keys)

    def tampered_hdr(**changes: Any) -> tuple[bytes, str]:
        env = decode(fresh())
        data = encode(replace(env, hdr={**env.hdr, **changes}))
        header = EnvelopeHeader.model_validate(decode(data).hdr)
        return data, publish_subject(header)

    base = fresh()
    env = decode(base)
    lby = SigningKey("ITA-GDF", fed.agencies["LBY-DCIM"].signing.private)
    auth = ("auth_failed", "altered or is not for this key")
    cases: list[Case] = []

    def add(name: str, data: bytes, code: str, fragment: str, subject: str = SUBJECT) -> None:
        cases.append(Case(name, data, subject, code, fragment))

    green = Handling(tlp="GREEN").model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for name, changes in {
        "header-priority-raised": {"priority": "urgent"},
        "header-handling-widened-to-green": {"handling": green},
        "header-route-changed": {"route": "eastern-med"},
        "header-created-backdated": {"created": env.hdr["created"] - 60_000},
    }.items():
        data, subject = tampered_hdr(**changes)
        add(name, data, *auth, subject=subject)
    add("recipient-added-with-copied-stanza", with_recipient(fresh(), "AUS-ABF"), *auth)
    add("body-bit-flipped", flip(base, base.index(env.body) + 100), *auth)
    add("stanza-bit-flipped", flip(base, base.index(env.rcpt[1].enc) + 40), *auth)
    add("signature-bit-flipped", flip(base, len(base) - 1), *auth)
    add("forged-originator-signed-by-lby", resign(decode(fresh()), lby), *auth)
    # Several forged copies carrying one genuine id: each is dead-lettered on its own.
    victim = fresh()
    for i in range(3):
        add(f"forged-copy-{i}-of-one-id", flip(victim, len(victim) - 1 - i), *auth)
    add("suite-unknown", base.replace(b"\xa5suite\x01", b"\xa5suite\x07", 1),
        "unsupported_suite", "crypto suite 7 is not supported")  # fmt: skip
    # Suite 2 is enabled (decision 0035): a suite-1 envelope relabelled 2 fails its stanza lengths.
    add("suite-1-relabelled-suite-2", base.replace(b"\xa5suite\x01", b"\xa5suite\x02", 1),
        "malformed", "suite 2 stanzas are")  # fmt: skip
    add("version-zero", b"\x87\xa1v\x00" + base[4:], "unsupported_version", "version 0 is not")
    add("oversize", fresh(body=b"x" * MAX_BYTES), "too_large", f"over the limit of {MAX_BYTES}")
    head = b"\x87\xa1v\x01\xa5suite\x01\xa3hdr"
    add("bomb-map32-declares-2g-entries", head + b"\xdf\x7f\xff\xff\xff", "malformed",
        "max_map_len")  # fmt: skip
    add("bomb-str32-declares-2gib", head + b"\xdb\x7f\xff\xff\xff", "malformed", "not valid")
    add("bomb-nesting-5000-deep", head + b"\x91" * 5000 + b"\x00", "malformed", "not valid")
    add("wrong-type-body-as-str", _repack(base, body="x" * 32), "malformed", "body must be")
    add("non-canonical-unsorted-header", _repack(base, hdr=dict(reversed(env.hdr.items()))),
        "non_canonical", "hdr map keys are not sorted")  # fmt: skip
    add("clock-skew-10-min-ahead", signed(datetime.now(UTC) + timedelta(minutes=10)),
        "clock_skew", "check the originator's clock")  # fmt: skip
    add("older-than-replay-window", signed(datetime.now(UTC) - timedelta(days=8)),
        "too_old", "before the replay window")  # fmt: skip
    add("published-on-another-route", fresh(), "subject_mismatch",
        "but the signed header belongs on plm.pub.ITA-GDF.report.central-med.routes",
        subject="plm.pub.ITA-GDF.report.eastern-med.routes")  # fmt: skip
    add("published-under-look-alike-originator", fresh(), "subject_mismatch",
        "received on plm.pub.\\u0406TA-GDF.report.central-med.routes",
        subject="plm.pub.\u0406TA-GDF.report.central-med.routes")  # fmt: skip
    add("published-with-extra-subject-token", fresh(), "subject_mismatch",
        "belongs on plm.pub.ITA-GDF.report.central-med.routes", subject=SUBJECT + ".x")  # fmt: skip
    add(
        "expired-membership",
        envelope(fed, "TUR-CG", recipients=MED)[1],
        "key_not_valid",
        "membership certificate is valid",
        subject="plm.pub.TUR-CG.report.central-med.routes",
    )
    add("revoked-signing-key", envelope(fed, "GRC-HCG", recipients=["MLT-AFM"])[1],
        "key_not_valid", f"signing key {grc.signing.kid} of GRC-HCG is revoked",
        subject="plm.pub.GRC-HCG.report.central-med.routes")  # fmt: skip
    genuine = [victim, base]
    return fed, cases, genuine


def _to_lapsed_member(fed: DevFederation) -> bytes:
    """A genuine GREEN envelope that also names TUR-CG, whose membership has lapsed."""
    return envelope(fed, recipients=[*MED, "TUR-CG"], tlp="GREEN", rel_to=())[1]


def _repack(data: bytes, **fields: Any) -> bytes:
    top = msgpack.unpackb(data, raw=False)
    return msgpack.packb({**top, **fields}, use_bin_type=True)  # type: ignore[no-any-return]


@dataclass
class Outcome:
    dead: dict[bytes, list[Any]]
    delivered: dict[bytes, list[Any]]
    processed: int


FED, CASES, GENUINE = _build()
TO_LAPSED = _to_lapsed_member(FED)


async def _scenario(server: NatsServer) -> Outcome:
    await setup_federation(server.client_url, FED)
    options = BrokerOptions(max_envelope_bytes=MAX_BYTES, fetch_timeout_s=0.2)
    nc = await nats.connect(server.client_url)
    js = nc.jetstream()
    try:
        async with running_broker(server.client_url, FED, options) as broker:
            for i, case in enumerate(CASES):
                await js.publish(case.subject, case.data, headers={"Nats-Msg-Id": f"case-{i}"})
            for i, data in enumerate([*GENUINE, TO_LAPSED]):
                header = EnvelopeHeader.model_validate(decode(data).hdr)
                await js.publish(publish_subject(header), data, headers={"Nats-Msg-Id": f"ok-{i}"})
            total = len(CASES) + len(GENUINE) + 1

            async def done() -> bool:
                return broker.processed >= total

            await wait_for(done, within=30)
        dead = by_data(await stream_messages(nc, "PLM_DEAD"))
        delivered = by_data(await stream_messages(nc, "PLM_DLV"))
        return Outcome(dead, delivered, broker.processed)
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    tmp: Path = tmp_path_factory.mktemp("broker-attacks")
    return run_once(tmp, _scenario)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_publication_is_dead_lettered_with_its_reason(outcome: Outcome, case: Case) -> None:
    """Exactly one dead letter with the case's reason code and reason; no delivery of it."""
    [dead] = outcome.dead.get(case.data, [None])
    assert dead is not None, f"{case.name} was not dead-lettered"
    assert case.code == dead.headers["Palermo-Reason-Code"]
    assert case.fragment in dead.headers["Palermo-Reason"]
    assert (
        case.subject.encode("ascii", "backslashreplace").decode() == dead.headers["Palermo-Subject"]
    )
    assert dead.subject.endswith(f".{case.code}")
    assert case.data not in outcome.delivered


def test_genuine_envelopes_among_the_attacks_are_delivered(outcome: Outcome) -> None:
    """Control: the genuine envelopes (one of them the forged copies' victim) reach all four
    coastal partners, and nothing else reaches PLM_DLV."""
    assert sorted([*GENUINE, TO_LAPSED]) == sorted(outcome.delivered)
    assert [4, 4] == [len(outcome.delivered[g]) for g in GENUINE]
    assert len(CASES) + len(GENUINE) + 1 == outcome.processed


def test_recipient_with_lapsed_membership_is_refused_the_others_served(outcome: Outcome) -> None:
    """A recipient whose membership certificate lapsed gets no copy: a policy dead letter for it
    (recipient-not-certified); the four valid recipients get theirs."""
    [dead] = outcome.dead[TO_LAPSED]
    assert "TUR-CG" == dead.headers["Palermo-Recipient"]
    assert "recipient-not-certified" in dead.headers["Palermo-Reason-Code"].split(",")
    assert "TUR-CG's membership certificate is valid" in dead.headers["Palermo-Reason"]
    assert sorted(MED) == sorted(m.subject.split(".")[2] for m in outcome.delivered[TO_LAPSED])


def test_every_case_is_a_distinct_message() -> None:
    """Cases are told apart by their bytes; no two may share them."""
    assert len(CASES) == len({c.data for c in CASES})


async def test_replay_after_a_broker_restart_is_refused(
    nats_server: NatsServer, federated_url: str, fed: DevFederation
) -> None:
    """An envelope accepted by one broker process and published again (new Nats-Msg-Id) after
    that broker stopped is refused by the next one: the replay marker lives in PLM_SEEN."""
    header, data = envelope(fed, recipients=MED)
    nc = await nats.connect(nats_server.client_url)
    try:
        for msg_id in ("first", "replayed-later"):
            async with running_broker(federated_url, fed) as broker:
                await nc.jetstream().publish(
                    publish_subject(header), data, headers={"Nats-Msg-Id": msg_id}
                )

                async def processed(b: Broker = broker) -> bool:
                    return b.processed >= 1

                await wait_for(processed, within=30)
        [dead] = await stream_messages(nc, "PLM_DEAD")
        delivered = await stream_messages(nc, "PLM_DLV")
    finally:
        await nc.close()
    assert "replayed" == dead.headers["Palermo-Reason-Code"]
    assert f"envelope {header.id} was already accepted" in dead.headers["Palermo-Reason"]
    assert sorted(MED) == sorted(m.subject.split(".")[2] for m in delivered)
