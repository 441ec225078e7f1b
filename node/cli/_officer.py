"""``palermo officer add|disable|list|totp|password|access-log``: the officer console's accounts
and its access log, on the node's host (no console or NATS needed: both are files in the
node's state directory)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from protocol.commandline import err_console, handles_errors, out_console, print_json
from schemas.errors import InputError

from ._common import ConfigOption

officer_app = typer.Typer(help="Officer console accounts and the access log.", no_args_is_help=True)

RoleOption = Annotated[
    list[str],
    typer.Option(
        "--role",
        help="reader, officer, release-authority or administrator (repeat for several).",
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the password from this file's first line instead of a prompt.",
    ),
]


def _state(config: Path) -> tuple[Path, str]:
    from ..config import NodeSettings

    settings = NodeSettings.load(config)
    return settings.state_dir, settings.agency


def _who() -> str:
    """How the access log names a change made on the host: the operating-system user."""
    try:
        return f"host:{getpass.getuser()}"
    except (KeyError, OSError):
        return "host:unknown"


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read --password-file {password_file}: {exc}") from exc
        if not lines:
            raise InputError(f"--password-file {password_file} is empty")
        return lines[0]
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@officer_app.command("add")
@handles_errors
def officer_add(
    name: Annotated[str, typer.Argument(help="Login name (lower case, e.g. anna.berger).")],
    config: ConfigOption,
    role: RoleOption,
    totp: Annotated[bool, typer.Option("--totp", help="Enrol a TOTP second factor.")] = False,
    password_file: PasswordFile = None,
) -> None:
    """Add an officer account; with --totp print the otpauth:// URI once (enrol it now).

    Example: palermo officer add anna --role release-authority --totp -c at.node.toml
    """
    from ..console.accesslog import AccessLog
    from ..console.officers import ROLES, OfficerStore, otpauth_uri

    state, agency = _state(config)
    bad = [r for r in role if r not in ROLES]
    if bad or not role:
        raise InputError(f"--role must be one of {', '.join(ROLES)} (got {', '.join(role)})")
    store = OfficerStore.in_state_dir(state)
    officer = store.add(name, role, _password(password_file), totp=totp)  # type: ignore[arg-type]
    AccessLog.in_state_dir(state, agency).record(
        _who(), "officer-add", detail=f"{officer.name} {','.join(officer.roles)}"
    )
    out_console.print(f"added {officer.name}: {', '.join(officer.roles)}", markup=False)
    if officer.totp_secret:
        out_console.print("TOTP (shown once; enrol it in an authenticator app now):", markup=False)
        out_console.print(otpauth_uri(officer, agency), markup=False)


@officer_app.command("disable")
@handles_errors
def officer_disable(
    name: Annotated[str, typer.Argument(help="The officer to disable.")],
    config: ConfigOption,
) -> None:
    """Disable an account: a running console ends its sessions at the next request."""
    from ..console.accesslog import AccessLog
    from ..console.officers import OfficerStore

    state, agency = _state(config)
    OfficerStore.in_state_dir(state).disable(name)
    AccessLog.in_state_dir(state, agency).record(_who(), "officer-disable", detail=name)
    out_console.print(f"disabled {name}", markup=False)


@officer_app.command("totp")
@handles_errors
def officer_totp(
    name: Annotated[str, typer.Argument(help="The officer to enrol.")],
    config: ConfigOption,
) -> None:
    """Enrol (or replace) an officer's TOTP second factor; prints the otpauth:// URI once."""
    from ..console.officers import OfficerStore, otpauth_uri

    state, agency = _state(config)
    officer = OfficerStore.in_state_dir(state).enrol_totp(name)
    out_console.print(otpauth_uri(officer, agency), markup=False)


@officer_app.command("password")
@handles_errors
def officer_password(
    name: Annotated[str, typer.Argument(help="The officer whose password to set.")],
    config: ConfigOption,
    password_file: PasswordFile = None,
) -> None:
    """Set an officer's password (a prompt, or --password-file)."""
    from ..console.officers import OfficerStore

    state, _ = _state(config)
    OfficerStore.in_state_dir(state).set_password(name, _password(password_file))
    out_console.print(f"password of {name} set", markup=False)


@officer_app.command("list")
@handles_errors
def officer_list(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every account: name, roles, second factor, state (never a hash or secret)."""
    from ..console.officers import OfficerStore

    state, _ = _state(config)
    rows = [
        {
            "name": o.name,
            "roles": o.roles,
            "totp": o.totp_secret is not None,
            "disabled": o.disabled,
            "created": o.created,
        }
        for o in OfficerStore.in_state_dir(state).all()
    ]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        state_word = "disabled" if r["disabled"] else "active"
        factor = "totp" if r["totp"] else "-"
        roles = ",".join(r["roles"])  # type: ignore[arg-type]
        out_console.print(f"{r['name']:<24} {roles:<40} {factor:<5} {state_word}", markup=False)


@officer_app.command("access-log")
@handles_errors
def officer_access_log(
    config: ConfigOption,
    verify: Annotated[
        bool, typer.Option("--verify", help="Check the hash chain; exit 1 if broken.")
    ] = False,
    officer: Annotated[str | None, typer.Option(help="Only this officer's entries.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who opened, published, granted, denied, overrode or exported what, and every login.

    Example: palermo officer access-log --verify -c at.node.toml
    """
    from datetime import UTC, datetime

    from ..console.accesslog import AccessLog

    state, agency = _state(config)
    log = AccessLog.in_state_dir(state, agency)
    if verify:
        report = log.verify()
        if as_json:
            print_json(report.to_dict())
        elif report.ok:
            out_console.print(f"access log intact: {report.entries} entries", markup=False)
        else:
            err_console.print(f"access log BROKEN: {report.broken}", markup=False)
        raise typer.Exit(0 if report.ok else 1)
    entries = [e for e in log.entries() if officer is None or e.get("officer") == officer]
    if as_json:
        print_json(entries)
        return
    for e in entries:
        when = datetime.fromtimestamp(e["time"] / 1000, UTC).isoformat(timespec="seconds")
        extra = " ".join(str(e[k]) for k in ("report", "detail", "client") if k in e)
        line = f"{e['seq']:>6} {when} {e['officer']:<20} {e['action']:<16} {extra}"
        out_console.print(line.rstrip(), markup=False)
