"""docs/operations.md, followed: its ``<!-- walkthrough: NAME -->`` shell blocks run in order on
real processes (3 TLS hub servers, the broker, three nodes), so the document cannot drift."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
BLOCK = re.compile(r"<!-- walkthrough: ([\w-]+) -->\n```sh\n(.*?)```", re.S)
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)
BIN = Path(sys.executable).parent


def _blocks() -> dict[str, str]:
    return dict(BLOCK.findall(DOC.read_text()))


def _free_base() -> int:
    """A client port P such that P..P+2 and the cluster, leafnode and monitoring ports render
    derives from it (P+2000.., P+3200.., P+4000..) are all free on loopback."""
    for _ in range(200):
        # Below the ephemeral range (32768..): no outgoing connection takes one meanwhile.
        base = random.randrange(10000, 28000)
        ports = [base + shift + n for shift in (0, 2000, 3200, 4000) for n in range(3)]
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port range on loopback")


def _until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        time.sleep(0.1)


class Operator:
    """Runs the document's blocks as an operator would, in a shell with $ETC and $WORK."""

    def __init__(self, tmp: Path) -> None:
        self.etc, self.work, self.logs = tmp / "etc-palermo", tmp / "work", tmp / "logs"
        self.logs.mkdir()
        self.base = _free_base()
        self.env = {
            **os.environ,
            "ETC": str(self.etc),
            "WORK": str(self.work),
            "PATH": f"{BIN}:{os.environ['PATH']}",
            # The rendered broker.toml says 8480; other tests may hold it on this machine.
            "PALERMO_BROKER_HTTP_PORT": "0",
            # Likewise the nodes' ingest ports (8482.. in the rendered node.toml files).
            "PALERMO_NODE_INGEST_PORT": "0",
        }
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.log_files: dict[str, BinaryIO] = {}

    def _script(self, name: str) -> str:
        return _blocks()[name].replace("--client-port 4222", f"--client-port {self.base}")

    def run(self, name: str) -> str:
        """The block's lines in one ``bash -euo pipefail``; its output."""
        script = "\n".join(line for line in self._script(name).splitlines()
                           if not line.endswith("&"))  # fmt: skip
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True, text=True, timeout=120, env=self.env, cwd=self.work.parent,
        )  # fmt: skip
        assert 0 == done.returncode, f"{name}: {done.stderr}{done.stdout}"
        return done.stdout

    def start(self, name: str) -> list[str]:
        """Every ``... &`` line of the block as a service process; their log names."""
        started = []
        for line in self._script(name).splitlines():
            if line.endswith("&"):
                label = f"{name}-{len(self.services)}"
                log = self.log_files[label] = (self.logs / f"{label}.log").open("wb")
                self.services[label] = subprocess.Popen(
                    ["bash", "-c", "exec " + line.removesuffix("&").strip()],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.work.parent,
                )  # fmt: skip
                started.append(label)
        assert started, name
        return started

    def log(self, label: str) -> str:
        assert self.services[label].poll() is None, (self.logs / f"{label}.log").read_text()
        return (self.logs / f"{label}.log").read_text()

    def stop(self, label: str) -> None:
        process = self.services.pop(label)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        finally:
            self.log_files.pop(label).close()

    def stop_all(self) -> None:
        for label in reversed(list(self.services)):
            self.stop(label)


@pytest.fixture
def operator(tmp_path: Path) -> Iterator[Operator]:
    op = Operator(tmp_path)
    try:
        yield op
    finally:
        op.stop_all()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _meta_leader(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/jsz", timeout=2) as answer:
            return str((json.load(answer).get("meta_cluster") or {}).get("leader") or "")
    except (urllib.error.URLError, OSError):
        return ""


def _report_id(output: str) -> str:
    """The report id a 'palermo publish' printed (its first 8 hex digits, as lists show)."""
    found = re.search(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", output)
    assert found, output
    return found.group(1)


def test_operations_walkthrough(operator: Operator) -> None:
    """Render, 3-server hub, broker, directory, three nodes, a first report ITA-GDF -> GRC-HCG,
    key rotation, revocation of ESP-GC, backup and restore of GRC-HCG's node store."""
    assert [
        "render", "hub", "streams", "broker", "directory", "nodes", "first-report", "inbox",
        "rotate",
        "restart-node", "report-to-rotated", "inbox-rotated", "revoke", "backup", "restore",
    ] == list(_blocks())  # fmt: skip
    listed = operator.run("render")
    assert "hub-1.conf" in listed
    assert "ITA-GDF.node.toml" in listed

    operator.start("hub")
    monitors = [operator.base + 4000 + n for n in range(3)]
    _until(lambda: all(map(_healthy, monitors)), 60, "the three hub servers healthy")
    _until(lambda: len({_meta_leader(p) for p in monitors} - {""}) == 1 and
           all(map(_meta_leader, monitors)), 60, "one JetStream meta leader")  # fmt: skip

    # The operator creates the streams: the broker's user may not (decision 0015).
    assert "ready" in operator.run("streams")
    (broker,) = operator.start("broker")
    _until(lambda: "broker consuming" in operator.log(broker), 60, "the broker consuming")

    shown = operator.run("directory")
    assert "ITA-GDF" in shown
    assert "GRC-HCG" in shown
    nodes = operator.start("nodes")
    assert 3 == len(nodes)
    # As an operator would: the nodes up (each has read the directory) before the first report.
    # Publishing at once was seen to read the 3-server hub's directory without its federation
    # policy once, on a loaded machine, seconds after it was written ("no verified federation
    # policy is in force").
    _until(lambda: all('"node ready"' in operator.log(n) for n in nodes), 60, "the nodes ready")

    published = operator.run("first-report")
    assert "GRC-HCG" in published
    report_id = _report_id(published)

    def in_inbox() -> bool:
        for label in nodes:
            operator.log(label)  # a node that died fails here, with its log
        return report_id in operator.run("inbox")

    _until(in_inbox, 60, "the report in GRC-HCG's inbox")

    rotated = operator.run("rotate")
    keys = re.findall(r'"([^"]+\.pem)"', rotated.splitlines()[-1])
    assert 2 == len(keys)
    assert keys[0] != keys[1]
    assert all(Path(k).is_file() for k in keys)

    operator.stop(nodes[0])  # ITA-GDF restarts on its new key list
    operator.start("restart-node")
    second = _report_id(operator.run("report-to-rotated"))
    _until(lambda: second in operator.run("inbox-rotated"), 60, "GRC's report in ITA's inbox")

    revoked = operator.run("revoke")
    assert "revoked: ESP-GC" in revoked

    operator.stop(nodes[1])  # GRC-HCG: a node store is backed up with the node stopped
    operator.run("backup")
    restored = operator.run("restore")
    assert report_id in restored


def _palermo_commands() -> list[list[str]]:
    """Every 'palermo ...' command line in every sh block of the document, as words."""
    commands = []
    for block in SH_BLOCK.findall(DOC.read_text()):
        for line in block.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, "#"
            tokens = list(lexer)
            bounds = [-1] + [i for i, t in enumerate(tokens) if set(t) <= set("&|;()")]
            for start, end in zip(bounds, [*bounds[1:], len(tokens)], strict=True):
                words = tokens[start + 1 : end]
                while words and (words[0] in ("sudo", "env") or "=" in words[0]):
                    words = words[3:] if words[:2] == ["sudo", "-u"] else words[1:]
                if words and (words[0] == "palermo" or words[0].endswith("/bin/palermo")):
                    commands.append(words[1:])
    return commands


def test_every_palermo_command_in_the_document_exists_with_its_options() -> None:
    """Each 'palermo <group> <command>' in docs/operations.md is a real command and every
    --option it uses is one of that command's options."""
    commands = _palermo_commands()
    assert len(commands) >= 20
    helps: dict[tuple[str, ...], subprocess.CompletedProcess[str]] = {}
    for words in commands:
        # Up to three words: group, command and a sub-command ("broker streams create").
        path = tuple(w for w in words[:3] if re.fullmatch(r"[a-z]+", w))
        helped = helps.get(path) or subprocess.run(
            [str(BIN / "palermo"), *path, "--help"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        helps[path] = helped
        assert 0 == helped.returncode, (words, helped.stderr)
        for option in (w.split("=")[0] for w in words if w.startswith("--") and w != "--help"):
            assert option in helped.stdout, (words, option)
