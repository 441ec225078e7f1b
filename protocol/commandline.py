"""What every role's command group shares: the error boundary, the consoles, JSON helpers,
the passphrase and NATS options. The ``palermo`` command itself is assembled in
:mod:`palermo.cli`; node and broker commands use this module, never each other."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from schemas._validation import invalid
from schemas.errors import ConfigError, PalermoError

__all__ = [
    "DEFAULT_NATS",
    "EXIT_REFUSED",
    "NatsConfigOption",
    "NatsOption",
    "err_console",
    "fail",
    "handles_errors",
    "nats_connection",
    "out_console",
    "passphrase_from_env",
    "print_json",
    "read_json",
    "write_json",
]

P = ParamSpec("P")
R = TypeVar("R")

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


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def passphrase_from_env(var: str | None) -> bytes | None:
    """Read a passphrase from the named environment variable (never from argv or logs)."""
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise ConfigError(f"environment variable {var} is empty or unset; export the passphrase")
    return value.encode()


NatsOption = Annotated[
    list[str], typer.Option("--nats", help="NATS server URL (repeat for a cluster).")
]
DEFAULT_NATS = ["nats://127.0.0.1:4222"]
NatsConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--nats-config",
        help="TOML with nats_url, TLS and credentials (admin.toml from 'palermo deploy "
        "render'); replaces --nats.",
    ),
]


def nats_connection(urls: list[str], config: Path | None) -> tuple[list[str], dict[str, Any]]:
    """URLs and connect options: from --nats, or from a NATS settings TOML (checked)."""
    if config is None:
        return urls, {}
    from .settings import NatsSettings

    settings = NatsSettings.load(config)
    settings.check_secure()
    return settings.nats_url, settings.connect_options()
