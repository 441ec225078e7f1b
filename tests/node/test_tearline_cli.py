"""'palermo publish --tear-line', 'status' and 'retract' as real processes, against a broker
and the partners' nodes on a live stack."""

from __future__ import annotations

import json
from pathlib import Path

from palermo.devfed import DevFederation
from tests.harness import EXAMPLES, palermo, running_broker, running_nodes, wait_for

ALERT = next(EXAMPLES.glob("12-*.json"))
PARTNERS = ("MLT-AFM", "GRC-HCG", "ESP-GC", "LBY-DCIM", "TUR-CG")


async def test_publish_status_and_retract_take_the_tear_line_along(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """One command each: the tear-line goes to LBY-DCIM and TUR-CG, status shows it on their
    rows, retract withdraws both envelopes and every partner purges."""
    fed.write(tmp_path / "fed")
    ita = str(fed.node_config(tmp_path / "fed", "ITA-GDF", federated_url))
    async with (
        running_nodes(federated_url, fed, PARTNERS, tmp_path / "nodes"),
        running_broker(federated_url, fed),
    ):
        done = await palermo("publish", str(ALERT), "--tear-line", "--config", ita, "--json")
        assert 0 == done.returncode, done.stderr
        sent = json.loads(done.stdout)
        below = sent["tear_line"]
        assert (["ESP-GC", "GRC-HCG", "MLT-AFM"], ["LBY-DCIM", "TUR-CG"]) == (
            sent["recipients"],
            below["recipients"],
        )
        assert {} == below["refused"]

        async def rows(status: str) -> bool:
            done = await palermo("status", sent["id"], "--config", ita, "--json")
            found = json.loads(done.stdout) if done.returncode == 0 else {}
            return len(found) == 5 and {r["status"] for r in found.values()} == {status}

        await wait_for(lambda: rows("delivered"), within=60, every=0.2)
        text = await palermo("status", sent["id"], "--config", ita)
        lines = {line.split()[0]: line for line in text.stdout.splitlines() if line[:1].isupper()}
        assert f"(tear-line {below['id']})" in lines["LBY-DCIM"]
        assert "tear-line" not in lines["MLT-AFM"]

        done = await palermo("retract", sent["id"], "--reason", "wrong boat", "--config", ita,
                             "--json")  # fmt: skip
        assert 0 == done.returncode, done.stderr
        retracted = json.loads(done.stdout)
        assert [below["id"]] == [t["report"] for t in retracted["tear_lines"]]
        await wait_for(lambda: rows("purged"), within=60, every=0.2)

        done = await palermo("publish", str(ALERT), "--tear-line", "--config", ita)
        assert 0 == done.returncode, done.stderr
        first, second = done.stdout.splitlines()[:2]
        assert ("published", "to ESP-GC, GRC-HCG, MLT-AFM") == (first[:9], first[47:])
        assert ("tear-line", "to LBY-DCIM, TUR-CG") == (second[:9], second[-19:])
