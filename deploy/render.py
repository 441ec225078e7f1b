"""``palermo deploy render``: everything an operator needs to run a federation on NATS.

Input: the federation policy, as TOML (``policies/examples/federation.toml``, the draft
``palermo federation init`` writes) or as the signed JSON ``palermo policy sign`` writes (then
only its ``document`` is read: the member list). The keys and signed documents come from
:class:`palermo.devfed.DevFederation` — a fresh development root, agency keys, membership
certificates, key bundles, subscriptions and the signed policies. A real federation supplies
its own (``palermo federation init/admit``, ``palermo agency init``) and replaces ``fed/``.

Output layout under ``--out DIR`` (stable: packaging and docs/operations.md rely on it; every
path written into a config is absolute, so render at the place the files will live; rendering
again into the same DIR replaces every key, seed and certificate)::

    DIR/manifest.json                what --json prints (see below)
    DIR/pki/ca.pem, ca.key           the development CA (key 0600; keep it offline)
    DIR/pki/hub-<n>.pem, .key        server certificates, n = 1..3 (server+client usage:
                                     cluster routes are TLS clients too); SAN: --host,
                                     --san names, localhost, 127.0.0.1, ::1, hub-<n>
    DIR/pki/leaf-<ID>.pem, .key      an agency's own server (leafnode) certificate
    DIR/pki/<ID>.pem, .key           client certificates: each agency, broker, admin
    DIR/nkeys/<ID>.nk                nkey user seeds (0600): each agency, broker, admin,
                                     and leaf-<ID> for each leaf server's link to the hub
    DIR/nats/hub-<n>.conf            nats-server configs of the 3-node JetStream cluster
    DIR/nats/leaf-<ID>.conf          an agency's leafnode server config (0600: holds its seed)
    DIR/state/hub-<n>/, leaf-<ID>/   JetStream store directories
    DIR/state/nodes/<ID>/            each node's state_dir (inbox, storage key, trust marks)
    DIR/state/broker/                the broker's state_dir (trust high-water marks); every
                                     replica needs its own, never shared (compose mounts
                                     state/broker-<n> there; Kubernetes: a volume per pod)
    DIR/fed/                         root.pub.json, root.sign.pem, broker.sign.pem,
                                     broker.pub.json, documents/NNN-<kind>.json (to publish
                                     with 'palermo directory publish'), agencies/<ID>/ keys
    DIR/broker.toml                  the broker (BrokerSettings), replicas = 3
    DIR/admin.toml                   the operator's NATS settings ('palermo directory
                                     publish --nats-config', 'palermo audit --nats-config')
    DIR/nodes/<ID>.node.toml         each agency's node (NodeSettings); an agency rendered
                                     with --leaf points at its own leaf server
    DIR/nodes/<ID>.ingest.token      the bearer token of the node's POST /v1/reports (0600);
                                     ingest listens on 127.0.0.1, port node_ingest_port + the
                                     agency's place in the sorted member list (8482, 8483, ...)
    DIR/pki/console-<id>.pem, .key   the officer console's server certificate (id in lower
                                     case); the console listens with it on 127.0.0.1, port
                                     node_console_port + the agency's place (8443, 8444, ...)

The manifest: ``{"ca": path, "servers": [{"name", "config", "client_url"}], "broker":
{"config", "credentials"}, "agencies": {"<ID>": {"node_config", "credentials",
"leafnode_config"?}}}``.

Security model (docs/decisions/0009-nats-auth-and-permissions.md): one account, ``PALERMO``,
with JetStream; every user authenticates with an nkey *and* a client certificate (mTLS on
the client, route and leafnode listeners); subject permissions from :mod:`deploy.permissions`.
Start order (:func:`start_order`, which ``palermo deploy render`` prints): the servers; the
streams and the directory bucket, created by the operator with ``palermo broker streams create
--config DIR/broker.toml --nats-config DIR/admin.toml`` (the broker's user may only check
them: docs/decisions/0015-jetstream-api-per-role.md); the broker; ``palermo directory publish
DIR/fed/documents/*.json --root DIR/fed/root.pub.json --nats-config DIR/admin.toml``; the nodes.
"""

from __future__ import annotations

import json
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import nkeys

from broker.config import BrokerSettings
from node.config import NodeSettings
from node.ingest import write_token_file
from palermo.devfed import DevFederation
from palermo.natsserver import DEFAULT_MAX_PAYLOAD, render_config
from policies import Federation
from schemas.errors import ConfigError

from .permissions import (
    ADMIN_INBOX,
    BROKER_INBOX,
    admin_permissions,
    agency_permissions,
    broker_permissions,
    inbox_prefix,
    leaf_permissions,
)
from .pki import DevCA, write_private

__all__ = ["ACCOUNT", "HUB_SIZE", "RenderOptions", "ServerPorts", "render", "start_order"]

HUB_SIZE: Final[int] = 3
ACCOUNT: Final[str] = "PALERMO"
BROKER_ID: Final[str] = "BROKER-1"
JS_DOMAIN: Final[str] = "hub"
"""The hub's JetStream domain; nodes behind a leafnode server address the API through it."""
TLS_TIMEOUT_S: Final[float] = 5.0


@dataclass(frozen=True)
class ServerPorts:
    """Where one server listens: clients, cluster routes, leafnodes, monitoring."""

    client: int
    cluster: int = 0
    leafnode: int = 0
    http: int = 0


def default_hub_ports(client: int = 4222) -> tuple[ServerPorts, ...]:
    """Server n (0-based) on client+n, 6222+n, 7422+n, 8222+n, shifted like ``client``."""
    shift = client - 4222
    return tuple(
        ServerPorts(4222 + shift + n, 6222 + shift + n, 7422 + shift + n, 8222 + shift + n)
        for n in range(HUB_SIZE)
    )


@dataclass(frozen=True)
class RenderOptions:
    federation: Path
    out: Path
    host: str = "127.0.0.1"
    san: Sequence[str] = ()
    hub: Sequence[ServerPorts] = field(default_factory=default_hub_ports)
    leaves: Mapping[str, ServerPorts] = field(default_factory=dict)
    """Agencies that run their own server: its client and monitoring ports."""
    cluster_name: str = "palermo-hub"
    broker_http_port: int = 8480
    node_ingest_port: int = 8482
    """The first agency's ingest port (loopback only); the next agency's is one more, so the
    nodes of one host do not collide. 0: every node picks a free port (tests)."""
    node_console_port: int = 8443
    """The first agency's officer console port (TLS, on 127.0.0.1 in node.toml; compose and
    Kubernetes move it to the container's address); the next agency's is one more."""
    now: datetime | None = None


def _load_federation(path: Path) -> Federation:
    """A federation policy from TOML, or from a signed policy's ``document``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the federation file {path}: {exc.strerror}") from exc
    if path.suffix == ".json":
        try:
            signed = json.loads(text)
            document = signed["document"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path} is neither a federation TOML nor a signed federation policy "
                "(JSON with a 'document'); give the file 'palermo policy sign' wrote"
            ) from exc
        return Federation.from_data(document)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return Federation.from_toml(text)


def _nkey(path: Path) -> str:
    """Create a user nkey, write its seed (0600) to ``path``; returns the public key."""
    seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    write_private(path, seed + b"\n")
    return str(nkeys.from_seed(seed).public_key.decode())


# How each service takes its work (decision 0032), written out at their defaults so that an
# operator sees what to tune (docs/operations.md "Lanes and delivery settings").
NODE_INTAKE: Final[tuple[str, ...]] = (
    "ack_wait_s", "fetch_batch", "max_ack_pending", "routine_share", "urgent_per_originator",
)  # fmt: skip
BROKER_LANES: Final[tuple[str, ...]] = (
    "routine_share", "routine_slice", "urgent_per_originator", "urgent_window",
)  # fmt: skip


def _defaults(settings: type[NodeSettings | BrokerSettings], keys: Sequence[str]) -> dict[str, Any]:
    return {k: settings.model_fields[k].default for k in keys}


def _toml(path: Path, settings: Mapping[str, Any]) -> None:
    """A flat TOML file; JSON strings, numbers, booleans and lists are valid TOML values."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(
        "# Written by 'palermo deploy render'.\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    )


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tls(cert: Path, key: Path, ca: Path, *, verify: bool) -> dict[str, Any]:
    block: dict[str, Any] = {
        "cert_file": str(cert),
        "key_file": str(key),
        "ca_file": str(ca),
        "timeout": TLS_TIMEOUT_S,
    }
    if verify:
        block["verify"] = True  # mTLS: no certificate from our CA, no connection
    return block


def render(options: RenderOptions) -> dict[str, Any]:
    """Write everything under ``options.out``; returns the manifest (also manifest.json)."""
    if len(options.hub) != HUB_SIZE:
        raise ConfigError(f"the hub is a {HUB_SIZE}-server JetStream cluster; got "
                          f"{len(options.hub)} port sets")  # fmt: skip
    federation = _load_federation(options.federation)
    members = {m.id for m in federation.members}
    unknown = sorted(set(options.leaves) - members)
    if unknown:
        raise ConfigError(
            f"--leaf names {', '.join(unknown)}, not members of {options.federation}; "
            f"members are {', '.join(sorted(members))}"
        )
    now = options.now or datetime.now(UTC)
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    host = options.host
    hosts = [host, *options.san, "localhost", "127.0.0.1", "::1"]

    dev = DevFederation.build(
        now,
        federation=federation,
        policies_dir=options.federation.parent,
    )
    fed = out / "fed"
    dev.write(fed)

    pki = out / "pki"
    ca = DevCA(federation.id, now)
    ca_pair = ca.write(pki / "ca.pem", pki / "ca.key")
    ca_file = ca_pair.cert

    users: list[dict[str, Any]] = []
    public: dict[str, str] = {}
    creds: dict[str, Path] = {}
    client_certs: dict[str, Any] = {}
    for who, permissions in [
        ("broker", broker_permissions()),
        ("admin", admin_permissions()),
        *((a, agency_permissions(a, JS_DOMAIN)) for a in sorted(members)),
    ]:
        creds[who] = out / "nkeys" / f"{who}.nk"
        public[who] = _nkey(creds[who])
        users.append({"nkey": public[who], "permissions": permissions})
        client_certs[who] = ca.issue(f"palermo-{who}", pki / who, client=True)
    for agency in sorted(options.leaves):
        # The leaf server's own user at the hub (see deploy.permissions.leaf_permissions).
        who = f"leaf-{agency}"
        creds[who] = out / "nkeys" / f"{who}.nk"
        public[who] = _nkey(creds[who])
        users.append(
            {"nkey": public[who], "permissions": leaf_permissions(agency, members, JS_DOMAIN)}
        )

    tls_urls = [f"tls://{_hostport(host, p.client)}" for p in options.hub]
    servers: list[dict[str, Any]] = []
    routes = [f"nats-route://{_hostport(host, p.cluster)}" for p in options.hub]
    for n, ports in enumerate(options.hub, start=1):
        name = f"hub-{n}"
        cert = ca.issue(name, pki / name, hosts=[*hosts, name], server=True, client=True)
        server_tls = _tls(cert.cert, cert.key, ca_file, verify=True)
        config: dict[str, Any] = {
            "server_name": name,
            "listen": _hostport(host, ports.client),
            "http": _hostport(host, ports.http),
            "max_payload": DEFAULT_MAX_PAYLOAD,
            "jetstream": {"store_dir": str(out / "state" / name), "domain": JS_DOMAIN},
            "tls": server_tls,
            "cluster": {
                "name": options.cluster_name,
                "listen": _hostport(host, ports.cluster),
                "routes": routes,
                "tls": server_tls,
            },
            "leafnodes": {"listen": _hostport(host, ports.leafnode), "tls": server_tls},
            "accounts": {ACCOUNT: {"jetstream": "enabled", "users": users}},
        }
        path = out / "nats" / f"{name}.conf"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, (_HEADER + render_config(config)).encode())
        servers.append({"name": name, "config": str(path), "client_url": tls_urls[n - 1]})

    leaf_urls = [f"nats-leaf://{_hostport(host, p.leafnode)}" for p in options.hub]
    agencies: dict[str, dict[str, Any]] = {}
    for index, agency in enumerate(sorted(members)):
        entry: dict[str, Any] = {"credentials": str(creds[agency])}
        urls = tls_urls
        if agency in options.leaves:
            ports = options.leaves[agency]
            name = f"leaf-{agency}"
            cert = ca.issue(name, pki / name, hosts=[*hosts, name], server=True, client=True)
            seed = creds[f"leaf-{agency}"].read_text().strip()
            leaf: dict[str, Any] = {
                "server_name": name,
                "listen": _hostport(host, ports.client),
                "http": _hostport(host, ports.http),
                "max_payload": DEFAULT_MAX_PAYLOAD,
                "tls": _tls(cert.cert, cert.key, ca_file, verify=True),
                # Local clients: the agency's own node, under the same permissions as at the
                # hub (the hub enforces them again on the leaf connection).
                "authorization": {
                    "users": [
                        {
                            "nkey": public[agency],
                            "permissions": agency_permissions(agency, JS_DOMAIN),
                        }
                    ]
                },
                "leafnodes": {
                    "remotes": [
                        {
                            "urls": leaf_urls,
                            "nkey": seed,
                            "tls": _tls(cert.cert, cert.key, ca_file, verify=False),
                        }
                    ]
                },
            }
            path = out / "nats" / f"{name}.conf"
            write_private(path, (_HEADER + render_config(leaf)).encode())
            entry["leafnode_config"] = str(path)
            urls = [f"tls://{_hostport(host, ports.client)}"]
            entry_domain: dict[str, Any] = {"nats_js_domain": JS_DOMAIN}
        else:
            entry_domain = {}
        keys = fed / "agencies" / agency
        enc = dev.agencies[agency].encryption
        node_toml = out / "nodes" / f"{agency}.node.toml"
        # Ingest signs in the agency's name: loopback only, behind a fresh token (0600); the
        # Kubernetes and compose files keep it off every Service and published port.
        token = out / "nodes" / f"{agency}.ingest.token"
        write_token_file(token)
        # The officer console (people log in): TLS always, with a certificate of its own, so a
        # browser never sends a password in clear (decision 0026).
        console_name = f"console-{agency.lower()}"
        console_cert = ca.issue(
            console_name, pki / console_name, hosts=[*hosts, console_name], server=True
        )
        console_port = options.node_console_port + index if options.node_console_port else 0
        _toml(
            node_toml,
            {
                "agency": agency,
                "nats_url": urls,
                **_nats_settings(creds[agency], ca_file, client_certs[agency]),
                "nats_inbox_prefix": inbox_prefix(agency),
                **entry_domain,
                "root_key": str(fed / "root.pub.json"),
                # 'palermo status' believes a broker notice only when this key signed it.
                "broker_keys": [str(fed / "broker.pub.json")],
                "signing_key": str(keys / f"{agency}.sign.pem"),
                "encryption_keys": [str(keys / f"{agency}.enc.{enc.kid}.pem")],
                "state_dir": str(out / "state" / "nodes" / agency),
                "ingest_host": "127.0.0.1",
                "ingest_port": options.node_ingest_port + index if options.node_ingest_port else 0,
                "ingest_token_file": str(token),
                "console_listen": f"127.0.0.1:{console_port}",
                "console_tls_cert": str(console_cert.cert),
                "console_tls_key": str(console_cert.key),
                **_defaults(NodeSettings, NODE_INTAKE),
                "dev": False,
            },
        )
        entry["node_config"] = str(node_toml)
        agencies[agency] = dict(sorted(entry.items()))

    broker_toml = out / "broker.toml"
    broker_state = out / "state" / "broker"
    broker_state.mkdir(parents=True, exist_ok=True, mode=0o700)
    _toml(
        broker_toml,
        {
            "broker_id": BROKER_ID,
            "nats_url": tls_urls,
            **_nats_settings(creds["broker"], ca_file, client_certs["broker"]),
            "nats_inbox_prefix": BROKER_INBOX,
            "root_key": str(fed / "root.pub.json"),
            "signing_key": str(fed / "broker.sign.pem"),
            "replicas": HUB_SIZE,
            "http_host": host,
            "http_port": options.broker_http_port,
            # A replica that starts with an empty state dir never runs below what this render
            # published (docs/decisions/0013-trust-high-water-marks.md); 'palermo federation
            # revoke' raises min_revocation_seq with every list it signs.
            "state_dir": str(broker_state),
            "min_revocation_seq": dev.revocations["document"]["seq"],
            "min_federation_version": federation.version,
            **_defaults(BrokerSettings, BROKER_LANES),
            "dev": False,
        },
    )
    _toml(
        out / "admin.toml",
        {
            "nats_url": tls_urls,
            **_nats_settings(creds["admin"], ca_file, client_certs["admin"]),
            "nats_inbox_prefix": ADMIN_INBOX,
            "dev": False,
        },
    )
    manifest = {
        "ca": str(ca_file),
        "servers": servers,
        "broker": {"config": str(broker_toml), "credentials": str(creds["broker"])},
        "agencies": agencies,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


_HEADER: Final[str] = "# Written by 'palermo deploy render' (deploy/render.py).\n"


def start_order(out: Path) -> list[str]:
    """The operator's steps after a render into ``out``, in order (docs/operations.md, 3)."""
    out = out.resolve()
    return [
        f"nats-server --config {out}/nats/hub-<n>.conf   (n = 1, 2, 3; then each leaf-<ID>.conf)",
        f"palermo broker streams create --config {out}/broker.toml --nats-config {out}/admin.toml",
        f"palermo broker run --config {out}/broker.toml",
        f"palermo directory publish {out}/fed/documents/*.json --root {out}/fed/root.pub.json "
        f"--nats-config {out}/admin.toml",
        f"palermo node run --config {out}/nodes/<ID>.node.toml",
    ]


def _nats_settings(seed: Path, ca: Path, cert: Any) -> dict[str, Any]:
    return {
        "nats_nkey_seed": str(seed),
        "nats_tls_ca": str(ca),
        "nats_tls_cert": str(cert.cert),
        "nats_tls_key": str(cert.key),
    }
