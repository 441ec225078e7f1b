"""The officer console in the packaging: a Service of its own, an Ingress with TLS that
re-encrypts to the node and verifies its certificate, a NetworkPolicy admitting only the
ingress controller to the console port; the rendered node.toml serves it over TLS (issue 17)."""

from __future__ import annotations

import ssl
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

from deploy.render import RenderOptions, render
from node.config import NodeSettings
from node.console.app import _tls_context
from palermo.devfed import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "deploy" / "k8s" / "console-ita-gdf.yaml"
NODE = ROOT / "deploy" / "k8s" / "node-ita-gdf.yaml"
KUBERNETES = "1.37.0"
NODE_LABELS = {"app.kubernetes.io/name": "palermo-node", "palermo.agency": "ITA-GDF"}


def _docs(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(path.read_text()) if d}


@pytest.mark.parametrize("kind", ["Secret", "Service", "Ingress", "NetworkPolicy"])
def test_console_resources_validate_strictly(kind: str) -> None:
    """Each console resource against the Kubernetes schemas, unknown fields rejected."""
    assert "1.37" in kubernetes_validate.validate(_docs(CONSOLE)[kind], KUBERNETES, True)


def test_the_console_service_and_ingress_reach_only_the_console_port() -> None:
    """Service → the pod's named console port; Ingress: TLS to browsers, HTTPS to the node
    with its certificate verified; the container's console port is the one the env sets."""
    docs = _docs(CONSOLE)
    service = docs["Service"]["spec"]
    assert NODE_LABELS == service["selector"]
    assert [("console", 8443, "console")] == [
        (p["name"], p["port"], p["targetPort"]) for p in service["ports"]
    ]
    ingress = docs["Ingress"]
    assert ingress["spec"]["tls"][0]["secretName"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert ("palermo-console-ita-gdf", {"name": "console"}) == (backend["name"], backend["port"])
    notes = ingress["metadata"]["annotations"]
    assert ("HTTPS", "on") == (
        notes["nginx.ingress.kubernetes.io/backend-protocol"],
        notes["nginx.ingress.kubernetes.io/proxy-ssl-verify"],
    )
    pod = _docs(NODE)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in pod["env"]}
    ports = {p["name"]: p["containerPort"] for p in pod["ports"]}
    assert "0.0.0.0:8443" == env["PALERMO_NODE_CONSOLE_LISTEN"]
    assert 8443 == ports["console"]


def test_the_console_network_policy_admits_only_the_ingress_controller() -> None:
    """One rule: the ingress-nginx namespace, TCP to the console port."""
    spec = _docs(CONSOLE)["NetworkPolicy"]["spec"]
    assert NODE_LABELS == spec["podSelector"]["matchLabels"]
    assert ["Ingress"] == spec["policyTypes"]
    controller = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    assert [([controller], [("TCP", "console")])] == [
        (rule["from"], [(p["protocol"], p["port"]) for p in rule["ports"]])
        for rule in spec["ingress"]
    ]


def test_rendered_nodes_serve_the_console_over_tls_with_a_ca_issued_certificate(
    tmp_path: Path,
) -> None:
    """Each node.toml: console on loopback, its own port (8443 + place), a certificate from
    the federation CA naming console-<id>; the production checks accept it."""
    out = tmp_path / "etc"
    manifest = render(RenderOptions(federation=EXAMPLES / "federation.toml", out=out))
    agencies = sorted(manifest["agencies"])
    listens = []
    for agency in agencies:
        path = Path(manifest["agencies"][agency]["node_config"])
        settings = NodeSettings.load(path)
        settings.check_secure()
        listens.append(tomllib.loads(path.read_text())["console_listen"])
    assert [f"127.0.0.1:{8443 + i}" for i in range(len(agencies))] == listens
    ita = NodeSettings.load(Path(manifest["agencies"]["ITA-GDF"]["node_config"]))
    assert isinstance(_tls_context(ita), ssl.SSLContext)
    assert ita.console_tls_cert is not None
    cert = x509.load_pem_x509_certificate(ita.console_tls_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "console-ita-gdf" in names.get_values_for_type(x509.DNSName)
    ca = x509.load_pem_x509_certificate((out / "pki" / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
