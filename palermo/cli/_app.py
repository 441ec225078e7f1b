"""The root ``palermo`` command and the error boundary every subcommand shares."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from schemas._validation import invalid
from schemas.errors import PalermoError

P = ParamSpec("P")
R = TypeVar("R")

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
err_console = Console(stderr=True, soft_wrap=True)  # never break an error message
out_console = Console(highlight=False, soft_wrap=True)

EXIT_REFUSED = 2


def fail(error: PalermoError, *, as_json: bool = False) -> None:
    """Print a typed error the way every command does, and exit non-zero."""
    if as_json:
        sys.stdout.write(json.dumps({"error": error.to_dict()}) + "\n")
    else:
        err_console.print(f"[bold red]error[/] {escape(f'[{error.code}]')}: {escape(error.reason)}")
        details = getattr(error, "errors", None)
        for item in details or []:
            err_console.print(f"  - {item.get('field')}: {item.get('message')}", markup=False)
    raise typer.Exit(EXIT_REFUSED)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a PalermoError escaping a command into a clear message and exit code 2."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PalermoError as exc:
            fail(exc, as_json=bool(kwargs.get("as_json")))
            raise  # unreachable: fail() always exits
        except ValidationError as exc:
            fail(invalid(exc, "invalid input"), as_json=bool(kwargs.get("as_json")))
            raise

    return wrapper


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


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

    from ..demo import render, run_demo
    from ..logs import configure_logging

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
) -> None:
    """Run the example federation (embedded nats-server, directory, broker) until Ctrl-C.

    Example: palermo dev up
    then, elsewhere: palermo node run --config .palermo/dev/fed/MLT-AFM.node.toml
    """
    import asyncio
    import contextlib
    import logging
    from pathlib import Path

    from ..demo import run_dev
    from ..logs import configure_logging

    configure_logging(json_output=False, level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_dev(Path(state_dir), announce=out_console.print))
