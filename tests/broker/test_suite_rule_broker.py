"""The broker's suite rule at a fixed time (no server): under a federation that requires suite 2
for TLP:RED, a RED envelope sealed with suite 1 is refused to every recipient with the reason,
one sealed with suite 2 and an AMBER one with suite 1 are judged by the engine as usual."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from nats.aio.msg import Msg

from broker._inspection import BrokerOptions, Outcome, _Inspection
from broker.metrics import BrokerMetrics
from palermo.devfed import DevFederation
from policies import SUITE_BELOW_POLICY, Federation
from protocol.envelope import decode, seal
from protocol.keys import EncryptionKey
from protocol.transport import publish_subject
from schemas import EnvelopeHeader, Handling, new_uuid7

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EXAMPLE = "policies/examples/federation.toml"


class _Broker(_Inspection):
    def __init__(self, fed: DevFederation) -> None:
        self.trust = fed.trust_store()
        self.policy = fed.policy_store(self.trust)
        self.options = BrokerOptions()
        self.metrics = BrokerMetrics()


@pytest.fixture(scope="module")
def fed() -> DevFederation:
    from pathlib import Path

    data = Federation.from_toml((Path(__file__).parents[2] / EXAMPLE).read_text()).model_dump(
        mode="json"
    )
    data["rules"]["suite_2_for_tlp"] = ["RED"]
    return DevFederation.build(T, federation=Federation.model_validate(data))


def _judge(fed: DevFederation, tlp: str, suite: int, kind: str = "report") -> Outcome:
    ita = fed.agencies["ITA-GDF"]
    refs = [new_uuid7()] if kind == "retraction" else []
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.signing.kid, created=T, kind=kind,
        route="central-med", category="routes", refs=refs,
        handling=Handling(tlp=tlp, rel_to=["MLT-AFM"]), recipients=["MLT-AFM"],
    )  # fmt: skip
    x25519 = fed.agencies["MLT-AFM"].encryption.private
    key = EncryptionKey("MLT-AFM", x25519, MLKEM768PrivateKey.generate())
    data = seal(header, b"x" * 64, ita.signing, [key.public], suite=suite)
    assert suite == decode(data).suite
    broker = _Broker(fed)
    outcome = broker.inspect(Msg(None, publish_subject(header), data=data), T)  # type: ignore[arg-type]
    assert outcome.error is None
    broker.decide(outcome, T)
    return outcome


def test_red_under_suite_1_is_refused_to_every_recipient(fed: DevFederation) -> None:
    outcome = _judge(fed, "RED", 1)
    assert [] == outcome.allowed
    (reason,) = outcome.decisions["MLT-AFM"]["reasons"]
    assert SUITE_BELOW_POLICY == reason["code"]
    assert "requires suite 2 for TLP:RED" in reason["message"]


@pytest.mark.parametrize(("tlp", "suite"), [("RED", 2), ("AMBER", 1), ("AMBER", 2)])
def test_what_the_rule_does_not_cover_is_judged_as_usual(
    fed: DevFederation, tlp: str, suite: int
) -> None:
    assert ["MLT-AFM"] == _judge(fed, tlp, suite).allowed


def test_a_retraction_is_not_stopped_by_the_suite_rule(fed: DevFederation) -> None:
    """A RED report sealed with suite 1 before the rule was signed can still be withdrawn: the
    retraction goes under suite 1 to the same partners, and no policy change stops it."""
    assert ["MLT-AFM"] == _judge(fed, "RED", 1, kind="retraction").allowed
