"""``palermo taxii token add|list|remove`` and ``palermo taxii served``: who may read the node's
TAXII server, and what each client received (export is dissemination, issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import err_console, handles_errors, out_console, print_json

from ._common import ConfigOption

taxii_app = typer.Typer(
    help="The node's read-only TAXII 2.1 server: client tokens and what they received.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="Client tokens (each kept hashed in the state dir).")
taxii_app.add_typer(token_app, name="token")


def _state_dir(config: Path) -> Path:
    from ..config import NodeSettings

    return NodeSettings.load(config).state_dir


@token_app.command("add")
@handles_errors
def token_add(
    client: Annotated[str, typer.Argument(help="A name for the client tool, e.g. opencti-prod.")],
    collections: Annotated[
        str,
        typer.Option(
            "--collections",
            help="Comma-separated: routes (central-med, ...), 'own' (this node's "
            "publications), or '*' (all, including routes subscribed later).",
        ),
    ],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A new token for CLIENT (replacing any it had), printed once: only its hash is kept.

    Give tokens to this agency's own tools only: what they read has left Palermo's enforcement.

    Example: palermo taxii token add opencti --collections central-med,own -c ita.node.toml
    """
    from ..interop.taxii_clients import TaxiiClients

    names = [c.strip() for c in collections.split(",") if c.strip()]
    token = TaxiiClients(_state_dir(config)).add(client, names)
    if as_json:
        print_json({"client": client, "collections": sorted(set(names)), "token": token})
        return
    err_console.print(f"token for {client} (shown once; send it as 'Authorization: Bearer ...'):")
    out_console.print(token, markup=False)


@token_app.command("list")
@handles_errors
def token_list(
    config: ConfigOption, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The clients that hold a token, and the collections each may read (never the tokens).

    Example: palermo taxii token list -c ita.node.toml
    """
    from ..interop.taxii_clients import TaxiiClients

    clients = TaxiiClients(_state_dir(config)).list()
    if as_json:
        print_json([{"client": c.name, "collections": list(c.collections), "added": c.added}
                    for c in clients])  # fmt: skip
        return
    for c in clients:
        out_console.print(f"{c.name:<24} {','.join(c.collections)}  (added {c.added})")


@token_app.command("remove")
@handles_errors
def token_remove(
    client: Annotated[str, typer.Argument(help="The client whose token stops working.")],
    config: ConfigOption,
) -> None:
    """Revoke a client's token; a running node refuses it from its next request.

    Example: palermo taxii token remove opencti -c ita.node.toml
    """
    from ..interop.taxii_clients import TaxiiClients

    TaxiiClients(_state_dir(config)).remove(client)
    out_console.print(f"token of {client} removed")


@taxii_app.command("served")
@handles_errors
def served(
    client: Annotated[str, typer.Argument(help="A client name from 'palermo taxii token list'.")],
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The reports a client received through TAXII, with when it first did.

    Example: palermo taxii served opencti -c ita.node.toml
    """
    from ..interop.taxii_index import TaxiiIndex

    index = TaxiiIndex(_state_dir(config) / "taxii.db")
    try:
        rows = index.served(client)
    finally:
        index.close()
    stamped = [(r, datetime.fromtimestamp(ms / 1000, UTC).isoformat()) for r, ms in rows]
    if as_json:
        print_json([{"report": r, "first_served": when} for r, when in stamped])
        return
    for report, when in stamped:
        out_console.print(f"{report}  {when}")
