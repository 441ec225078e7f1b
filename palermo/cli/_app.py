"""The root ``palermo`` command, ``palermo demo`` and ``palermo dev up``."""

from __future__ import annotations

from typing import Annotated

import typer

from protocol.commandline import handles_errors, out_console, print_json

app = typer.Typer(
    name="palermo",
    help=(
        "Palermo: share immigration intelligence under the originator's handling codes.\n\n"
        "Example: palermo demo"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("demo")
@handles_errors
def demo(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object instead of text.")
    ] = False,
) -> None:
    """Run the whole path on an embedded nats-server and print the delivery matrix.

    Example: palermo demo --json
    """
    import asyncio
    import logging

    from protocol.logs import configure_logging

    from ..demo import render, run_demo

    configure_logging(json_output=False, level=logging.WARNING)
    result = asyncio.run(run_demo())
    if as_json:
        print_json(result.to_dict())
    else:
        out_console.print(render(result), markup=False)


dev_app = typer.Typer(help="A local federation for trying Palermo out.", no_args_is_help=True)
app.add_typer(dev_app, name="dev")


@dev_app.command("up")
@handles_errors
def dev_up(
    state_dir: Annotated[
        str, typer.Option("--state-dir", help="Where server state and keys go.")
    ] = ".palermo/dev",
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Delete the federation made before and start a new one."),
    ] = False,
) -> None:
    """Run the example federation until Ctrl-C: embedded nats-server, directory, the broker
    and every agency's node, as a deployment runs them. Run again, it resumes the same
    federation (keys, inboxes, held envelopes) unless --fresh is given.

    Example: palermo dev up
    then, elsewhere: palermo inbox list --config .palermo/dev/fed/MLT-AFM.node.toml
    """
    import asyncio
    import contextlib
    import logging
    from pathlib import Path

    from protocol.logs import configure_logging

    from ..devstack import run_dev

    configure_logging(json_output=False, level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_dev(Path(state_dir), announce=_print, fresh=fresh))


def _print(line: str) -> None:
    out_console.print(line, markup=False)
