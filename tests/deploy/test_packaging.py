"""The packaging in deploy/: systemd units, Containerfile, compose file, Kubernetes manifests,
each checked with the real tool (systemd-analyze, pip in a fresh venv, kubernetes-validate,
nats-server -t) against what ``palermo deploy render`` writes."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.render import RenderOptions, render
from palermo.devfed import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
K8S = DEPLOY / "k8s"
SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
INSTALLED = "/opt/palermo/venv/bin/"
"""Where the units expect the virtualenv (docs/operations.md, "systemd")."""
ETC = "/etc/palermo"
KUBERNETES = "1.37.0"
HARDENING = {
    "User": "palermo",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallFilter": "@system-service",
    "KillSignal": "SIGTERM",
    "Restart": "on-failure",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The example federation rendered as the packaging expects it: into /etc/palermo's
    stand-in, servers named by --host hub (the compose layout)."""
    out = tmp_path_factory.mktemp("render") / "etc-palermo"
    return out, render(RenderOptions(federation=EXAMPLES / "federation.toml", out=out, host="hub"))


# --- systemd ---------------------------------------------------------------------------------


def _directives(unit: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def _install_units(target: Path, bin_dir: Path) -> list[Path]:
    """The units as an operator installs them, ExecStart pointing at ``bin_dir``; templates
    instantiated (an agency's node, a hub server)."""
    instances = {"palermo-node@.service": "ITA-GDF", "palermo-nats@.service": "hub-1"}
    installed = []
    for unit in sorted(UNITS.glob("*.service")):
        text = unit.read_text().replace(INSTALLED, f"{bin_dir}/")
        (target / unit.name).write_text(text)
        name = unit.name.replace("@.", f"@{instances[unit.name]}.") if "@." in unit.name else None
        installed.append(target / (name or unit.name))
    return installed


def _verify(*units: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "notice"}
    return subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *map(str, units)],
        capture_output=True, text=True, timeout=60, env=env, cwd=units[0].parent,
    )  # fmt: skip


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """broker, node@ITA-GDF and nats@hub-1 verify cleanly, ExecStart on this venv's binaries."""
    units = _install_units(tmp_path, Path(sys.executable).parent)
    assert 3 == len(units)
    done = _verify(*units)
    assert (0, "") == (done.returncode, done.stderr.strip()), done.stderr


def test_systemd_analyze_verify_fails_on_a_missing_binary(tmp_path: Path) -> None:
    """The verify above can fail: the units as shipped name /opt/palermo/venv, absent here."""
    unit = tmp_path / "palermo-broker.service"
    unit.write_text((UNITS / "palermo-broker.service").read_text())
    assert not Path(INSTALLED).exists()
    done = _verify(unit)
    assert 0 != done.returncode
    assert f"{INSTALLED}palermo" in done.stderr


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*.service")))
def test_systemd_unit_is_hardened(unit: str) -> None:
    """Dedicated user, read-only system, no privileges, state under StateDirectory."""
    directives = _directives(UNITS / unit)
    assert HARDENING == {k: directives[k][0] for k in HARDENING}
    assert "palermo" == directives["StateDirectory"][0].split()[0]
    assert directives["ExecStart"][0].startswith(INSTALLED)
    assert ETC in directives["ExecStart"][0]


def test_broker_unit_waits_longer_than_the_broker_grace_period() -> None:
    """systemd's TimeoutStopSec leaves room for the broker's graceful stop (GRACE_S)."""
    from broker.runner import GRACE_S

    stop = int(_directives(UNITS / "palermo-broker.service")["TimeoutStopSec"][0])
    assert stop > GRACE_S


def test_units_name_the_files_render_writes(rendered: tuple[Path, dict[str, Any]]) -> None:
    """Every /etc/palermo path in ExecStart, with the instance filled in, was rendered."""
    out, manifest = rendered
    paths = {
        "palermo-broker.service": [manifest["broker"]["config"]],
        "palermo-node@.service": [a["node_config"] for a in manifest["agencies"].values()],
        "palermo-nats@.service": [s["config"] for s in manifest["servers"]],
    }
    for unit, expected in paths.items():
        exec_start = _directives(UNITS / unit)["ExecStart"][0]
        config = next(a for a in exec_start.split() if a.startswith(ETC))
        pattern = re.escape(config.replace(ETC, str(out))).replace("%i", "[A-Za-z0-9-]+")
        assert [True] * len(expected) == [bool(re.fullmatch(pattern, p)) for p in expected], (
            unit, config, expected)  # fmt: skip


# --- Containerfile ---------------------------------------------------------------------------


def _containerfile_steps() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text())
    steps = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, args = line.strip().partition(" ")
            steps.append((instruction.upper(), args.strip()))
    return steps


def test_containerfile_is_python_slim_non_root_with_palermo_entrypoint() -> None:
    """FROM python:3.11-slim, a fixed non-root USER made by useradd, ENTRYPOINT palermo."""
    steps = dict(reversed(_containerfile_steps()))
    assert "python:3.11-slim" == steps["FROM"]
    assert '["palermo"]' == steps["ENTRYPOINT"]
    uid = steps["USER"].split(":")[0]
    assert uid not in ("0", "root")
    assert f"--uid {uid}" in next(a for i, a in _containerfile_steps() if "useradd" in a)


@pytest.mark.slow
def test_containerfile_steps_install_palermo_in_a_fresh_venv(tmp_path: Path) -> None:
    """Every COPY and RUN of the Containerfile, replayed under tmp_path as the image root:
    the regular install gives a working 'palermo' and the bundled nats-server."""
    image = tmp_path / "image"
    rooted = re.compile(r"(?<![\w./-])/(?=(src|opt)\b)")
    ran = []
    for instruction, args in _containerfile_steps():
        if instruction == "COPY":
            *sources, dest = args.split()
            target = image / dest.lstrip("/")
            for source in sources:
                src = ROOT / source
                into = target / src.name if dest.endswith("/") else target
                if src.is_dir():
                    shutil.copytree(src, into, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    into.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, into)
        elif instruction == "RUN" and "useradd" not in args:
            # The pip cache is kept here (only the image drops it) so the test stays quick.
            command = rooted.sub(f"{image}/", args).replace("--no-cache-dir ", "")
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
            env.pop("VIRTUAL_ENV", None)
            done = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                  timeout=300, env=env, cwd=image)  # fmt: skip
            assert 0 == done.returncode, done.stderr[-3000:]
            ran.append(command)
    assert 1 == len(ran)
    assert not (image / "src").exists()
    venv = image / "opt" / "palermo" / "venv" / "bin"
    helped = subprocess.run([str(venv / "palermo"), "--help"], capture_output=True, text=True,
                            timeout=60, cwd=image)  # fmt: skip
    assert 0 == helped.returncode, helped.stderr
    assert "deploy" in helped.stdout
    version = subprocess.run([str(venv / "nats-server"), "--version"], capture_output=True,
                             text=True, timeout=30)  # fmt: skip
    assert version.stdout.startswith("nats-server: v2."), version.stdout
    # Installed, not linked to the checkout.
    site = subprocess.run([str(venv / "python"), "-c", "import node; print(node.__file__)"],
                          capture_output=True, text=True, timeout=30, cwd=image)  # fmt: skip
    assert site.stdout.startswith(str(image / "opt")), site.stdout


# --- compose ---------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _etc_paths(words: list[str]) -> set[str]:
    return {m for w in words for m in re.findall(r"/etc/palermo/[^\s'\"]+", w)}


def test_compose_runs_a_3_server_hub_2_brokers_and_3_nodes() -> None:
    """hub-1..3 run nats-server on hub-<n>.conf, 2 broker replicas each with its own state
    directory mounted at the rendered state_dir, 3 agency nodes."""
    services = _compose()["services"]
    hubs = {n: s["command"] for n, s in services.items() if s.get("entrypoint") == ["nats-server"]}
    assert {f"hub-{n}": ["--config", f"{ETC}/nats/hub-{n}.conf"] for n in (1, 2, 3)} == hubs
    brokers = {n: s["volumes"][-1] for n, s in services.items() if n.startswith("broker")}
    assert {f"broker-{n}": f"../palermo-etc/state/broker-{n}:{ETC}/state/broker"
            for n in (1, 2)} == brokers  # fmt: skip
    nodes = sorted(s["command"][-1] for n, s in services.items() if n.startswith("node-"))
    assert [f"{ETC}/nodes/{a}.node.toml" for a in ("ESP-GC", "GRC-HCG", "ITA-GDF")] == nodes
    for name, service in services.items():
        assert "10001:10001" == service["user"], name


def test_compose_references_only_files_render_writes(rendered: tuple[Path, dict[str, Any]]) -> None:
    """Every /etc/palermo path a service uses is in the render output, or a state directory
    the render service makes; every bind-mount source is in the repository or palermo-etc."""
    out, _ = rendered
    services = _compose()["services"]
    render_cmd = services["render"]["command"][0]
    made = set(shlex.split(render_cmd.split("&& mkdir -p", 1)[1].split("&&")[0]))
    made |= {str(p) for m in made for p in Path(m).parents if p.is_relative_to(ETC)}
    used: set[str] = set()
    for name, service in services.items():
        command = service.get("command", [])
        used |= _etc_paths(command if isinstance(command, list) else [command])
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            used |= _etc_paths([target]) - {ETC}
            host = (DEPLOY / source).resolve()
            assert host.is_relative_to(ROOT), (name, volume)
            if not host.is_relative_to(ROOT / "palermo-etc"):
                assert host.exists(), (name, volume)
    for path in sorted(used):
        if "*" in path:
            matches = list(out.glob(path.removeprefix(ETC + "/")))
            assert matches, path
        elif path not in made:
            assert (out / path.removeprefix(ETC + "/")).exists(), path
    assert made, render_cmd
    assert any(p.endswith("broker.toml") for p in used)


# --- Kubernetes ------------------------------------------------------------------------------


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.mark.parametrize(
    "doc", _manifests(), ids=lambda d: f"{d[0]}:{d[1]['kind']}/{d[1]['metadata']['name']}"
)
def test_kubernetes_manifest_validates_strictly(doc: tuple[str, dict[str, Any]]) -> None:
    """Each resource against the Kubernetes schemas, unknown fields rejected."""
    _, data = doc
    assert KUBERNETES.rsplit(".", 1)[0] in kubernetes_validate.validate(data, KUBERNETES, True)


def test_kubernetes_validate_rejects_an_unknown_field() -> None:
    """The strict validation above can fail."""
    data = next(d for _, d in _manifests() if d["kind"] == "Deployment")
    broken = {**data, "spec": {**data["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(broken, KUBERNETES, True)


def test_kubernetes_workloads_run_hardened() -> None:
    """NATS 3 replicas with a JetStream PVC, broker 2 replicas; non-root, read-only root
    filesystem, probes on /healthz and /readyz (nats: its own /healthz)."""
    workloads = {d["metadata"]["name"]: d for _, d in _manifests()
                 if d["kind"] in ("Deployment", "StatefulSet")}  # fmt: skip
    assert 3 == workloads["nats"]["spec"]["replicas"]
    assert ["jetstream"] == [
        t["metadata"]["name"] for t in workloads["nats"]["spec"]["volumeClaimTemplates"]
    ]
    assert 2 == workloads["palermo-broker"]["spec"]["replicas"]
    # Each broker replica keeps its trust high-water marks on a volume of its own.
    assert ["state"] == [
        t["metadata"]["name"] for t in workloads["palermo-broker"]["spec"]["volumeClaimTemplates"]
    ]
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"], name
        if "fsGroup" in pod["securityContext"]:  # no recursive chmod of 0600 key files
            assert "OnRootMismatch" == pod["securityContext"]["fsGroupChangePolicy"], name
        for container in pod.get("initContainers", []) + pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"], name
            assert not container["securityContext"]["allowPrivilegeEscalation"], name
        main = pod["containers"][0]
        probes = (
            main["livenessProbe"]["httpGet"]["path"],
            main["readinessProbe"]["httpGet"]["path"],
        )
        if name == "nats":
            assert all(p.startswith("/healthz") for p in probes)
        else:
            assert ("/healthz", "/readyz") == probes, name


def test_kubernetes_secrets_are_empty_placeholders() -> None:
    """No key material in the repository: every Secret value is empty."""
    secrets = [d for _, d in _manifests() if d["kind"] == "Secret"]
    assert 5 == len(secrets)
    assert all(v == "" for s in secrets for v in s["stringData"].values())


def _secret_items(workload: str) -> set[str]:
    deployment = next(d for _, d in _manifests() if d["metadata"]["name"] == workload
                      and d["kind"] in ("Deployment", "StatefulSet"))  # fmt: skip
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    return {item["path"] for item in volume["secret"]["items"]}


def _files_named(config: Path, out: Path) -> set[str]:
    data = tomllib.loads(config.read_text())
    values = [v for v in data.values() if isinstance(v, str)]
    values += [x for v in data.values() if isinstance(v, list) for x in v if isinstance(x, str)]
    return {str(Path(v).relative_to(out)) for v in values if v.startswith(str(out)) and
            Path(v).is_file()}  # fmt: skip


def test_kubernetes_secrets_carry_every_file_the_rendered_configs_name(
    rendered: tuple[Path, dict[str, Any]],
) -> None:
    """The broker Secret's items are broker.toml and every file it names; the node's are its
    node.toml and every file it names (the encryption key under the fixed name its env sets)."""
    out, manifest = rendered
    broker = Path(manifest["broker"]["config"])
    assert _files_named(broker, out) | {"broker.toml"} == _secret_items("palermo-broker")
    node = Path(manifest["agencies"]["ITA-GDF"]["node_config"])
    expected = {
        "fed/agencies/ITA-GDF/ITA-GDF.enc.pem" if ".enc." in f else f
        for f in _files_named(node, out)
    }
    assert expected | {"nodes/ITA-GDF.node.toml"} == _secret_items("palermo-node-ita-gdf")


def test_kubernetes_nats_config_is_accepted_by_nats_server(
    rendered: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The ConfigMap's nats.conf with the rendered certificates and accounts block passes
    'nats-server -t' (the official configuration test)."""
    out, manifest = rendered
    config_map = next(d for _, d in _manifests() if d["metadata"]["name"] == "nats-config")
    tls = tmp_path / "nats-tls"
    tls.mkdir()
    shutil.copy(out / "pki" / "ca.pem", tls / "ca.crt")
    shutil.copy(out / "pki" / "hub-1.pem", tls / "tls.crt")
    shutil.copy(out / "pki" / "hub-1.key", tls / "tls.key")
    (tmp_path / "accounts").mkdir()
    hub = Path(manifest["servers"][0]["config"]).read_text().splitlines()
    (tmp_path / "accounts" / "accounts.conf").write_text(
        next(line for line in hub if line.startswith('"accounts"')) + "\n"
    )
    conf = (
        config_map["data"]["nats.conf"]
        .replace("/etc/nats-tls/", f"{tls}/")
        .replace("/data/jetstream", str(tmp_path / "js"))
        .replace("/tmp/nats-server.pid", str(tmp_path / "nats.pid"))
    )
    (tmp_path / "nats.conf").write_text(conf)
    nats_server = Path(sys.executable).parent / "nats-server"
    done = subprocess.run(
        [str(nats_server), "-t", "--config", str(tmp_path / "nats.conf")],
        capture_output=True, text=True, timeout=30, env={**os.environ, "SERVER_NAME": "nats-0"},
    )  # fmt: skip
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "configuration file" in (done.stdout + done.stderr).lower()
