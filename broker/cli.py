"""The broker's command group: ``palermo broker``, ``palermo audit`` and ``palermo dead``.

:mod:`palermo.cli` adds it to the ``palermo`` command; it imports no other role. The broker's
modules are imported inside each command, so ``palermo --help`` stays quick.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from protocol.commandline import (
    DEFAULT_NATS,
    NatsConfigOption,
    NatsOption,
    handles_errors,
    nats_connection,
    out_console,
    print_json,
)
from schemas.errors import InputError

T = TypeVar("T")

broker_app = typer.Typer(help="Run the federation broker.", no_args_is_help=True)
audit_app = typer.Typer(help="Check and query the audit log.", no_args_is_help=True)
dead_app = typer.Typer(
    help="List dead letters (PLM_DEAD) and republish stranded envelopes.", no_args_is_help=True
)


@broker_app.command("keygen")
@handles_errors
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Directory for the key files.")] = Path("."),
    passphrase_env: Annotated[str | None, typer.Option("--passphrase-env")] = None,
) -> None:
    """Create the broker's Ed25519 key (audit checkpoints, notices): broker.sign.pem (0600)
    and broker.pub.json, which auditors use with 'palermo audit verify --broker-key'.

    Example: palermo broker keygen --out /etc/palermo
    """
    from protocol.commandline import passphrase_from_env
    from protocol.keys import SigningKey, save_private_key
    from protocol.settings import write_public_key_file

    key = SigningKey.generate("broker")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    save_private_key(out / "broker.sign.pem", key.private, passphrase_from_env(passphrase_env))
    write_public_key_file(out / "broker.pub.json", key.public)
    out_console.print(f"broker key {key.kid}: {out}/broker.sign.pem, {out}/broker.pub.json")


@broker_app.command("run")
@handles_errors
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="broker.toml")],
    log_format: Annotated[str, typer.Option(help="json or console")] = "json",
) -> None:
    """Run the broker until SIGTERM: verify, enforce policy, route, dead-letter, audit.

    Example: palermo broker run --config /etc/palermo/broker.toml
    """
    from broker.config import BrokerSettings
    from broker.runner import run_broker
    from protocol.logs import configure_logging

    configure_logging(json_output=log_format == "json")
    settings = BrokerSettings.load(config)
    _quiet_gc()
    asyncio.run(run_broker(settings))


def _quiet_gc() -> None:
    """Fewer cyclic garbage collections in the broker process (issue 19's profile: about a tenth
    of its CPU time per envelope went to collections that walked the long-lived objects of
    pydantic, the trust store and the policy index, found nothing, and started again).

    What is loaded by now is frozen (never walked again), and a collection starts after 20,000
    new container objects rather than 700: a batch of 256 envelopes makes about that many, and
    nearly all of them are freed by reference counting when the batch is done. Cycles are still
    collected, only less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


streams_app = typer.Typer(
    help="Create the JetStream streams and the directory bucket (the operator, once).",
    no_args_is_help=True,
)
broker_app.add_typer(streams_app, name="streams")


@streams_app.command("create")
@handles_errors
def streams_create(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="broker.toml: replicas, envelope size limit.")
    ],
    nats: NatsOption = DEFAULT_NATS,
    nats_config: NatsConfigOption = None,
) -> None:
    """Create the seven streams and the directory bucket, or bring them to broker.toml's
    configuration; run it with the operator's credentials (admin.toml) before the first broker
    starts, and again after changing replicas, max_envelope_bytes or max_embargo_days. The
    broker's own NATS user may not create, change or delete streams
    (docs/decisions/0015-jetstream-api-per-role.md).

    Example: palermo broker streams create --config broker.toml --nats-config admin.toml
    """
    from broker.config import BrokerSettings
    from broker.streams import STREAMS, ensure_directory_bucket, ensure_streams
    from protocol.directory import BUCKET

    settings = BrokerSettings.load(config)
    limits = settings.stream_limits()

    async def go() -> None:
        async with _jetstream(nats, nats_config, "palermo-streams") as js:
            await ensure_streams(js, limits)
            await ensure_directory_bucket(js, settings.replicas)

    asyncio.run(go())
    out_console.print(f"streams {', '.join(STREAMS)} and the directory bucket {BUCKET} are "
                      f"ready ({settings.replicas} replicas)")  # fmt: skip


# A server that was just restarted, or a stream whose leader is being elected, does not answer
# JetStream API requests for a few seconds: keep asking that long instead of failing the read.
READ_PATIENCE_S = 30.0


async def _patiently(call: Callable[[], Awaitable[T]], deadline: float) -> T:
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await call()
        except TimeoutError:  # nats.errors.TimeoutError is one
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(0.5)


async def _stream_messages(js: Any, stream: str) -> list[Any]:
    """Every message of ``stream`` (nats-py RawStreamMsg), oldest first, patient with restarts."""
    from nats.js.errors import NotFoundError

    deadline = asyncio.get_running_loop().time() + READ_PATIENCE_S
    info = await _patiently(lambda: js.stream_info(stream), deadline)
    out: list[Any] = []
    if info.state.messages == 0:  # a stream never written to has first_seq 0: nothing to get
        return out
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            out.append(await _patiently(partial(js.get_msg, stream, seq), deadline))
        except NotFoundError:  # deleted from the stream: nothing to read there
            continue
    return out


@asynccontextmanager
async def _jetstream(urls: list[str], config: Path | None, name: str) -> AsyncIterator[Any]:
    """A JetStream context on a connection from --nats or --nats-config, closed on exit."""
    from protocol.transport import connect

    urls, options = nats_connection(urls, config)
    async with connect(urls, name, **options) as nc:
        yield nc.jetstream()


async def _read_stream(
    urls: list[str], subject: str, stream: str, config: Path | None = None
) -> list[dict[str, Any]]:
    from protocol.transport import map_nats_errors

    async with _jetstream(urls, config, "palermo-audit") as js:
        with map_nats_errors(f"read {stream}"):
            messages = await _stream_messages(js, stream)
        prefix = subject.rstrip(">")
        return [
            json.loads(m.data or b"{}") for m in messages if (m.subject or "").startswith(prefix)
        ]


@audit_app.command("verify")
@handles_errors
def verify(
    broker_key: Annotated[
        list[Path], typer.Option("--broker-key", help="Broker public key file(s) (*.pub.json).")
    ],
    nats_url: NatsOption = DEFAULT_NATS,
    nats_config: NatsConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check every audit chain: links, hashes, order and signed checkpoints.

    Exits 1 and names the first broken entry if any chain was modified, cut or reordered.

    Example: palermo audit verify --broker-key broker.pub.json --nats nats://hub:4222
    """
    from broker.audit import verify_entries
    from protocol.settings import load_public_key_file

    keys = {}
    for path in broker_key:
        public = load_public_key_file(path, "broker")
        keys[public.kid] = public.key
    entries = asyncio.run(_read_stream(nats_url, "plm.audit.>", "PLM_AUDIT", nats_config))
    reports = verify_entries(entries, keys)
    if as_json:
        print_json({"ok": all(r.ok for r in reports), "chains": [r.to_dict() for r in reports]})
    else:
        for r in reports:
            state = "ok" if r.ok else f"BROKEN at entry {r.broken_seq}: {r.broken}"
            out_console.print(
                f"{r.chain}: {r.entries} entries, {r.checkpoints} checkpoints, "
                f"{r.unsigned_tail} after the last checkpoint: {state}"
            )
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@audit_app.command("trail")
@handles_errors
def trail(
    report_id: Annotated[str, typer.Argument(help="Envelope / report id.")],
    nats_url: NatsOption = DEFAULT_NATS,
    nats_config: NatsConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Everyone who received a report, when, under which obligations, and every denial; with
    each decision's withheld sections, audit flags, agreements and any non-refoulement
    override with its justification.

    Example: palermo audit trail 0193f0a2-...
    """
    from broker.audit import trail as audit_trail
    from broker.audit import trail_lines

    entries = asyncio.run(_read_stream(nats_url, "plm.audit.>", "PLM_AUDIT", nats_config))
    rows = audit_trail(entries, report_id)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out_console.print(f"no decision about {report_id} in the audit log", markup=False)
    for line in trail_lines(rows):
        out_console.print(line, markup=False, soft_wrap=True)


async def _dead_letters(js: Any) -> list[Any]:
    from broker.deadletters import DeadLetter
    from protocol.transport import map_nats_errors

    with map_nats_errors("read PLM_DEAD"):
        return [DeadLetter.of(m) for m in await _stream_messages(js, "PLM_DEAD")]


@dead_app.command("list")
@handles_errors
def dead_list(
    code: Annotated[
        str | None,
        typer.Option("--code", help="Only this reason code (e.g. redelivery_exhausted)."),
    ] = None,
    nats_url: NatsOption = DEFAULT_NATS,
    nats_config: NatsConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every dead letter: its sequence, reason code, envelope id and whether a republish can
    deliver it (only envelopes stranded by 'redelivery_exhausted').

    Example: palermo dead list --code redelivery_exhausted --nats-config admin.toml
    """

    async def go() -> list[Any]:
        async with _jetstream(nats_url, nats_config, "palermo-dead") as js:
            return await _dead_letters(js)

    letters = [d for d in asyncio.run(go()) if code in (None, d.code)]
    if as_json:
        print_json([d.to_dict() for d in letters])
        return
    if not letters:
        out_console.print("no dead letters" + (f" with code {code}" if code else ""))
    for d in letters:
        mark = "republishable" if d.republishable else ""
        out_console.print(
            f"{d.seq:>8}  {d.code:<22} {d.envelope_id or '?':<36}  {mark}\n          {d.reason}",
            markup=False,
        )


@dead_app.command("republish")
@handles_errors
def dead_republish(
    seqs: Annotated[
        list[int] | None, typer.Argument(help="PLM_DEAD sequences, from 'palermo dead list'.")
    ] = None,
    all_exhausted: Annotated[
        bool, typer.Option("--all-exhausted", help="Every redelivery_exhausted letter.")
    ] = False,
    nats_url: NatsOption = DEFAULT_NATS,
    nats_config: NatsConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Publish stranded envelopes again, unchanged, once the cause (a full stream) is fixed.

    The broker verifies and decides each one again; copies a partner already stored are not
    stored twice. Refused envelopes (policy, signature, ...) cannot be republished, nor can
    envelopes their originator has retracted since (named SEQs are refused; --all-exhausted
    leaves them out and says so).

    Example: palermo dead republish --all-exhausted --nats-config admin.toml
    """
    from broker.deadletters import refuse_retracted, refuse_unrepublishable, republish, retraction
    from protocol.transport import map_nats_errors

    if bool(seqs) == all_exhausted:
        raise InputError("name the dead letters to republish (SEQ ...) or pass --all-exhausted")

    async def go() -> list[dict[str, Any]]:
        async with _jetstream(nats_url, nats_config, "palermo-dead") as js:
            letters = await _dead_letters(js)
            by_seq = {d.seq: d for d in letters}
            missing = sorted(set(seqs or []) - set(by_seq))
            if missing:
                raise InputError(f"no dead letter with sequence {missing}; see 'palermo dead list'")
            chosen = [by_seq[s] for s in seqs or []] or [d for d in letters if d.republishable]
            refuse_unrepublishable(chosen)  # all or nothing: before anything is published
            out: list[dict[str, Any]] = []
            with map_nats_errors("read the void markers in PLM_HOLD"):
                if seqs:
                    await refuse_retracted(js, chosen)
                else:  # every exhausted letter but those retracted since, which are listed
                    for d in list(chosen):
                        if (why := await retraction(js, d)) is not None:
                            chosen.remove(d)
                            row = {"seq": d.seq, "envelope_id": d.envelope_id}
                            out.append(row | {"republished": False, "retracted": why.reason})
            for d in chosen:
                with map_nats_errors(f"republish dead letter {d.seq}"):
                    fresh = await republish(js, d)
                out.append({"seq": d.seq, "envelope_id": d.envelope_id, "republished": fresh})
        return out

    rows = asyncio.run(go())
    if as_json:
        print_json(rows)
        return
    if not rows:
        out_console.print("nothing to republish")
    for row in rows:
        state = "republished" if row["republished"] else "already republished (duplicate)"
        if "retracted" in row:
            state = f"not republished: {row['retracted']}"
        out_console.print(f"{row['seq']:>8}  {row['envelope_id'] or '?':<36}  {state}")
