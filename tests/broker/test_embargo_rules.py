"""The broker's embargo rules at fixed times (an injected 'now', no server): the cap, ages
counted from not_before, and decisions taken as of the release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.msg import Msg

from broker._inspection import BrokerOptions, Outcome, _Inspection
from broker.config import BrokerSettings
from broker.metrics import BrokerMetrics
from broker.streams import StreamLimits, stream_configs
from palermo.devfed import DevFederation
from protocol.transport import publish_subject
from tests.harness import envelope

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class _Broker(_Inspection):
    """The broker's pure half over a dev federation's stores."""

    def __init__(self, fed: DevFederation, options: BrokerOptions) -> None:
        self.trust = fed.trust_store()
        self.policy = fed.policy_store(self.trust)
        self.options = options
        self.metrics = BrokerMetrics()


@pytest.fixture(scope="module")
def fed() -> DevFederation:
    return DevFederation.build(T)


def _inspect(
    fed: DevFederation, now: datetime, not_before: datetime | None, **options: object
) -> Outcome:
    header, data = envelope(fed, recipients=["MLT-AFM"], created=T, not_before=not_before)
    broker = _Broker(fed, BrokerOptions(**options))  # type: ignore[arg-type]
    outcome = broker.inspect(Msg(None, publish_subject(header), data=data), now)  # type: ignore[arg-type]
    broker.decide(outcome, now)
    return outcome


@pytest.mark.parametrize(
    ("not_before", "now", "expected"),
    [
        (None, T + 6 * DAY, None),
        (None, T + 8 * DAY, "too_old"),
        # Held ten days: seven days of age count from its release, not its creation.
        (T + 10 * DAY, T + 16 * DAY, None),
        (T + 10 * DAY, T + 18 * DAY, "too_old"),
    ],
)
def test_age_counts_from_not_before(
    fed: DevFederation, not_before: datetime | None, now: datetime, expected: str | None
) -> None:
    """max_age (7 days) is measured from the later of created and not_before."""
    outcome = _inspect(fed, now, not_before)
    assert expected == (outcome.error.code if outcome.error else None)


def test_embargo_beyond_the_cap_is_refused(fed: DevFederation) -> None:
    """31 days ahead is beyond the default 30-day cap; a cap of 40 days takes it."""
    far = T + 31 * DAY
    assert "embargo_too_far" == _inspect(fed, T, far).error.code  # type: ignore[union-attr]
    assert _inspect(fed, T, far, max_embargo=40 * DAY).error is None


def test_decided_as_of_the_release(fed: DevFederation) -> None:
    """At arrival the embargo does not deny: MLT-AFM is allowed, as of not_before, and held."""
    outcome = _inspect(fed, T, T + DAY)
    assert (["MLT-AFM"], True) == (outcome.allowed, outcome.held)


def test_released_envelope_is_not_held_again(fed: DevFederation) -> None:
    """Past not_before (a release), the same envelope is delivered, not held."""
    outcome = _inspect(fed, T + DAY + timedelta(seconds=1), T + DAY)
    assert (["MLT-AFM"], False) == (outcome.allowed, outcome.held)


def test_hold_and_replay_streams_outlast_the_cap() -> None:
    """PLM_HOLD keeps a schedule a day beyond the cap; PLM_SEEN keeps a marker 7 days beyond
    the latest possible release, so the replay window counts from not_before."""
    configs = {c.name: c for c in stream_configs(StreamLimits(hold_days=31))}
    hold, seen = configs["PLM_HOLD"], configs["PLM_SEEN"]
    assert (31 * 86_400, True) == (hold.max_age, hold.allow_msg_schedules)
    assert (7 + 31) * 86_400 == seen.max_age
    assert BrokerSettings.model_fields["max_embargo_days"].default + 1 == StreamLimits().hold_days
