"""``palermo request / requests / respond / release status`` as real processes, against
in-process nodes and broker: deadlines shown as time left, overdue listed on both sides at a
chosen time, verdicts, and the requester's view of release decisions."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

from node.config import NodeSettings
from node.service import Node
from palermo.devfed import DevFederation
from schemas import from_epoch_ms
from tests.harness import example, palermo, running_broker, wait_for


@asynccontextmanager
async def _nodes(
    url: str, fed: DevFederation, home: Path, agencies: tuple[str, ...]
) -> AsyncIterator[tuple[dict[str, Node], dict[str, Path]]]:
    """Each agency's node opened from its node.toml (the file the commands read), running."""
    fed.write(home)
    configs = {a: fed.node_config(home, a, url) for a in agencies}
    async with AsyncExitStack() as stack:
        nodes = {
            a: await stack.enter_async_context(Node.open(NodeSettings.load(c)))
            for a, c in configs.items()
        }
        tasks = [asyncio.create_task(n.run()) for n in nodes.values()]
        try:
            yield nodes, configs
        finally:
            for n in nodes.values():
                n.stop()
            await asyncio.gather(*tasks)


async def _json(*args: str) -> object:
    done = await palermo(*args, "--json")
    assert 0 == done.returncode, done.stderr
    return json.loads(done.stdout)


async def test_request_deadline_overdue_and_verdict_from_the_command_line(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """MLT-AFM asks ITA-GDF cold, urgent, on directly accessible data: ITA-GDF's list shows
    about 8 hours left; at a time 9 hours on, both sides list it overdue (ITA-GDF owes it,
    MLT-AFM is owed it); an answer without a verdict is refused, one with a verdict arrives."""
    async with (
        _nodes(federated_url, fed, tmp_path / "fed", ("ITA-GDF", "MLT-AFM")) as (nodes, cfg),
        running_broker(federated_url, fed),
    ):
        ita, mlt = str(cfg["ITA-GDF"]), str(cfg["MLT-AFM"])
        sent = await _json("request", "--to", "ITA-GDF", "--subject", "verify-document",
                           "--identifier", "YA1234567", "--question", "Genuine?", "--urgent",
                           "--access", "direct", "-c", mlt)  # fmt: skip
        assert isinstance(sent, dict)

        async def at_ita() -> bool:
            return bool(nodes["ITA-GDF"].inbox.messages("request"))

        await wait_for(at_ita, within=20)
        listed = await palermo("requests", "-c", ita)
        assert 0 == listed.returncode, listed.stderr
        assert re.search(
            rf"{sent['request']}  urgent\s+from MLT-AFM verify-document YA1234567 "
            r"\(due in (7h 59m|8h 0m)\): Genuine\?",
            listed.stdout,
        ), listed.stdout
        later = (from_epoch_ms(sent["deadline_ms"]) + timedelta(hours=1)).isoformat()
        owed = await _json("requests", "--overdue", "--at", later, "-c", ita)
        owing = await _json("requests", "--overdue", "--at", later, "-c", mlt)
        assert [(sent["request"], "received", "overdue by 1h 0m")] == [
            (r["id"], r["direction"], r["time_left"]) for r in owed
        ]
        assert [(sent["request"], "sent", "ITA-GDF")] == [
            (r["id"], r["direction"], r["to"]) for r in owing
        ]
        assert "nothing overdue" in (await palermo("requests", "--overdue", "-c", ita)).stdout

        refused = await palermo("respond", sent["request"], "--answer", "Seen.", "-c", ita)
        assert 1 <= refused.returncode
        assert "verdict" in refused.stderr
        await _json("respond", sent["request"], "--answer", "Seen.", "--verdict", "forged",
                    "-c", ita)  # fmt: skip

        async def answered() -> bool:
            return bool(nodes["MLT-AFM"].inbox.messages("response"))

        await wait_for(answered, within=20)
        responses = await palermo("requests", "--responses", "-c", mlt)
        assert f"re {sent['request']} [forged]: Seen." in responses.stdout


async def test_release_status_from_the_command_line(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """A request about a report goes to its originator; the requester's 'release status' says
    pending, then granted with the release's id."""
    async with (
        _nodes(federated_url, fed, tmp_path / "fed", ("ITA-GDF", "MLT-AFM")) as (nodes, cfg),
        running_broker(federated_url, fed),
    ):
        mlt = str(cfg["MLT-AFM"])
        assert "no release requests sent" in (await palermo("release", "status", "-c", mlt)).stdout
        report = await nodes["ITA-GDF"].publish(example("01"))

        async def at_mlt() -> bool:
            return nodes["MLT-AFM"].inbox.seen(report.header.id)

        await wait_for(at_mlt, within=20)
        # About a report (positional, as before deadlines): to its originator, 7 days.
        question = await _json("request", report.header.id, "--question", "How many?", "-c", mlt)
        assert isinstance(question, dict)
        assert (report.header.id, "ITA-GDF") == (question["about"], question["to"])
        asked = await _json("release", "request", report.header.id, "--to", "AUS-ABF",
                            "--purpose", "joint operation", "-c", mlt)  # fmt: skip
        assert isinstance(asked, dict)

        async def at_ita() -> bool:
            return bool(nodes["ITA-GDF"].inbox.release_requests("pending"))

        await wait_for(at_ita, within=20)
        pending = await palermo("release", "status", "-c", mlt)
        assert (
            f"{asked['request']}  report {report.header.id} → AUS-ABF, asked of ITA-GDF: pending"
            in (pending.stdout)
        )
        release = await nodes["ITA-GDF"].decide_release(asked["request"], grant=True)
        granted = await palermo("release", "status", "-c", mlt)
        assert f"AUS-ABF, asked of ITA-GDF: granted (release {release})" in granted.stdout
