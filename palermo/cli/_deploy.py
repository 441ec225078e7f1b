"""``palermo deploy render``: NATS, broker and node configuration for a federation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import handles_errors, out_console, print_json

deploy_app = typer.Typer(help="Render a federation's deployment.", no_args_is_help=True)


@deploy_app.command("render")
@handles_errors
def render_cmd(
    federation: Annotated[
        Path, typer.Option("--federation", help="Federation TOML or signed policy (JSON).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory to write everything to.")],
    host: Annotated[str, typer.Option(help="Host (DNS name or IP) the servers listen on.")] = (
        "127.0.0.1"
    ),
    san: Annotated[
        list[str] | None, typer.Option("--san", help="Extra name in server certificates.")
    ] = None,
    client_port: Annotated[
        int, typer.Option(help="First hub client port; cluster/leafnode/monitor ports follow.")
    ] = 4222,
    leaf: Annotated[
        list[str] | None,
        typer.Option("--leaf", help="AGENCY=PORT: the agency runs its own server (repeat)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest.")] = False,
) -> None:
    """Write a 3-server JetStream hub (mTLS, nkey users, subject permissions), leafnode
    configs, broker and node TOMLs, a dev CA and dev federation keys under --out.

    Hub server n (0-based) listens on client_port+n for clients, 6222+n for routes, 7422+n
    for leafnodes and 8222+n for monitoring (all shifted with --client-port). A leaf server
    gets PORT for clients and PORT+1 for monitoring.

    Example: palermo deploy render --federation federation.toml --out deploy-out --leaf MLT-AFM=4300
    """
    from deploy.render import RenderOptions, ServerPorts, default_hub_ports, render, start_order
    from schemas.errors import ConfigError

    leaves: dict[str, ServerPorts] = {}
    for item in leaf or []:
        agency, _, port = item.partition("=")
        if not port.isdigit():
            raise ConfigError(f"--leaf {item}: write AGENCY=PORT, e.g. --leaf MLT-AFM=4300")
        leaves[agency] = ServerPorts(client=int(port), http=int(port) + 1)
    manifest = render(
        RenderOptions(
            federation=federation,
            out=out,
            host=host,
            san=tuple(san or ()),
            hub=default_hub_ports(client_port),
            leaves=leaves,
        )
    )
    if as_json:
        print_json(manifest)
        return
    out_console.print(
        f"rendered {len(manifest['servers'])} servers, a broker and "
        f"{len(manifest['agencies'])} agencies into {out}/ (manifest.json lists them)"
    )
    # The streams come before the broker: its NATS user may only check them (decision 0015).
    out_console.print("start order:")
    for n, step in enumerate(start_order(out), start=1):
        out_console.print(f"  {n}. {step}", markup=False, highlight=False)
