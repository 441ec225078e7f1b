"""The NATS permissions of a rendered deployment, tried verb by verb on a live 3-server hub.

docs/security.md ("NATS permissions per role") holds the one table of what each user may
publish; these tests read it and check nats-server's answers against it, and show the attack
of issue 12 item 5 (the broker's user rewriting the directory's stream) refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamSource, SubjectTransform

from broker.config import BrokerSettings
from broker.streams import StreamLimits, ensure_streams
from node.config import NodeSettings
from protocol.settings import NatsSettings
from schemas.errors import PalermoError, StreamsNotProvisioned
from tests.harness import RenderedServer, render_on_free_ports, wait_cluster

pytestmark = pytest.mark.slow
LIVE = pytest.mark.asyncio(loop_scope="module")  # one hub for the module
DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
SECTION = "## NATS permissions per role"
ROLES = ("agency", "leaf link", "broker", "admin")
STREAMS = (
    "PLM_PUB", "PLM_DLV", "PLM_DEAD", "PLM_AUDIT", "PLM_RCPT", "PLM_SEEN", "PLM_HOLD", "KV_PLM_DIR",
)  # fmt: skip
HUB_AGENCY, OTHER, LEAF = "ITA-GDF", "GRC-HCG", "MLT-AFM"
# Who <A> and <B> are for each role's user.
OWN = {"agency": (HUB_AGENCY, OTHER), "leaf link": (LEAF, HUB_AGENCY),
       "broker": (HUB_AGENCY, OTHER), "admin": (HUB_AGENCY, OTHER)}  # fmt: skip
FILLERS = {"<C>": "plm-probe", "<subject>": "probe.x", "<tail>": "1.1.1.1.0"}
# The verbs the table must cover (issue 12: "every $JS.API verb").
VERBS = [
    "INFO", "STREAM.CREATE", "STREAM.UPDATE", "STREAM.DELETE", "STREAM.INFO", "STREAM.LIST",
    "STREAM.NAMES", "STREAM.PURGE", "STREAM.MSG.GET", "STREAM.MSG.DELETE", "DIRECT.GET",
    "STREAM.SNAPSHOT", "STREAM.RESTORE", "CONSUMER.CREATE", "CONSUMER.DURABLE.CREATE",
    "CONSUMER.DELETE", "CONSUMER.INFO", "CONSUMER.LIST", "CONSUMER.NAMES", "CONSUMER.MSG.NEXT",
]  # fmt: skip
DOMAIN_API = "$JS.hub.API."
# An allowed probe must not change anything: JetStream refuses each of these bodies (not
# JSON, or not the empty body a delete wants), and a stream publish expecting a subject
# sequence that cannot be is refused by the stream.
PROBE_BODY = b"probe"
PURGE_BODY = b'{"seq": 1}'  # purge what comes before sequence 1: nothing
# A leader step-down asked to move to a cluster that does not exist is refused (a plain one would
# succeed, and leave the stream without a leader for a moment).
STEPDOWN_BODY = b'{"placement": {"cluster": "nowhere"}}'
NOT_STORED = {"Nats-Expected-Last-Subject-Sequence": "999999999"}
BARRIER_TRIES = 12  # of 5 s each
VIOLATION = re.compile(r'permissions violation for publish to "([^"]+)"', re.I)


@dataclass
class Hub:
    out: Path
    manifest: dict[str, Any]
    servers: list[RenderedServer]


def _table() -> dict[str, dict[str, str]]:
    """The section's table: subject template -> role -> cell."""
    text = DOC.read_text()
    assert SECTION in text, f"{DOC} has no '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert ["subject", *ROLES] == header
    table: dict[str, dict[str, str]] = {}
    for row in rows[2:]:
        subject, *cells = (c.strip() for c in row.strip().strip("|").split("|"))
        table[subject.strip("`")] = dict(zip(ROLES, cells, strict=True))
    return table


def _allowed_streams(cell: str) -> set[str]:
    if cell == "all":
        return set(STREAMS)
    if cell == "—":
        return set()
    streams = {s.strip() for s in cell.split(",")}
    assert streams <= set(STREAMS), cell
    return streams


def _expected(table: dict[str, dict[str, str]], role: str) -> dict[str, str]:
    """Concrete subject -> "allow" | "deny" for ``role``."""
    own, other = OWN[role]
    expected: dict[str, str] = {}
    for template, cells in table.items():
        concrete = template.replace("<A>", own).replace("<B>", other)
        for placeholder, filler in FILLERS.items():
            concrete = concrete.replace(placeholder, filler)
        if "<S>" in concrete:
            allowed = _allowed_streams(cells[role])
            for stream in STREAMS:
                expected[concrete.replace("<S>", stream)] = "allow" if stream in allowed else "deny"
        else:
            assert cells[role] in ("yes", "—"), (template, cells)
            expected[concrete] = "allow" if cells[role] == "yes" else "deny"
    return expected


def _settings(hub: Hub, role: str) -> tuple[list[str], dict[str, Any]]:
    """URLs and connect options of ``role``'s rendered credentials, at the hub."""
    if role == "broker":
        broker = BrokerSettings.load(Path(hub.manifest["broker"]["config"]))
        return broker.nats_url, broker.connect_options()
    if role == "admin":
        admin = NatsSettings.load(hub.out / "admin.toml")
        return admin.nats_url, admin.connect_options()
    agency = HUB_AGENCY if role == "agency" else LEAF
    node = NodeSettings.load(Path(hub.manifest["agencies"][agency]["node_config"]))
    if role == "leaf link":
        # The leaf server's own user, connecting straight to the hub as the leaf server does.
        urls = [s["client_url"] for s in hub.manifest["servers"]]
        node = node.model_copy(update={"nats_nkey_seed": hub.out / "nkeys" / f"leaf-{LEAF}.nk",
                                       "nats_url": urls})  # fmt: skip
    return node.nats_url, node.connect_options()


@asynccontextmanager
async def _connected(hub: Hub, role: str) -> AsyncIterator[tuple[Client, list[str]]]:
    """A connection with ``role``'s credentials and the subjects nats-server refused it."""
    urls, options = _settings(hub, role)
    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        found = VIOLATION.search(str(exc))
        refused.append(found.group(1) if found else str(exc))

    nc = await nats.connect(urls, error_cb=on_error, allow_reconnect=False, **options)
    try:
        yield nc, refused
    finally:
        await nc.close()


async def _refused(nc: Client, refused: list[str], subjects: list[str]) -> set[str]:
    """Publish a request on each subject; the (lower-cased) subjects nats-server refused."""
    refused.clear()
    for subject in subjects:
        body = (
            PURGE_BODY if ".STREAM.PURGE." in subject
            else STEPDOWN_BODY if ".LEADER.STEPDOWN." in subject
            else PROBE_BODY
        )  # fmt: skip
        headers = None if subject.startswith("$JS.") else NOT_STORED
        await nc.publish(subject, body, reply=nc.new_inbox(), headers=headers)
    # The barrier. nats-server checks a publish when it reads it and queues the -ERR at once,
    # so the answer to a request published after the probes comes after every refusal of
    # theirs; nats-py hands each -ERR to error_cb as it reads it. (nc.flush() is no barrier:
    # nats-py writes its PING ahead of the publishes still buffered.) Every role may ask for
    # the directory stream's info (the table says so; if not, this never answers). Any answer
    # will do, to this request or a later one (a stream briefly without a leader answers none).
    for _ in range(BARRIER_TRIES):
        try:
            await nc.request(f"$JS.API.STREAM.INFO.{STREAMS[-1]}", b"", timeout=5)
            break
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            continue
    else:
        raise AssertionError(f"no answer to STREAM.INFO.{STREAMS[-1]} in {BARRIER_TRIES} tries")
    return {s.lower() for s in refused}


async def _actual(hub: Hub, role: str, subjects: list[str]) -> dict[str, str]:
    """Which of ``subjects`` nats-server refused ``role``'s user, the JetStream API subjects
    also in the hub's domain form ($JS.hub.API...), which the hub maps to $JS.API... before it
    checks (and names) them: so they are sent apart, and must give the same answers."""
    async with _connected(hub, role) as (nc, refused):
        plain = await _refused(nc, refused, subjects)
        api = [s for s in subjects if s.startswith("$JS.API.")]
        in_domain = [DOMAIN_API + s.removeprefix("$JS.API.") for s in api]
        domain = {
            d.replace(DOMAIN_API.lower(), "$js.api.")
            for d in await _refused(nc, refused, in_domain)
        }
    actual = {s: "deny" if s.lower() in plain else "allow" for s in subjects}
    answers = {s: "deny" if s.lower() in domain else "allow" for s in api}
    assert {s: actual[s] for s in api} == answers, "the domain form answered differently"
    return actual


async def _provision(js: JetStreamContext, tries: int = 3) -> None:
    """The operator's 'streams create'. Creating a 3-replica stream on a loaded machine (CI runs
    two test workers on two cores) has taken longer than the 30 s a request waits; creating is
    idempotent, so ask again, as an operator would."""
    for attempt in range(1, tries + 1):
        try:
            await ensure_streams(js, StreamLimits(replicas=3))
            break
        except StreamsNotProvisioned:
            if attempt == tries:
                raise
    await js.create_key_value(bucket="PLM_DIR", history=5, replicas=3)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hub]:
    """The rendered hub (with MLT-AFM rendered as a leaf: its hub user exists), provisioned by
    the operator: the streams and the directory bucket, with the admin's credentials."""
    out = tmp_path_factory.mktemp("permissions") / "fed"
    manifest = render_on_free_ports(out, leaves=(LEAF,))
    servers = [RenderedServer(Path(s["config"])) for s in manifest["servers"]]
    async with AsyncExitStack() as stack:
        stack.push_async_callback(lambda: asyncio.gather(*(s.stop() for s in servers)))
        await asyncio.gather(*(s.start() for s in servers))
        await wait_cluster(servers)
        hub = Hub(out, manifest, servers)
        async with _connected(hub, "admin") as (nc, _):
            js = nc.jetstream(timeout=30)
            await _provision(js)
        yield hub


def test_the_table_covers_every_jetstream_verb_and_role() -> None:
    """docs/security.md's permissions table has a row for each $JS.API verb, for every role."""
    verbs = {t.removeprefix("$JS.API.") for t in _table() if t.startswith("$JS.API.")}
    covered = {v for v in VERBS if any(t == v or t.startswith(v + ".") for t in verbs)}
    assert sorted(VERBS) == sorted(covered)


@LIVE
@pytest.mark.parametrize("role", ROLES)
async def test_each_role_gets_exactly_the_table(hub: Hub, role: str) -> None:
    """Every subject of the table, as this role's user: nats-server allows exactly the cells."""
    expected = _expected(_table(), role)
    actual = await _actual(hub, role, sorted(expected))
    assert expected == actual


@LIVE
async def test_the_broker_user_cannot_rewrite_the_directory_stream(hub: Hub) -> None:
    """The broker's user updating KV_PLM_DIR to source PLM_SEEN through a subject transform
    into $KV.PLM_DIR.> (a directory write) is a permissions violation; the bucket is unchanged."""
    async with _connected(hub, "broker") as (nc, refused):
        js = nc.jetstream(timeout=3)
        config = (await js.stream_info("KV_PLM_DIR")).config
        transform = SubjectTransform(src="plm.seen.>", dest="$KV.PLM_DIR.>")
        rewritten = dataclasses.replace(
            config, sources=[StreamSource(name="PLM_SEEN", subject_transforms=[transform])]
        )
        try:
            await js.update_stream(rewritten)
            outcome = "updated"
        except nats.errors.TimeoutError:  # nats-server dropped the request
            outcome = "no answer"
        await nc.flush()
    # nats-py lower-cases the server's error text.
    assert ("no answer", ["$js.api.stream.update.kv_plm_dir"]) == (outcome, refused)
    async with _connected(hub, "admin") as (nc, _):
        assert None is (await nc.jetstream().stream_info("KV_PLM_DIR")).config.sources


@LIVE
async def test_a_broker_that_cannot_create_a_stream_says_what_to_run(hub: Hub) -> None:
    """A stream differing from the broker's configuration: its user cannot correct it, and the
    error names the operator's command instead of the broker running on it."""
    async with _connected(hub, "broker") as (nc, refused):
        # broker.toml's max_envelope_bytes raised to 2 MiB without re-running the command.
        limits = StreamLimits(replicas=3, max_payload=2 * 1024 * 1024)
        with pytest.raises(PalermoError) as raised:
            await ensure_streams(nc.jetstream(timeout=2), limits)
        await nc.flush()
    assert "streams_not_provisioned" == raised.value.code
    assert "palermo broker streams create --config broker.toml --nats-config admin.toml" in (
        raised.value.reason
    )
    assert ["$js.api.stream.update.plm_pub"] == refused
