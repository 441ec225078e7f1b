"""``palermo envelope``: look at envelopes without decrypting them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import handles_errors, out_console, print_json
from protocol.envelope import StaticSigners, verify_envelope
from protocol.keys import KeyCard
from schemas.errors import ConfigError

envelope_app = typer.Typer(help="Inspect envelopes (no decryption).", no_args_is_help=True)


@envelope_app.command("inspect")
@handles_errors
def inspect(
    file: Annotated[Path, typer.Argument(help="An envelope file (raw msgpack bytes).")],
    keys: Annotated[
        list[Path],
        typer.Option("--keys", "-k", help="Key card(s) of possible originators (AGENCY.pub.json)."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Verify an envelope's format and signature and print its header, without decrypting.

    Example: palermo envelope inspect alert.plm --keys keys/ITA-GDF.pub.json
    """
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
    cards = [KeyCard.from_json(p.read_text(), str(p)) for p in keys]
    signers = StaticSigners.of([c.signing for c in cards])
    verified = verify_envelope(data, signers, now=datetime.now(UTC))
    env = verified.envelope
    summary = {
        "verified": True,
        "size": verified.size,
        "version": env.v,
        "suite": env.suite,
        "header": verified.header.model_dump(mode="json", by_alias=True, exclude_none=True),
        "stanzas": [{"agency": s.agency, "kid": s.kid} for s in env.rcpt],
        "sections": [
            {"id": s.id, "readers": sorted({x.agency for x in s.rcpt})} for s in env.sections
        ],
    }
    if not as_json:
        out_console.print(
            f"[green]signature valid[/]: {verified.header.originator} key {verified.header.kid}"
        )
    print_json(summary)
