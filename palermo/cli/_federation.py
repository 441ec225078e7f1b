"""``palermo federation`` (the operator's root) and ``palermo agency`` (joining it)."""

from __future__ import annotations

import os
import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.commandline import (
    handles_errors,
    out_console,
    passphrase_from_env,
    read_json,
    write_json,
)
from protocol.keys import (
    EncryptionKey,
    PublicSigningKey,
    SigningKey,
    load_private_key,
    save_private_key,
)
from protocol.settings import load_root_public, write_public_key_file
from protocol.trust import (
    REVOCATION_LIST_VALIDITY,
    ROOT,
    MembershipCertificate,
    MembershipRequest,
    RevocationEntry,
    RevocationList,
    bundle_for,
    sign_document,
    verify_document,
)
from schemas import Classification
from schemas.errors import ConfigError, TrustError

federation_app = typer.Typer(help="Run a federation's root of trust.", no_args_is_help=True)
agency_app = typer.Typer(
    help="Create an agency and ask to join a federation.", no_args_is_help=True
)

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
ROOT_KEY = "root.sign.pem"
ROOT_PUB = "root.pub.json"
REVOCATIONS = "revocations.json"
PassphraseEnv = Annotated[
    str | None,
    typer.Option("--passphrase-env", help="Name of the env var holding the key passphrase."),
]
FedDir = Annotated[Path, typer.Option("--dir", help="The federation operator's directory.")]
# The longest a revocation list may claim to stay current: past a quarter, a withheld list (and
# with it every revocation since) would go unnoticed too long (docs/decisions/0014).
MAX_REVOCATION_LIST_DAYS: Final[int] = 90
ListDays = Annotated[
    int,
    typer.Option(
        "--list-valid-days",
        min=1,
        max=MAX_REVOCATION_LIST_DAYS,
        help="Days until the list's next_update: re-issue it before then ('revoke --renew').",
    ),
]


_MIN_SEQ_LINE: Final = re.compile(r"^min_revocation_seq\s*=\s*(\d+)\s*$", re.MULTILINE)


def raise_min_revocation_seq(config: Path, seq: int) -> bool:
    """Raise ``min_revocation_seq`` in a broker.toml to ``seq`` (never lower it).

    A broker replica with no state yet starts from that minimum (decision 0013): without it, a
    new replica would take any older revocation list the directory offers. The file is edited
    in place, line by line, so the operator's comments and layout stay; returns whether it
    changed.
    """
    try:
        text = config.read_text()
        tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read the broker config {config}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the broker config {config} is not TOML: {exc}") from exc
    line = f"min_revocation_seq = {seq}"
    match = _MIN_SEQ_LINE.search(text)
    if match is not None:
        if int(match.group(1)) >= seq:
            return False
        text = text[: match.start()] + line + text[match.end() :]
    else:
        # Top-level keys must come before the first [table]; rendered configs have none.
        table = re.search(r"^\[", text, re.MULTILINE)
        at = table.start() if table is not None else len(text)
        head = text[:at] if text[:at].endswith("\n") or not text[:at] else text[:at] + "\n"
        text = head + line + "\n" + text[at:]
    tmp = config.with_name(config.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, config.stat().st_mode & 0o777)
    tmp.replace(config)
    return True


def _load_signing(path: Path, agency: str, passphrase_env: str | None) -> SigningKey:
    key = load_private_key(path, passphrase_from_env(passphrase_env))
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} holds an encryption key; a signing (Ed25519) key is needed")
    return SigningKey(agency, key)


def _signed_list(
    root: SigningKey, seq: int, entries: list[RevocationEntry], now: datetime, days: int
) -> dict[str, Any]:
    """A revocation list signed now, current for ``days`` (its ``next_update``)."""
    rl = RevocationList(
        seq=seq, issued=now, next_update=now + timedelta(days=days), entries=entries
    )
    return sign_document(rl, root, ROOT)


@federation_app.command("init")
@handles_errors
def init(
    dir: FedDir = Path("federation"),
    passphrase_env: PassphraseEnv = None,
    list_valid_days: ListDays = REVOCATION_LIST_VALIDITY.days,
) -> None:
    """Create the federation root key, the pinned root file and an empty revocation list.

    Example: palermo federation init --dir federation
    """
    dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (dir / "members").mkdir(exist_ok=True)
    root = SigningKey.generate(ROOT)
    save_private_key(dir / ROOT_KEY, root.private, passphrase_from_env(passphrase_env))
    write_public_key_file(dir / ROOT_PUB, root.public)
    now = datetime.now(UTC)
    write_json(dir / REVOCATIONS, _signed_list(root, 1, [], now, list_valid_days))
    draft = dir / "federation.toml"
    if not draft.exists():
        draft.write_text((EXAMPLES / "federation.toml").read_text())
    out_console.print(
        f"federation root {root.kid} created in {dir}/. Pin {dir}/{ROOT_PUB} on every node and "
        f"broker; keep {dir}/{ROOT_KEY} offline. Edit {draft} (an example federation), then: "
        f"palermo policy sign {draft} --key {dir}/{ROOT_KEY} --out {dir}/federation.signed.json"
    )


@federation_app.command("admit")
@handles_errors
def admit(
    request: Annotated[Path, typer.Argument(help="AGENCY.request.json from 'agency init'.")],
    dir: FedDir = Path("federation"),
    groups: Annotated[list[str] | None, typer.Option("--group", help="Group (repeat).")] = None,
    accreditation: Annotated[Classification, typer.Option()] = Classification.RESTRICTED,
    valid_days: Annotated[int, typer.Option(min=1, max=3650)] = 365,
    passphrase_env: PassphraseEnv = None,
) -> None:
    """Verify a membership request and sign the agency's membership certificate.

    Example: palermo federation admit MLT-AFM.request.json --group med-coastal --dir federation
    """
    signed = read_json(request)
    doc = signed.get("document", {}) if isinstance(signed, dict) else {}
    try:
        claimed = PublicSigningKey.from_raw(doc["agency"], bytes.fromhex(doc["signing_key"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustError(f"{request} is not a membership request") from exc
    # Proof of possession: the request is signed by the key it asks to have certified.
    req = verify_document(signed, MembershipRequest, claimed, claimed.agency)
    root = _load_signing(dir / ROOT_KEY, ROOT, passphrase_env)
    members = dir / "members"
    members.mkdir(exist_ok=True)
    target = members / f"{req.agency}.cert.json"
    serial = read_json(target)["document"]["serial"] + 1 if target.exists() else 1
    now = datetime.now(UTC)
    cert = MembershipCertificate(
        serial=serial,
        agency=req.agency,
        name=req.name,
        country=req.country,
        groups=sorted(set(groups or [])),
        accreditation=accreditation,
        signing_key=req.signing_key,
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=valid_days),
    )
    write_json(target, sign_document(cert, root, ROOT))
    out_console.print(f"{req.agency} admitted: certificate serial {serial} written to {target}")


def _check_federation_dir(dir: Path) -> None:
    """Before revoking: the root key and the current list this command re-signs, or an error
    saying which file to start from (a fresh directory, or one 'palermo dev up' wrote, whose
    list is among its documents under another name)."""
    if not (dir / ROOT_KEY).exists():
        raise ConfigError(
            f"{dir} holds no federation root key ({ROOT_KEY}): pass --dir with the directory "
            f"'palermo federation init' wrote, or start a federation there with "
            f"'palermo federation init --dir {dir}'"
        )
    if (dir / REVOCATIONS).exists():
        return
    published = sorted(dir.glob("documents/*revocation*.json"))
    start = (
        f"start from the list the federation published: cp {published[-1]} {dir / REVOCATIONS}"
        if published
        else f"start from the federation's current list (the {REVOCATIONS} 'palermo federation "
        f"init' wrote, or the newest one published to the directory) at {dir / REVOCATIONS}"
    )
    raise ConfigError(
        f"{dir} has no {REVOCATIONS}, the signed list this command adds to under the next "
        f"seq; {start}"
    )


@federation_app.command("revoke")
@handles_errors
def revoke(
    agency: Annotated[str | None, typer.Argument(help="Agency id to revoke.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (shown to every member).")] = None,
    kid: Annotated[str | None, typer.Option(help="Revoke one key only.")] = None,
    renew: Annotated[
        bool,
        typer.Option(
            "--renew", help="Re-issue the current list (next seq, new next_update), same entries."
        ),
    ] = False,
    dir: FedDir = Path("federation"),
    list_valid_days: ListDays = REVOCATION_LIST_VALIDITY.days,
    passphrase_env: PassphraseEnv = None,
    broker_config: Annotated[
        list[Path] | None,
        typer.Option(
            "--broker-config",
            help="A broker.toml whose min_revocation_seq to raise to the new seq (repeatable).",
        ),
    ] = None,
) -> None:
    """Add an agency (or one of its keys) to the signed revocation list, or renew the list.

    Every list says when the next one is due (next_update, in 7 days unless --list-valid-days
    says otherwise); past it nodes and brokers raise an alarm. Renew it before then. Every
    broker.toml must then carry the new seq as min_revocation_seq, so that a replica with no
    state never runs on an older list: --broker-config raises it in place.

    Example: palermo federation revoke LBY-DCIM --reason "key compromised" --dir federation
    Example: palermo federation revoke --renew --dir federation
    """
    if renew and (agency is not None or reason is not None or kid is not None):
        raise ConfigError(
            "--renew re-issues the list as it is; revoke with a separate command "
            "(AGENCY --reason ...), which renews the list too"
        )
    if not renew and (agency is None or reason is None):
        raise ConfigError(
            "name the agency to revoke and say why (AGENCY --reason TEXT), "
            "or pass --renew to re-issue the current list"
        )
    _check_federation_dir(dir)
    root = _load_signing(dir / ROOT_KEY, ROOT, passphrase_env)
    pinned = load_root_public(dir / ROOT_PUB)
    current = verify_document(read_json(dir / REVOCATIONS), RevocationList, pinned, ROOT)
    now = datetime.now(UTC)
    entries = list(current.entries)
    if agency is not None and reason is not None:
        entries.append(RevocationEntry(agency=agency, kid=kid, reason=reason, revoked_at=now))
    # Always the next seq: a list under a seq already published is refused everywhere.
    signed = _signed_list(root, current.seq + 1, entries, now, list_valid_days)
    write_json(dir / REVOCATIONS, signed)
    seq, due = current.seq + 1, now + timedelta(days=list_valid_days)
    done = f"{agency} revoked" if agency is not None else "revocation list renewed"
    out_console.print(
        f"{done} (list seq {seq}, next update due {due:%Y-%m-%dT%H:%MZ}); "
        f"publish {dir}/{REVOCATIONS}"
    )
    configs = broker_config or []
    for config in configs:
        changed = raise_min_revocation_seq(config, seq)
        out_console.print(f"{config}: min_revocation_seq = {seq}" + ("" if changed else " (held)"))
    if not configs:
        out_console.print(
            f"set min_revocation_seq = {seq} in every broker.toml (or pass --broker-config), "
            "so that a broker replica with no state never runs on an older list"
        )


@agency_app.command("init")
@handles_errors
def agency_init(
    agency: Annotated[str, typer.Argument(help="Agency id, e.g. MLT-AFM.")],
    name: Annotated[str, typer.Option(help="The agency's name.")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-3, e.g. MLT.")],
    dir: Annotated[Path, typer.Option("--dir", help="Where to keep the agency's keys.")] = Path(
        "agency"
    ),
    key_days: Annotated[int, typer.Option(min=1, max=3650)] = 90,
    passphrase_env: PassphraseEnv = None,
    pq: Annotated[
        bool,
        typer.Option(
            "--pq",
            help="Make the encryption key hybrid ML-KEM-768 + X25519, so that partners can seal "
            "to this agency with the post-quantum suite 2 (decision 0035).",
        ),
    ] = False,
) -> None:
    """Create an agency's keys, its signed membership request and its first key bundle.

    Example: palermo agency init MLT-AFM --name "Armed Forces of Malta" --country MLT --pq
    """
    passphrase = passphrase_from_env(passphrase_env)
    signing, enc = SigningKey.generate(agency), EncryptionKey.generate(agency, pq=pq)
    request = MembershipRequest(
        agency=agency,
        name=name,
        country=country,
        signing_key=signing.public.raw.hex(),
        encryption_key=enc.public.raw.hex(),
    )
    now = datetime.now(UTC)
    bundle = bundle_for(agency, [enc.public], now=now, days=key_days)
    dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # only once every input is valid
    save_private_key(dir / f"{agency}.sign.pem", signing.private, passphrase)
    save_private_key(dir / f"{agency}.enc.{enc.kid}.pem", enc.private_key(), passphrase)
    write_json(dir / f"{agency}.request.json", sign_document(request, signing, agency))
    write_json(dir / f"{agency}.bundle.json", sign_document(bundle, signing, agency))
    out_console.print(
        f"{agency}: keys in {dir}/. Send {dir}/{agency}.request.json to the federation operator."
    )
