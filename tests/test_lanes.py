"""The lane scheduler on its own (protocol/lanes.py, decision 0032): urgent first, the routine
share, slices, the per-originator fair share within urgent, order, and what close() gives back.

Fetches come from in-memory queues, so every turn is determined; the live behaviour (real
consumers, broker and nodes) is in tests/broker/test_lanes_live.py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import nats.errors
import pytest

from protocol.lanes import ROUTINE, URGENT, LaneScheduler, LaneShares, lane_filter
from protocol.transport import deliver_subject, publish_subject, subject_originator
from schemas import EnvelopeHeader, Handling, Priority, new_uuid7


@dataclass(frozen=True)
class FakeMsg:
    subject: str
    n: int


class FakeSub:
    """A pull subscription over a list: ``fetch`` hands out the next messages at once, or
    times out at once when there are none."""

    def __init__(self, msgs: list[FakeMsg]) -> None:
        self.queue = deque(msgs)
        self.fetches = 0

    async def fetch(self, batch: int, timeout: float) -> list[FakeMsg]:
        self.fetches += 1
        if not self.queue:
            raise nats.errors.TimeoutError
        return [self.queue.popleft() for _ in range(min(batch, len(self.queue)))]


def _msgs(originator: str, count: int, start: int = 0, urgent: bool = False) -> list[FakeMsg]:
    tail = ".urgent" if urgent else ""
    return [
        FakeMsg(f"plm.pub.{originator}.report.central-med.routes{tail}", start + i)
        for i in range(count)
    ]


def _scheduler(routine: list[FakeMsg], urgent: list[FakeMsg], batch: int = 8,
               **shares: Any) -> tuple[LaneScheduler, list[tuple[str, int]]]:  # fmt: skip
    deferred: list[tuple[str, int]] = []
    subs: dict[str, Any] = {ROUTINE: FakeSub(routine), URGENT: FakeSub(urgent)}
    lanes = LaneScheduler(
        subs,
        batch,
        LaneShares(**shares),
        lambda s: subject_originator(s) or "?",
        fetch_timeout_s=0.05,
        on_deferred=lambda o, n: deferred.append((o, n)),
    )
    return lanes, deferred


async def _drain(lanes: LaneScheduler) -> list[tuple[str, list[FakeMsg]]]:
    turns: list[tuple[str, list[FakeMsg]]] = []
    while (turn := await lanes.take()) is not None:
        turns.append(turn)  # type: ignore[arg-type]
    await lanes.close()
    return turns


async def test_urgent_work_goes_first_and_routine_in_slices() -> None:
    lanes, _ = _scheduler(_msgs("ITA-GDF", 20), _msgs("MLT-AFM", 3, urgent=True),
                          routine_slice=5)  # fmt: skip
    turns = await _drain(lanes)
    assert turns[0][0] == URGENT
    assert [m.n for m in turns[0][1]] == [0, 1, 2]
    routine = [t for t in turns if t[0] == ROUTINE]
    assert all(len(msgs) <= 5 for _, msgs in routine)
    assert [m.n for _, msgs in routine for m in msgs] == list(range(20))


async def test_routine_gets_one_turn_after_the_share_of_urgent_turns() -> None:
    # Continuous urgent work (more than the whole run takes): routine still moves, one slice
    # after every routine_share urgent turns.
    lanes, _ = _scheduler(_msgs("ITA-GDF", 6), _msgs("MLT-AFM", 200, urgent=True), batch=4,
                          routine_share=3, routine_slice=2, urgent_per_originator=4)  # fmt: skip
    turns = await _drain(lanes)
    lanes_in_order = [lane for lane, _ in turns]
    first_routine = lanes_in_order.index(ROUTINE)
    assert lanes_in_order[: first_routine + 1] == [URGENT, URGENT, URGENT, ROUTINE]
    # One fetched routine batch (4) in slices of 2: a routine turn after every three urgent ones;
    # all 6 routine messages are out while urgent work is still queued.
    assert lanes_in_order[:8] == [URGENT, URGENT, URGENT, ROUTINE] * 2
    last_routine = len(lanes_in_order) - 1 - lanes_in_order[::-1].index(ROUTINE)
    assert URGENT in lanes_in_order[last_routine:]
    assert lanes_in_order.count(URGENT) == 50
    assert [m.n for lane, msgs in turns if lane == ROUTINE for m in msgs] == list(range(6))


async def test_one_originators_urgent_flood_does_not_starve_another() -> None:
    flood = _msgs("ITA-GDF", 40, urgent=True)
    other = _msgs("GRC-HCG", 2, start=100, urgent=True)
    lanes, deferred = _scheduler([], flood + other, batch=64, urgent_per_originator=8)
    turns = await _drain(lanes)
    first = turns[0][1]
    # The other member's alerts, fetched behind the flood, go in the first turn.
    assert [m.n for m in first if "GRC-HCG" in m.subject] == [100, 101]
    assert len([m for m in first if "ITA-GDF" in m.subject]) == 8
    # The flood is spread over the next turns, in order, and counted as deferred.
    flooded = [m.n for _, msgs in turns for m in msgs if "ITA-GDF" in m.subject]
    assert flooded == list(range(40))
    assert deferred[0] == ("ITA-GDF", 32)
    assert all(o == "ITA-GDF" for o, _ in deferred)


async def test_order_per_originator_is_kept_within_the_urgent_lane() -> None:
    # Interleaved originators, unequal volumes: each originator's messages come out in order.
    mixed = []
    for i in range(30):
        mixed += _msgs("ITA-GDF", 1, start=i, urgent=True)
        if i % 3 == 0:
            mixed += _msgs("GRC-HCG", 1, start=1000 + i, urgent=True)
    lanes, _ = _scheduler([], mixed, batch=7, urgent_per_originator=2)
    turns = await _drain(lanes)
    out = [m for _, msgs in turns for m in msgs]
    for who in ("ITA-GDF", "GRC-HCG"):
        mine = [m.n for m in out if who in m.subject]
        assert mine == sorted(mine)
        assert len(mine) == len([m for m in mixed if who in m.subject])


def _numbers(turn: tuple[str, list[Any]] | None) -> tuple[str, list[int]] | None:
    return None if turn is None else (turn[0], [m.n for m in turn[1]])


async def test_while_a_routine_turn_is_in_hand_only_urgent_work_is_handed_out() -> None:
    """The broker handles an urgent turn beside the routine turn it has in hand (decision
    0036): while ``busy`` runs, routine work waits and urgent work is handed out; once ``busy``
    is done, routine comes next, in order."""
    lanes, _ = _scheduler(_msgs("ITA-GDF", 6), [], routine_slice=2)
    assert (ROUTINE, [0, 1]) == _numbers(await lanes.take())
    busy: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    for _ in range(3):  # routine work is ready, but a routine turn is in hand
        assert await lanes.take(busy=busy) is None
    lanes.subs[URGENT].queue.extend(_msgs("MLT-AFM", 2, urgent=True))  # type: ignore[attr-defined]
    assert (URGENT, [0, 1]) == _numbers(await lanes.take(busy=busy))
    busy.set_result(None)
    assert (ROUTINE, [2, 3]) == _numbers(await lanes.take(busy=busy))
    await lanes.close()


async def test_the_wait_for_work_ends_when_the_routine_turn_in_hand_is_done() -> None:
    """A broker whose routine turn finishes while both fetches are long-polling takes the next
    routine turn then, not when a fetch comes back (here: never)."""
    never = asyncio.get_running_loop().create_future()

    class Polling:
        async def fetch(self, batch: int, timeout: float) -> list[FakeMsg]:
            return await never  # type: ignore[no-any-return]

    lanes = LaneScheduler({ROUTINE: Polling(), URGENT: Polling()}, 8, LaneShares(routine_slice=1),
                          lambda s: "?", fetch_timeout_s=60)  # type: ignore[dict-item]  # fmt: skip
    lanes.ready[ROUTINE].extend(_msgs("ITA-GDF", 2))  # type: ignore[arg-type]
    busy: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.05, busy.set_result, None)
    turn = await asyncio.wait_for(lanes.take(busy=busy), 30)  # not the fetch timeout (60 s)
    assert (ROUTINE, [0]) == _numbers(turn)
    never.cancel()
    await lanes.close()


async def test_put_back_and_close_return_what_was_not_handled() -> None:
    lanes, _ = _scheduler(_msgs("ITA-GDF", 5), [], batch=8, routine_slice=3)
    turn = await lanes.take()
    assert turn is not None
    lane, msgs = turn
    lanes.put_back(lane, msgs[1:])  # the node handled one, then switched to urgent work
    turn = await lanes.take()
    assert turn is not None
    assert [m.n for m in turn[1]] == [1, 2, 3]
    left = await lanes.close()
    assert [m.n for m in left] == [4]  # type: ignore[attr-defined]


async def test_an_idle_scheduler_returns_none_for_idle_work() -> None:
    lanes, _ = _scheduler([], [])
    assert await lanes.take() is None
    assert not lanes.urgent_waiting()
    assert await lanes.close() == []


def _header(priority: Priority) -> EnvelopeHeader:
    return EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid="0123456789abcdef", created=0, kind="report",
        priority=priority, route="central-med", category="routes",
        handling=Handling(tlp="GREEN"), recipients=["MLT-AFM"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("priority", "pub", "dlv"),
    [
        (Priority.ROUTINE, "plm.pub.ITA-GDF.report.central-med.routes",
         "plm.dlv.MLT-AFM.ITA-GDF.report.central-med.routes"),
        (Priority.URGENT, "plm.pub.ITA-GDF.report.central-med.routes.urgent",
         "plm.dlv.MLT-AFM.ITA-GDF.report.central-med.routes.urgent"),
    ],
)  # fmt: skip
def test_the_signed_priority_picks_the_lane_subjects(
    priority: Priority, pub: str, dlv: str
) -> None:
    header = _header(priority)
    assert publish_subject(header) == pub
    assert deliver_subject("MLT-AFM", header) == dlv
    assert subject_originator(pub) == "ITA-GDF"
    assert subject_originator(dlv, 3) == "ITA-GDF"


def test_subject_originator_and_filters() -> None:
    assert subject_originator("plm.pub.ITA-GDF.report.central-med.routes.x") is None
    assert subject_originator("plm.pub.ITA-GDF.report") is None
    assert lane_filter("plm.dlv.MLT-AFM", ROUTINE) == "plm.dlv.MLT-AFM.*.*.*.*"
    assert lane_filter("plm.dlv.MLT-AFM", URGENT) == "plm.dlv.MLT-AFM.*.*.*.*.urgent"


class FlakySub(FakeSub):
    """A subscription whose first fetch fails as a client-library bug would (not a NATS
    error), or never returns at all (a pull request the client lost track of)."""

    def __init__(self, msgs: list[FakeMsg], first: str) -> None:
        super().__init__(msgs)
        self.first = first

    async def fetch(self, batch: int, timeout: float) -> list[FakeMsg]:
        if self.fetches == 0:
            self.fetches += 1
            if self.first == "raise":
                raise KeyError("a bug inside the client")
            await asyncio.Event().wait()  # hangs until cancelled
        return await super().fetch(batch, timeout)


@pytest.mark.parametrize("first", ["raise", "hang"])
async def test_a_lane_whose_fetch_fails_or_hangs_keeps_delivering(first: str) -> None:
    """Seen once in the stateful federation test: a routine delivery stayed pending in its
    consumer while the node idled. A fetch that raises anything, or never returns, must not
    stop its lane: the error is logged and the fetch started again."""
    routine = FlakySub(_msgs("ITA-GDF", 3), first)
    lanes = LaneScheduler({ROUTINE: routine, URGENT: FakeSub([])}, 8, LaneShares(),
                          lambda s: subject_originator(s) or "?", fetch_timeout_s=0.01,
                          stuck_after_s=0.2)  # fmt: skip
    got: list[int] = []
    deadline = asyncio.get_running_loop().time() + 5
    while len(got) < 3 and asyncio.get_running_loop().time() < deadline:
        turn = await lanes.take()
        if turn is not None:
            got += [m.n for m in turn[1]]  # type: ignore[attr-defined]
    await lanes.close()
    assert [0, 1, 2] == got
    assert routine.fetches >= 2
