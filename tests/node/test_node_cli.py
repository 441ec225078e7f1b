"""The agency's commands as real processes: node run, publish, inbox list / show."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from palermo.devfed import DevFederation
from palermo.natsserver import free_port
from tests.harness import EXAMPLES, PALERMO, start_broker_process, stop_process

EXAMPLE = EXAMPLES / "01-routes-central-med-departure.json"


N_IMPORT = 10_000


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PALERMO, *args], capture_output=True, text=True, timeout=60, check=False)


async def test_publish_then_read_the_inbox(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """ITA-GDF publishes; MLT-AFM's node stores it; its inbox shows it with the codes."""
    url = federated_url
    broker = start_broker_process(fed.broker_config(tmp_path, url), tmp_path / "broker.log")
    ita = fed.node_config(tmp_path / "fed", "ITA-GDF", url)
    mlt = fed.node_config(tmp_path / "fed", "MLT-AFM", url)
    port = free_port()
    bundle = next(
        p
        for p in (tmp_path / "fed" / "documents").glob("*key-bundle.json")
        if json.loads(p.read_text())["document"]["agency"] == "MLT-AFM"
    )
    with (tmp_path / "node.log").open("ab") as log:
        node = subprocess.Popen(
            [PALERMO, "node", "run", "--config", str(mlt)],
            stdout=log,
            stderr=log,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "PALERMO_NODE_HTTP_PORT": str(port),
                "PALERMO_NODE_PUBLISH_ON_START": json.dumps([str(bundle)]),
            },
        )
    try:
        published = _run("publish", str(EXAMPLE), "--config", str(ita), "--json")
        assert 0 == published.returncode, published.stderr
        sent = json.loads(published.stdout)
        assert "MLT-AFM" in sent["recipients"]
        listed: list[dict[str, object]] = []
        for _ in range(200):
            done = _run("inbox", "list", "--config", str(mlt), "--json")
            listed = json.loads(done.stdout) if done.returncode == 0 else []
            if listed:
                break
            await asyncio.sleep(0.1)
        assert [sent["id"]] == [e["id"] for e in listed]
        assert "published bundle.MLT-AFM" in (tmp_path / "node.log").read_text()
        # One line when ready: agency, the NATS server, its ports (issue 15 item 10).
        [ready] = [
            json.loads(line)
            for line in (tmp_path / "node.log").read_text().splitlines()
            if '"node ready"' in line
        ]
        assert ("MLT-AFM", port) == (ready["agency"], ready["http_port"])
        assert ready["nats"] == url.split(",")[0]
        assert ready["ingest"][0].startswith("http://127.0.0.1:")
        shown = _run("inbox", "show", sent["id"], "--config", str(mlt), "--json")
        data = json.loads(shown.stdout)
        assert "TLP:AMBER" in data["codes"]
        assert "no-judicial-disclosure" in [o["code"] for o in data["obligations"]]
        assert json.loads(EXAMPLE.read_text())["title"] == data["report"]["title"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert "palermo_node_stored_total 1.0" in resp.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert 200 == resp.status
    finally:
        assert 0 == stop_process(node, signal.SIGTERM)
        assert 0 == stop_process(broker, signal.SIGTERM)


def test_publish_with_a_bad_config_says_what_is_wrong(tmp_path: Path) -> None:
    """A missing config file is named; an invalid one names the field."""
    missing = _run("publish", str(EXAMPLE), "--config", str(tmp_path / "none.toml"))
    assert 2 == missing.returncode
    assert "does not exist" in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('agency = "ita"\n')
    invalid = _run("inbox", "list", "--config", str(bad))
    assert 2 == invalid.returncode
    assert "agency" in invalid.stderr


def test_publish_refuses_a_kind_with_its_own_command(fed: DevFederation, tmp_path: Path) -> None:
    """``kind: request`` through publish (issue 15 item 1): refused before connecting (the
    config names a server nobody listens on), with the command that sends a request."""
    fed.write(tmp_path / "fed")
    ita = fed.node_config(tmp_path / "fed", "ITA-GDF", f"nats://127.0.0.1:{free_port()}")
    request = tmp_path / "request.json"
    request.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "kind": "request"}))
    done = _run("publish", str(request), "--config", str(ita))
    assert 0 != done.returncode
    assert "kind_not_publishable" in done.stderr or "cannot be published" in done.stderr
    assert "palermo request --question" in " ".join(done.stderr.split())


@pytest.mark.slow
async def test_bulk_import_is_resumable_and_reports_every_line(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """10,000 lines, 200 invalid: 9,800 published, each invalid line named, none lost; a rerun
    sends nothing twice."""
    url = federated_url
    fed.write(tmp_path / "fed")
    ita = fed.node_config(tmp_path / "fed", "ITA-GDF", url)
    good = json.loads(EXAMPLE.read_text())
    lines = []
    for i in range(N_IMPORT):
        line = {**good, "title": f"boat {i}"}
        if i % 50 == 7:  # 200 invalid lines
            line["priority"] = "whenever"
        lines.append(json.dumps(line))
    backlog = tmp_path / "backlog.jsonl"
    backlog.write_text("\n".join(lines) + "\n")
    first = subprocess.run(
        [PALERMO, "import", str(backlog), "--config", str(ita)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert 0 == first.returncode, first.stderr
    results = [
        json.loads(r) for r in (tmp_path / "backlog.jsonl.results.jsonl").read_text().splitlines()
    ]
    assert 9_800 == sum(r["status"] == "published" for r in results)
    invalid = [r["line"] for r in results if r["status"] == "invalid"]
    assert list(range(8, N_IMPORT + 1, 50)) == invalid
    assert all("priority" in r["reason"] for r in results if r["status"] == "invalid")
    again = _run("import", str(backlog), "--config", str(ita))
    assert 0 == again.returncode
    import nats

    nc = await nats.connect(url)
    published = (await nc.jetstream().stream_info("PLM_PUB")).state.messages
    await nc.close()
    assert 9_800 == published
