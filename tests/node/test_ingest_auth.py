"""POST /v1/reports makes the agency sign and publish: a live node (``palermo node run`` on a
real nats-server) answers it only on its own listener, only with the token, and refuses to start
with ingest anyone on the network could reach (issue #12 item 3)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import ssl
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from structlog.testing import capture_logs

from node.config import NodeSettings
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer, free_port
from schemas.errors import ConfigError
from tests.harness import PALERMO, render_on_free_ports, stop_process, wait_for

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "schemas"
    / "examples"
    / "01-routes-central-med-departure.json"
)


@dataclass
class LiveNode:
    """ITA-GDF's node as a process: its health port, its ingest port and token, its log."""

    url: str
    health: int
    ingest: int
    token: str
    log: Path

    async def published(self) -> int:
        """How many messages PLM_PUB has ever taken (its last sequence)."""
        nc = await nats.connect(self.url)
        try:
            return int((await nc.jetstream().stream_info("PLM_PUB")).state.last_seq)
        finally:
            await nc.close()


async def _post(port: int, headers: dict[str, str]) -> tuple[int | None, Any]:
    """POST the example report; (status, JSON body), or (None, None) if nothing listens."""
    url = f"http://127.0.0.1:{port}/v1/reports"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, data=EXAMPLE.read_bytes(), headers=headers) as resp,
        ):
            body = await resp.json(content_type=None) if resp.status != 404 else None
            return resp.status, body
    except aiohttp.ClientConnectorError:
        return None, None


async def _ready(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as resp,
        ):
            return resp.status == 200
    except aiohttp.ClientConnectorError:
        return False


@pytest.fixture
async def live(federated_url: str, fed: DevFederation, tmp_path: Path) -> AsyncIterator[LiveNode]:
    """The dev federation on a real server; ITA-GDF's node run as an operator runs it, its
    health on one port, its ingest on another behind a token file the test wrote (0600)."""
    url = federated_url
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "ITA-GDF", url)
    token = secrets.token_urlsafe(32)
    token_file = tmp_path / "ingest.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    health, ingest = free_port(), free_port()
    log = tmp_path / "node.log"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PALERMO_NODE_HTTP_PORT": str(health),
        "PALERMO_NODE_INGEST_PORT": str(ingest),
        "PALERMO_NODE_INGEST_TOKEN_FILE": str(token_file),
    }
    with log.open("ab") as out:
        node = subprocess.Popen([str(PALERMO), "node", "run", "--config", str(config)],
                                stdout=out, stderr=out, env=env)  # fmt: skip
    try:

        async def ready() -> bool:
            assert node.poll() is None, log.read_text()
            return await _ready(health)

        await wait_for(ready, within=30)
        yield LiveNode(url, health, ingest, token, log)
    finally:
        stop_process(node)


async def test_ingest_without_the_token_is_401_and_publishes_nothing(live: LiveNode) -> None:
    """No Authorization header: 401 on the ingest listener, no /v1/reports on the health
    listener, and PLM_PUB takes nothing."""
    before = await live.published()
    answers = {
        "health": (await _post(live.health, {}))[0],
        "ingest": (await _post(live.ingest, {}))[0],
    }
    assert {"health": 404, "ingest": 401} == answers
    assert before == await live.published()


async def test_ingest_with_a_wrong_token_is_401_like_a_missing_one(live: LiveNode) -> None:
    """A wrong bearer token, another scheme, or none: the same 401 body (nothing tells a caller
    how close it came), and nothing published."""
    before = await live.published()
    missing = await _post(live.ingest, {})
    wrong = await _post(live.ingest, {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"})
    prefix = await _post(live.ingest, {"Authorization": f"Bearer {live.token[:-1]}"})
    basic = await _post(live.ingest, {"Authorization": f"Basic {live.token}"})
    assert 401 == wrong[0]
    assert [wrong, wrong, wrong] == [missing, prefix, basic]
    assert "unauthenticated" == wrong[1]["code"]
    assert before == await live.published()


async def test_ingest_with_the_token_is_202_and_published(live: LiveNode) -> None:
    """The right token: 202 with the report id and its recipients, and PLM_PUB has it."""
    before = await live.published()
    status, body = await _post(live.ingest, {"Authorization": f"Bearer {live.token}"})
    assert 202 == status
    assert "MLT-AFM" in body["recipients"]
    assert before + 1 == await live.published()


async def test_a_refusal_is_logged_with_the_peer_never_the_token(live: LiveNode) -> None:
    """Each 401 leaves a log line naming the caller's address (no line holds the token) and
    counts in /metrics."""
    wrong = secrets.token_urlsafe(32)
    assert 401 == (await _post(live.ingest, {"Authorization": f"Bearer {wrong}"}))[0]

    def refusals() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in live.log.read_text().splitlines()
                 if line.startswith("{")]  # fmt: skip
        return [line for line in lines if line.get("event") == "ingest refused"]

    async def logged() -> bool:
        return bool(refusals())

    await wait_for(logged, within=10)
    assert "127.0.0.1" == refusals()[0]["peer"].rsplit(":", 1)[0]
    text = live.log.read_text()
    assert (False, False) == (live.token in text, wrong in text)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{live.health}/metrics") as resp,
    ):
        metrics = await resp.text()
    assert "palermo_node_ingest_refused_total 1.0" in metrics.splitlines()


# --- refusing to start -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A production node.toml as 'palermo deploy render' writes it (TLS, nkey, dev = false),
    without any ingest setting: each test says how ingest listens."""
    out = tmp_path_factory.mktemp("render")
    manifest = render_on_free_ports(out)
    rendered = Path(manifest["agencies"]["ITA-GDF"]["node_config"])
    lines = [line for line in rendered.read_text().splitlines(keepends=True)
             if not line.startswith("ingest_")]  # fmt: skip
    config = out / "ITA-GDF.no-ingest.toml"
    config.write_text("".join(lines))
    return config


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "ingest.token"
    path.write_text(secrets.token_urlsafe(32) + "\n")
    path.chmod(0o600)
    return path


def _settings(config: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> NodeSettings:
    """The node.toml read as 'palermo node run' reads it, with PALERMO_NODE_* from ``env``."""
    for name, value in env.items():
        monkeypatch.setenv(f"PALERMO_NODE_{name.upper()}", value)
    return NodeSettings.load(config)


def test_rendered_config_without_ingest_settings_is_secure(rendered_node: Path) -> None:
    """The control: the production config as rendered passes every start-up check."""
    NodeSettings.load(rendered_node).check_secure()


def test_ingest_on_all_interfaces_without_auth_refuses_to_start(
    rendered_node: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ingest_host = 0.0.0.0 with no token and no mTLS: a typed config error saying what to
    set, before anything connects."""
    settings = _settings(rendered_node, monkeypatch, ingest_host="0.0.0.0", ingest_port="8482")
    with pytest.raises(ConfigError, match=r"0\.0\.0\.0, not a loopback address") as refused:
        settings.check_secure()
    assert "config_error" == refused.value.code
    assert "ingest_token_file" in refused.value.reason


def test_ingest_on_all_interfaces_without_auth_is_refused_in_dev_mode_too(
    rendered_node: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dev = true relaxes NATS TLS on a developer machine; it never opens a signing service to
    the network."""
    settings = _settings(rendered_node, monkeypatch, ingest_host="::", ingest_port="0", dev="true")
    with pytest.raises(ConfigError, match="not a loopback address"):
        settings.check_secure()


def test_ingest_on_loopback_without_auth_is_refused_outside_dev_mode(
    rendered_node: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loopback is not enough in production: every local process could sign."""
    settings = _settings(rendered_node, monkeypatch, ingest_port="0")
    with pytest.raises(ConfigError, match="ingest without authentication"):
        settings.check_secure()


def test_ingest_with_a_token_file_others_can_read_is_refused(
    rendered_node: Path, monkeypatch: pytest.MonkeyPatch, token_file: Path
) -> None:
    """A token in a 0644 file is refused like a key file (chmod 600 named as the fix)."""
    token_file.chmod(0o644)
    settings = _settings(rendered_node, monkeypatch, ingest_host="0.0.0.0", ingest_port="0",
                         ingest_token_file=str(token_file))  # fmt: skip
    with pytest.raises(ConfigError, match=f"chmod 600 {token_file}"):
        settings.check_secure()


def test_ingest_on_all_interfaces_with_a_token_starts(
    rendered_node: Path, monkeypatch: pytest.MonkeyPatch, token_file: Path
) -> None:
    """Authenticated, ingest may listen beyond loopback (behind a NetworkPolicy, say)."""
    settings = _settings(rendered_node, monkeypatch, ingest_host="0.0.0.0", ingest_port="0",
                         ingest_token_file=str(token_file))  # fmt: skip
    settings.check_secure()
    assert (True, "0.0.0.0") == (settings.ingest_enabled, settings.ingest_host)


# --- a Unix socket ---------------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a Unix socket path has at most 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="plm-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


async def test_ingest_on_a_unix_socket_is_0600_and_needs_the_token(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path, short_dir: Path
) -> None:
    """ingest_socket: the socket file is 0600 from the moment it listens, and the token is
    still required on it; the right token publishes."""
    from node.ingest import IngestServer
    from node.service import Node

    url = "http://palermo/v1/reports"  # the host is ignored on a Unix socket
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "ITA-GDF", nats_server.client_url)
    sock = short_dir / "ingest.sock"
    settings = NodeSettings.load(config, ingest_port=None, ingest_socket=sock)
    token = settings.ingest_token_file.read_text().strip() if settings.ingest_token_file else ""
    ingest = IngestServer.from_settings(settings)
    async with Node.open(settings) as node:
        assert [f"unix:{sock}"] == await ingest.start(node.http_ingest)
        try:
            mode = stat.S_IMODE(sock.stat().st_mode)
            statuses = []
            for headers in ({}, {"Authorization": f"Bearer {token}"}):
                connector = aiohttp.UnixConnector(path=str(sock))
                async with (
                    aiohttp.ClientSession(connector=connector) as http,
                    http.post(url, headers=headers, data=EXAMPLE.read_bytes()) as resp,
                ):
                    statuses.append(resp.status)
        finally:
            await ingest.stop()
    assert 0o600 == mode
    assert [401, 202] == statuses
    assert not sock.exists()


def test_ingest_token_is_never_in_a_repr(token_file: Path) -> None:
    """The loaded token shows as redacted; the file's text appears nowhere in its repr."""
    from node.ingest import IngestToken

    token = IngestToken.load(token_file)
    assert "IngestToken(<redacted>)" == repr(token)
    assert (True, False) == (
        token.accepts(f"Bearer {token_file.read_text().strip()}"),
        token.accepts(None),
    )


def test_short_token_is_refused(tmp_path: Path) -> None:
    """A token shorter than 32 characters could be guessed: a config error, not a weak lock."""
    from node.ingest import IngestToken

    path = tmp_path / "short.token"
    path.write_text("letmein\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="at least 32"):
        IngestToken.load(path)


async def test_concurrent_wrong_tokens_do_not_publish(live: LiveNode) -> None:
    """Twenty wrong tokens at once: all 401, and PLM_PUB takes nothing."""
    before = await live.published()
    answers = await asyncio.gather(
        *(_post(live.ingest, {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"})
          for _ in range(20))
    )  # fmt: skip
    assert [401] * 20 == [status for status, _ in answers]
    assert before == await live.published()


# --- mutual TLS ------------------------------------------------------------------------------


async def _post_tls(url: str, context: ssl.SSLContext) -> int | None:
    """POST the example report over TLS; the HTTP status, or None if no HTTP answer came
    (the server ended the handshake)."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, data=EXAMPLE.read_bytes(), ssl=context) as resp,
        ):
            return resp.status
    except aiohttp.ClientError:
        return None


async def test_ingest_over_mtls_takes_only_client_certificates_from_its_ca(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """ingest_tls_*: a client with no certificate, or one from another CA, never gets an HTTP
    answer (the handshake fails); a certificate from the configured CA publishes (202). mTLS
    alone is authentication enough for a non-loopback address outside dev mode."""
    from deploy.pki import DevCA
    from node.ingest import IngestServer
    from node.service import Node

    ours, other = DevCA("ingest-ca"), DevCA("someone-else")
    ca = ours.write(tmp_path / "pki" / "ca.pem", tmp_path / "pki" / "ca.key")
    server = ours.issue("node-ita-gdf", tmp_path / "pki" / "server", hosts=["127.0.0.1"],
                        server=True)  # fmt: skip
    client = ours.issue("case-system", tmp_path / "pki" / "client", client=True)
    stranger = other.issue("case-system", tmp_path / "pki" / "stranger", client=True)
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "ITA-GDF", nats_server.client_url)
    tls = {"ingest_tls_cert": server.cert, "ingest_tls_key": server.key,
           "ingest_tls_client_ca": ca.cert}  # fmt: skip
    production = NodeSettings.load(config, ingest_host="0.0.0.0", ingest_token_file=None,
                                   dev=False, **tls)  # fmt: skip
    production.check_ingest()
    settings = NodeSettings.load(config, ingest_port=0, ingest_token_file=None, **tls)
    ingest = IngestServer.from_settings(settings)

    def context(pair: Any | None) -> ssl.SSLContext:
        made = ssl.create_default_context(cafile=str(ca.cert))
        if pair is not None:
            made.load_cert_chain(str(pair.cert), str(pair.key))
        return made

    async with Node.open(settings) as node:
        (url,) = await ingest.start(node.http_ingest)
        try:
            with capture_logs() as logs:
                answers = [await _post_tls(url, context(pair)) for pair in (None, stranger, client)]
        finally:
            await ingest.stop()
    assert url.startswith("https://127.0.0.1:")
    assert [None, None, 202] == answers
    accepted = [e["client"] for e in logs if e["event"] == "ingest request"]
    assert ["commonName=case-system"] == accepted


# --- the dev federation ----------------------------------------------------------------------


async def test_dev_node_config_serves_ingest_with_its_own_token(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """A node.toml as 'palermo dev up' writes it: 'palermo node run' prints the ingest URL, and
    the token file next to the config (0600) is the one that publishes (docs/node.md)."""
    url = federated_url
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "ITA-GDF", url)
    token_file = tmp_path / "fed" / "ITA-GDF.ingest.token"
    log = tmp_path / "node.log"
    with log.open("ab") as out:
        node = subprocess.Popen([str(PALERMO), "node", "run", "--config", str(config)],
                                stdout=out, stderr=out,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:

        async def printed() -> bool:
            assert node.poll() is None, log.read_text()
            return "ingest: POST http://127.0.0.1:" in log.read_text()

        await wait_for(printed, within=30)
        line = next(x for x in log.read_text().splitlines() if x.startswith("ingest: POST "))
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        token = token_file.read_text().strip()
        answers = [
            (await _post(port, headers))[0]
            for headers in ({}, {"Authorization": f"Bearer {token}"})
        ]
    finally:
        stop_process(node)
    assert 0o600 == stat.S_IMODE(token_file.stat().st_mode)
    assert [401, 202] == answers
