"""``palermo deploy render``: the manifest, the files it names, secrets 0600, insecure configs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.config import BrokerSettings
from deploy.permissions import agency_permissions
from deploy.render import BROKER_LANES, NODE_INTAKE, RenderOptions, render
from node.config import NodeSettings
from palermo.cli import app
from palermo.devfed import EXAMPLES
from protocol.settings import NatsSettings
from schemas.errors import ConfigError


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("render") / "fed"
    result = CliRunner().invoke(
        app,
        ["deploy", "render", "--federation", str(EXAMPLES / "federation.toml"), "--out",
         str(out), "--leaf", "MLT-AFM=4300", "--json"],
    )  # fmt: skip
    assert 0 == result.exit_code, result.output
    return out, json.loads(result.stdout)


def test_manifest_has_the_documented_shape(rendered: tuple[Path, dict]) -> None:
    """--json prints {ca, servers[name, config, client_url], broker, agencies} and files exist."""
    out, manifest = rendered
    assert {"ca", "servers", "broker", "agencies"} == set(manifest)
    assert ["hub-1", "hub-2", "hub-3"] == [s["name"] for s in manifest["servers"]]
    assert ["tls://127.0.0.1:4222", "tls://127.0.0.1:4223", "tls://127.0.0.1:4224"] == [
        s["client_url"] for s in manifest["servers"]
    ]
    assert {"config", "credentials"} == set(manifest["broker"])
    assert 11 == len(manifest["agencies"])
    assert {"node_config", "credentials", "leafnode_config"} == set(manifest["agencies"]["MLT-AFM"])
    assert {"node_config", "credentials"} == set(manifest["agencies"]["ITA-GDF"])
    paths = [manifest["ca"], *(s["config"] for s in manifest["servers"]),
             *manifest["broker"].values(),
             *(p for a in manifest["agencies"].values() for p in a.values())]  # fmt: skip
    assert all(Path(p).is_file() for p in paths)
    assert manifest == json.loads((out / "manifest.json").read_text())


def test_secret_files_are_owner_only(rendered: tuple[Path, dict]) -> None:
    """Every key, seed and leaf config (it holds a seed) is mode 0600."""
    out, _ = rendered
    secrets = [*out.glob("nkeys/*.nk"), *out.glob("pki/*.key"), *out.glob("nats/leaf-*.conf")]
    assert len(secrets) > 25
    assert {0o600} == {stat.S_IMODE(p.stat().st_mode) for p in secrets}


def test_rendered_tomls_load_and_pass_the_security_check(rendered: tuple[Path, dict]) -> None:
    """Broker, admin and node configs load, are not dev, and check_secure accepts them."""
    out, manifest = rendered
    broker = BrokerSettings.load(Path(manifest["broker"]["config"]))
    node = NodeSettings.load(Path(manifest["agencies"]["ITA-GDF"]["node_config"]))
    leaf = NodeSettings.load(Path(manifest["agencies"]["MLT-AFM"]["node_config"]))
    admin = NatsSettings.load(out / "admin.toml")
    for settings in (broker, node, leaf, admin):
        settings.check_secure()
        assert settings.dev is False
    assert 3 == broker.replicas
    assert "_INBOX_ITA-GDF" == node.nats_inbox_prefix
    assert ["tls://127.0.0.1:4300"] == leaf.nats_url
    assert "hub" == leaf.nats_js_domain


def test_rendered_configs_write_out_the_lane_and_delivery_settings(
    rendered: tuple[Path, dict],
) -> None:
    """Each node.toml and the broker.toml name how the service takes its work (decision 0032),
    at the defaults, and they reach the options the node and the broker run with."""
    _, manifest = rendered
    broker_toml = Path(manifest["broker"]["config"])
    node_toml = Path(manifest["agencies"]["ITA-GDF"]["node_config"])
    for key in BROKER_LANES:
        assert f"\n{key} = " in broker_toml.read_text(), key
    for key in NODE_INTAKE:
        assert f"\n{key} = " in node_toml.read_text(), key
    lanes = BrokerSettings.load(broker_toml).lane_shares()
    assert (4, 64, 16, 1024) == (lanes.routine_share, lanes.routine_slice,
                                 lanes.urgent_per_originator, lanes.urgent_window)  # fmt: skip
    delivery = NodeSettings.load(node_toml).delivery_options()
    assert (30.0, 64, 1000) == (delivery.ack_wait_s, delivery.fetch_batch,
                                delivery.max_ack_pending)  # fmt: skip
    assert (4, 1, 16) == (delivery.lanes.routine_share, delivery.lanes.routine_slice,
                          delivery.lanes.urgent_per_originator)  # fmt: skip


def test_agency_may_publish_only_its_own_subjects() -> None:
    """The permission list names the agency in every publish subject it allows."""
    perms = agency_permissions("ESP-GC")
    assert "plm.pub.ESP-GC.>" in perms["publish"]["allow"]
    assert not [s for s in perms["publish"]["allow"] if s.startswith("plm.dlv")]
    assert ["_INBOX_ESP-GC.>"] == perms["subscribe"]["allow"]


@pytest.mark.parametrize(
    ("change", "fix"),
    [
        ({"nats_tls_ca": None, "nats_url": ["nats://127.0.0.1:4222"]}, "set nats_tls_ca"),
        ({"nats_nkey_seed": None}, "set nats_nkey_seed or nats_credentials"),
        ({"chmod": 0o644}, "chmod 600"),
    ],
)
def test_check_secure_refuses_insecure_configs(
    rendered: tuple[Path, dict], tmp_path: Path, change: dict, fix: str
) -> None:
    """No TLS, no credentials, a readable seed: refused with the fix in the message."""
    _, manifest = rendered
    base = NodeSettings.load(Path(manifest["agencies"]["ITA-GDF"]["node_config"]))
    if "chmod" in change:
        seed = tmp_path / "seed.nk"
        seed.write_bytes(Path(str(base.nats_nkey_seed)).read_bytes())
        seed.chmod(change["chmod"])
        settings = base.model_copy(update={"nats_nkey_seed": seed})
    else:
        settings = base.model_copy(update=change)
    with pytest.raises(ConfigError, match=fix):
        settings.check_secure()


def test_render_refuses_a_leaf_that_is_not_a_member(tmp_path: Path) -> None:
    """--leaf with an unknown agency id names the members."""
    result = CliRunner().invoke(
        app,
        ["deploy", "render", "--federation", str(EXAMPLES / "federation.toml"), "--out",
         str(tmp_path / "x"), "--leaf", "NOPE-1=4300"],
    )  # fmt: skip
    assert 0 != result.exit_code
    assert "NOPE-1" in result.output
    assert "ITA-GDF" in result.output


def test_render_reads_a_signed_federation_policy(tmp_path: Path) -> None:
    """A signed policy (JSON) gives the same members as its TOML; a broken file is named."""
    from datetime import UTC, datetime

    from policies import Federation
    from protocol.keys import SigningKey
    from protocol.trust import ROOT, sign_document

    federation = Federation.from_toml((EXAMPLES / "federation.toml").read_text())
    signed = tmp_path / "federation.signed.json"
    signed.write_text(json.dumps(sign_document(federation, SigningKey.generate(ROOT), ROOT)))
    manifest = render(RenderOptions(federation=signed, out=tmp_path / "out",
                                    now=datetime.now(UTC)))  # fmt: skip
    assert {m.id for m in federation.members} == set(manifest["agencies"])
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    with pytest.raises(ConfigError, match="signed federation policy"):
        render(RenderOptions(federation=broken, out=tmp_path / "out2"))


def test_broker_config_names_a_state_dir_and_minimum_versions(rendered: tuple[Path, dict]) -> None:
    """broker.toml names the broker's own state_dir (made 0700) and the revocation seq and the
    federation version this render published: a replica with no state never runs below them."""
    out, manifest = rendered
    broker = BrokerSettings.load(Path(manifest["broker"]["config"]))
    state = (out / "state" / "broker").resolve()
    assert (state, 1, 4, 0o700) == (
        broker.state_dir,
        broker.min_revocation_seq,
        broker.min_federation_version,
        stat.S_IMODE(state.stat().st_mode),
    )


def test_render_prints_the_start_order_with_the_streams_before_the_broker(tmp_path: Path) -> None:
    """The printed steps: servers, the operator's 'broker streams create', broker, directory,
    nodes (the broker's NATS user may only check the streams, decision 0015)."""
    out = tmp_path / "fed"
    result = CliRunner().invoke(
        app,
        ["deploy", "render", "--federation", str(EXAMPLES / "federation.toml"), "--out", str(out)],
    )
    assert 0 == result.exit_code, result.output
    steps = [line.split(". ", 1)[1].split()[:3] for line in result.output.splitlines()
             if line.startswith("  ") and ". " in line]  # fmt: skip
    assert [
        ["nats-server", "--config", f"{out.resolve()}/nats/hub-<n>.conf"],
        ["palermo", "broker", "streams"],
        ["palermo", "broker", "run"],
        ["palermo", "directory", "publish"],
        ["palermo", "node", "run"],
    ] == steps
