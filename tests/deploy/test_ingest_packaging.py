"""The packaging keeps the node's ingest (POST /v1/reports, which signs in the agency's name)
off the network: loopback in the rendered configs behind a 0600 token, off the Kubernetes
Service, behind a default-deny NetworkPolicy, never published by compose (issue #12 item 3)."""

from __future__ import annotations

import ipaddress
import stat
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.render import RenderOptions, render
from node.config import NodeSettings
from palermo.devfed import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
K8S_NODE = ROOT / "deploy" / "k8s" / "node-ita-gdf.yaml"
COMPOSE = ROOT / "deploy" / "compose.yaml"
KUBERNETES = "1.37.0"
NODE_LABELS = {"app.kubernetes.io/name": "palermo-node", "palermo.agency": "ITA-GDF"}


def _node_docs() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(K8S_NODE.read_text()) if d}


def _container_env() -> dict[str, str]:
    pod = _node_docs()["Deployment"]["spec"]["template"]["spec"]
    return {e["name"]: e["value"] for e in pod["containers"][0]["env"]}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("render") / "etc-palermo"
    return render(RenderOptions(federation=EXAMPLES / "federation.toml", out=out, host="hub"))


def test_rendered_nodes_take_ingest_on_loopback_behind_a_0600_token(
    rendered: dict[str, Any],
) -> None:
    """Every rendered node.toml: ingest on 127.0.0.1, its own port (8482 + the agency's place),
    a token file of its own, 0600, that the production checks accept."""
    agencies = sorted(rendered["agencies"])
    seen = []
    for agency in agencies:
        path = Path(rendered["agencies"][agency]["node_config"])
        data = tomllib.loads(path.read_text())
        token = Path(data.get("ingest_token_file", "/nonexistent"))
        mode = stat.S_IMODE(token.stat().st_mode) if token.is_file() else None
        seen.append((data.get("ingest_host"), data.get("ingest_port"), mode))
        NodeSettings.load(path).check_secure()
    assert [("127.0.0.1", 8482 + i, 0o600) for i in range(len(agencies))] == seen
    tokens = {
        Path(tomllib.loads(Path(a["node_config"]).read_text())["ingest_token_file"]).read_text()
        for a in rendered["agencies"].values()
    }
    assert len(agencies) == len(tokens)


def test_kubernetes_service_does_not_expose_ingest() -> None:
    """The node container takes ingest on loopback (no containerPort for it), and the Service
    forwards only the health/metrics port."""
    docs = _node_docs()
    env = _container_env()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container_ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    service_targets = [p["targetPort"] for p in docs["Service"]["spec"]["ports"]]
    ingest = (env.get("PALERMO_NODE_INGEST_HOST"), env.get("PALERMO_NODE_INGEST_PORT"))
    assert ("127.0.0.1", "8482") == ingest
    console = int(env["PALERMO_NODE_CONSOLE_LISTEN"].rsplit(":", 1)[1])
    assert {"http": int(env["PALERMO_NODE_HTTP_PORT"]), "console": console} == container_ports
    assert ["http"] == service_targets


def test_kubernetes_network_policy_admits_only_monitoring_to_health() -> None:
    """A NetworkPolicy selects the node pod, restricts Ingress, and its only rule admits the
    monitoring namespace to the health/metrics port."""
    policy = _node_docs().get("NetworkPolicy")
    assert policy is not None
    spec = policy["spec"]
    assert NODE_LABELS == spec["podSelector"]["matchLabels"]
    assert ["Ingress"] == spec["policyTypes"]
    rules = [
        ([f for f in rule["from"]], [(p["protocol"], p["port"]) for p in rule["ports"]])
        for rule in spec["ingress"]
    ]
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert [([monitoring], [("TCP", "http")])] == rules
    assert "1.37" in kubernetes_validate.validate(policy, KUBERNETES, True)


def test_compose_publishes_no_node_port_and_keeps_ingest_on_loopback() -> None:
    """No node service publishes a port but its console's, on the host's loopback; each takes
    ingest on its container's loopback."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    nodes = {n: s for n, s in services.items() if n.startswith("node-")}
    assert 3 == len(nodes)
    published = {n: s.get("ports", []) for n, s in nodes.items()}
    # The officer console only (8443 in the container), on the Docker host's loopback.
    consoles = {"node-esp-gc": 8445, "node-grc-hcg": 8444, "node-ita-gdf": 8443}
    assert {n: [f"127.0.0.1:{p}:8443"] for n, p in consoles.items()} == published
    hosts = {n: s["environment"].get("PALERMO_NODE_INGEST_HOST") for n, s in nodes.items()}
    assert {n: True for n in nodes} == {
        n: h is not None and ipaddress.ip_address(h).is_loopback for n, h in hosts.items()
    }
