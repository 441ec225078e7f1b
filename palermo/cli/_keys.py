"""``palermo keys``: an agency's key files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from node.cli import rotate_command
from protocol.commandline import handles_errors, out_console, passphrase_from_env
from protocol.keys import EncryptionKey, KeyCard, SigningKey, save_private_key
from schemas.errors import ConfigError

keys_app = typer.Typer(help="Generate and manage an agency's keys.", no_args_is_help=True)


@keys_app.command("generate")
@handles_errors
def generate(
    agency: Annotated[str, typer.Argument(help="Agency id, e.g. ITA-GDF.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the key files.")] = Path("keys"),
    passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--passphrase-env", help="Encrypt the private keys with this env var's value."
        ),
    ] = None,
) -> None:
    """Create an agency's Ed25519 signing key and X25519 encryption key (files 0600).

    Writes AGENCY.sign.pem, AGENCY.enc.pem and the public key card AGENCY.pub.json.

    Example: PALERMO_PASS=... palermo keys generate ITA-GDF --out keys --passphrase-env PALERMO_PASS
    """
    import re

    from schemas._types import AGENCY_ID_PATTERN

    if not re.fullmatch(AGENCY_ID_PATTERN, agency):
        raise ConfigError(f"{agency!r} is not an agency id: upper case, digits and '-' (ITA-GDF)")
    passphrase = passphrase_from_env(passphrase_env)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    signing, encryption = SigningKey.generate(agency), EncryptionKey.generate(agency)
    save_private_key(out / f"{agency}.sign.pem", signing.private, passphrase)
    save_private_key(out / f"{agency}.enc.pem", encryption.private, passphrase)
    card = KeyCard(signing.public, encryption.public)
    (out / f"{agency}.pub.json").write_text(card.to_json() + "\n")
    out_console.print(
        f"{agency}: signing key {signing.kid}, encryption key {encryption.kid} written to {out}/"
    )


keys_app.command("rotate")(handles_errors(rotate_command))


@keys_app.command("migrate")
@handles_errors
def migrate_command(
    files: Annotated[list[Path], typer.Argument(help="Passphrase-protected key files.")],
    passphrase_env: Annotated[
        str,
        typer.Option("--passphrase-env", help="Name of the env var holding the key passphrase."),
    ],
) -> None:
    """Rewrite older passphrase-protected key files (PKCS#8, PBKDF2) with Argon2id, in place.

    The key and passphrase stay the same; files already in the current format are left alone.

    Example: PALERMO_PASS=... palermo keys migrate keys/*.pem --passphrase-env PALERMO_PASS
    """
    from protocol.keys import migrate_private_key

    passphrase = passphrase_from_env(passphrase_env)
    assert passphrase is not None  # a named variable is read or refused, never None
    for path in files:
        done = migrate_private_key(path, passphrase)
        out_console.print(f"{path}: {'migrated to Argon2id' if done else 'already current'}")
