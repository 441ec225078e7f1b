"""The TAXII server as an operator runs it: ``palermo taxii token ...`` and ``palermo node run``
with ``taxii_port``; the settings that would expose tokens are refused; the clients file."""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
from pathlib import Path

import aiohttp
import pytest
from typer.testing import CliRunner

from node.config import NodeSettings
from node.interop.taxii import taxii_server
from node.interop.taxii_clients import CLIENTS_FILE, TaxiiClients
from palermo.cli import app
from palermo.devfed import DevFederation
from schemas.errors import ConfigError, InputError
from tests.harness import PALERMO, stop_process, wait_for


def _cli(*args: str) -> str:
    """One ``palermo`` command, in this process (the node under test runs as a process)."""
    result = CliRunner().invoke(app, list(args))
    assert 0 == result.exit_code, result.output
    return result.stdout


async def _get(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status


async def test_node_run_serves_taxii_to_the_tokens_palermo_taxii_issues(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    """A token from 'palermo taxii token add' (kept hashed, 0600) reads the running node's
    TAXII server; 'token remove' stops it at the next request; 'served' lists what it got."""
    fed.write(tmp_path / "fed")
    config = str(fed.node_config(tmp_path / "fed", "ITA-GDF", federated_url))
    added = _cli("taxii", "token", "add", "reader", "--collections", "own,central-med",
                 "-c", config, "--json")  # fmt: skip
    token = json.loads(added)["token"]
    clients = tmp_path / "fed" / "state" / "ITA-GDF" / CLIENTS_FILE
    assert 0o600 == stat.S_IMODE(clients.stat().st_mode)
    assert token not in clients.read_text()
    log = tmp_path / "node.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PALERMO_NODE_TAXII_PORT": "0"}
    with log.open("ab") as out:
        node = subprocess.Popen([PALERMO, "node", "run", "--config", config],
                                stdout=out, stderr=out, env=env)  # fmt: skip
    try:

        async def printed() -> bool:
            assert node.poll() is None, log.read_text()
            return "taxii: http://127.0.0.1:" in log.read_text()

        await wait_for(printed, within=60)
        line = next(x for x in log.read_text().splitlines() if x.startswith("taxii: "))
        discovery = line.removeprefix("taxii: ")
        own = discovery.replace("/taxii2/", "/palermo/collections/own/objects/")
        assert [200, 200, 401] == [
            await _get(discovery, token),
            await _get(own, token),
            await _get(discovery, None),
        ]
        listed = _cli("taxii", "token", "list", "-c", config, "--json")
        assert [{"client": "reader", "collections": ["central-med", "own"]}] == [
            {k: v for k, v in c.items() if k != "added"} for c in json.loads(listed)
        ]
        _cli("taxii", "token", "remove", "reader", "-c", config)
        assert 401 == await _get(discovery, token)
    finally:
        stop_process(node)
    assert [] == json.loads(_cli("taxii", "served", "reader", "-c", config, "--json"))


@pytest.mark.parametrize(
    ("update", "problem"),
    [
        ({"taxii_port": 8443, "taxii_host": "0.0.0.0"}, "without TLS"),
        ({"taxii_port": 8443, "taxii_tls_cert": Path("c.pem")}, "go together"),
    ],
)
def test_settings_that_would_send_tokens_in_clear_are_refused(
    fed: DevFederation, tmp_path: Path, update: dict[str, object], problem: str
) -> None:
    """A TAXII listener off loopback needs TLS; a certificate needs its key."""
    fed.write(tmp_path / "fed")
    settings = NodeSettings.load(fed.node_config(tmp_path / "fed", "ITA-GDF", "nats://x:1"))
    with pytest.raises(ConfigError, match=problem):
        settings.model_copy(update=update).check_secure()
    settings.model_copy(update={"taxii_port": 8443}).check_taxii()  # loopback: no TLS needed


def test_unreadable_tls_files_are_a_config_error(fed: DevFederation, tmp_path: Path) -> None:
    """taxii_tls_cert and taxii_tls_key that do not load: said before anything listens."""
    fed.write(tmp_path / "fed")
    settings = NodeSettings.load(fed.node_config(tmp_path / "fed", "ITA-GDF", "nats://x:1"))
    broken = settings.model_copy(update={"taxii_port": 0, "taxii_tls_cert": tmp_path / "no.pem",
                                         "taxii_tls_key": tmp_path / "no.key"})  # fmt: skip
    with pytest.raises(ConfigError, match="taxii_tls_cert"):
        taxii_server(broken, None, "ITA-GDF", set)  # type: ignore[arg-type]


def test_client_names_and_collections_are_checked(tmp_path: Path) -> None:
    """A name that is not a simple identifier, an unknown collection, none: refused."""
    clients = TaxiiClients(tmp_path)
    with pytest.raises(InputError, match="client name"):
        clients.add("Bad Name", ["own"])
    with pytest.raises(InputError, match="atlantis"):
        clients.add("reader", ["own", "atlantis"])
    with pytest.raises(InputError, match="none"):
        clients.add("reader", [])
    with pytest.raises(InputError, match="no TAXII client"):
        clients.remove("reader")
    assert not (tmp_path / CLIENTS_FILE).exists()


def test_a_clients_file_others_can_read_or_that_is_not_json_is_refused(tmp_path: Path) -> None:
    """The digests are secrets too: group- or world-readable is a ConfigError, as key files."""
    clients = TaxiiClients(tmp_path)
    token = clients.add("reader", ["*"])
    assert "reader" == clients.authenticate(f"Bearer {token}").name  # type: ignore[union-attr]
    path = tmp_path / CLIENTS_FILE
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="TAXII clients file"):
        clients.list()
    path.chmod(0o600)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        clients.authenticate(f"Bearer {token}")


async def test_off_loopback_taxii_is_https_with_the_configured_certificate(
    fed: DevFederation, tmp_path: Path
) -> None:
    """taxii_tls_cert and taxii_tls_key make a non-loopback TAXII listener acceptable; the
    server then speaks HTTPS only, with that certificate."""
    from deploy.pki import DevCA
    from node.inbox import Inbox, StorageKey

    ca = DevCA("taxii-ca")
    ca_pair = ca.write(tmp_path / "pki" / "ca.pem", tmp_path / "pki" / "ca.key")
    cert = ca.issue("node-ita-gdf", tmp_path / "pki" / "server", hosts=["127.0.0.1"], server=True)
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "ITA-GDF", "nats://x:1")
    tls = {"taxii_tls_cert": cert.cert, "taxii_tls_key": cert.key, "taxii_port": 0}
    NodeSettings.load(config, taxii_host="0.0.0.0", **tls).check_secure()
    settings = NodeSettings.load(config, **tls)
    token = TaxiiClients(settings.state_dir).add("reader", ["own"])
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    inbox = Inbox(settings.state_dir / "inbox.db", StorageKey.load_or_create(
        settings.state_dir / "storage.key"))  # fmt: skip
    server = taxii_server(settings, inbox, "ITA-GDF", set)
    try:
        url = await server.start()
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(ca_pair.cert))
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers=headers, ssl=context) as response:
                assert 200 == response.status
            with pytest.raises(aiohttp.ClientError):  # plain HTTP: the server only speaks TLS
                await session.get(url.replace("https:", "http:"), headers=headers)
    finally:
        await server.stop()
        inbox.close()
