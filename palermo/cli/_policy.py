"""``palermo policy``: sign, verify and try out policy documents."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policies import AgencyPolicy, Federation, PolicyDocument
from protocol.commandline import (
    handles_errors,
    out_console,
    passphrase_from_env,
    print_json,
    read_json,
    write_json,
)
from protocol.keys import KeyCard, SigningKey, load_private_key
from protocol.settings import load_root_public
from protocol.trust import ROOT, sign_document, verify_document
from schemas.errors import ConfigError, TrustError

policy_app = typer.Typer(help="Sign, verify and check policy documents.", no_args_is_help=True)


def load_policy_toml(path: Path) -> PolicyDocument:
    """A federation or agency policy from TOML, chosen by its ``kind``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if 'kind = "agency-policy"' in text:
        return AgencyPolicy.from_toml(text)
    return Federation.from_toml(text)


def load_federation(path: Path, root: Path | None) -> Federation:
    """A federation policy: TOML (a draft, unsigned) or a signed JSON document."""
    if path.suffix == ".toml":
        doc = load_policy_toml(path)
        if not isinstance(doc, Federation):
            raise ConfigError(f"{path} is an agency policy, not a federation policy")
        return doc
    signed = read_json(path)
    if root is None:
        raise ConfigError(f"{path} is a signed policy: give --root to verify it")
    return verify_document(signed, Federation, load_root_public(root), ROOT)


def load_agency_policy(path: Path, key_card: Path | None) -> AgencyPolicy:
    if path.suffix == ".toml":
        doc = load_policy_toml(path)
        if not isinstance(doc, AgencyPolicy):
            raise ConfigError(f"{path} is a federation policy, not an agency policy")
        return doc
    signed = read_json(path)
    if key_card is None:
        raise ConfigError(f"{path} is a signed policy: give --agency-key to verify it")
    card = KeyCard.from_json(key_card.read_text(), str(key_card))
    return verify_document(signed, AgencyPolicy, card.signing, card.signing.agency)


@policy_app.command("sign")
@handles_errors
def sign(
    document: Annotated[Path, typer.Argument(help="federation.toml or an agency policy TOML.")],
    key: Annotated[Path, typer.Option("--key", help="Root key (federation) or agency key.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed JSON.")],
    passphrase_env: Annotated[str | None, typer.Option("--passphrase-env")] = None,
) -> None:
    """Validate a policy TOML and sign it: root key for the federation, agency key for its own.

    Example: palermo policy sign federation.toml --key federation/root.sign.pem --out fed.json
    """
    doc = load_policy_toml(document)
    private = load_private_key(key, passphrase_from_env(passphrase_env))
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError(f"{key} is not an Ed25519 signing key")
    signer = doc.agency if isinstance(doc, AgencyPolicy) else ROOT
    write_json(out, sign_document(doc, SigningKey(signer, private), signer))
    out_console.print(f"signed {doc.what} as {signer}: {out}")


@policy_app.command("verify")
@handles_errors
def verify(
    signed: Annotated[Path, typer.Argument(help="A signed policy (JSON).")],
    root: Annotated[Path | None, typer.Option("--root", help="Pinned root.pub.json.")] = None,
    agency_key: Annotated[
        Path | None, typer.Option("--agency-key", help="The agency's key card, for its policy.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify a signed policy document; exit 2 with the reason if it is refused.

    Example: palermo policy verify fed.json --root federation/root.pub.json
    """
    data: Any = read_json(signed)
    kind = data.get("document", {}).get("kind") if isinstance(data, dict) else None
    doc: PolicyDocument
    if kind == "federation-policy":
        doc = load_federation(signed, root)
    elif kind == "agency-policy":
        doc = load_agency_policy(signed, agency_key)
    else:
        raise TrustError(f"{signed} is not a signed policy document (kind {kind!r})")
    result = {"verified": True, "kind": kind, "signer": data["signature"]["signer"]}
    if as_json:
        print_json(result)
    else:
        out_console.print(f"{signed}: valid {doc.what} signed by {result['signer']}")


@policy_app.command("check")
@handles_errors
def check(
    report: Annotated[Path, typer.Argument(help="A report (IIR JSON) with its handling block.")],
    to: Annotated[
        list[str],
        typer.Option("--to", help="Recipient agency id (repeat), or all-members: every member."),
    ],
    federation: Annotated[
        Path, typer.Option("--federation", help="federation.toml (draft) or signed JSON.")
    ],
    agency_policy: Annotated[
        Path | None, typer.Option("--agency-policy", help="The originator's standing policy.")
    ] = None,
    root: Annotated[Path | None, typer.Option("--root", help="root.pub.json, to verify.")] = None,
    agency_key: Annotated[Path | None, typer.Option("--agency-key")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Would this report go to these agencies? Prints the decision, reasons and obligations.

    Exit code 0 if every recipient is allowed, 1 if any is denied, 2 on bad input.

    Example: palermo policy check report.json --to MLT-AFM --federation federation.toml
    """
    from datetime import UTC, datetime

    from policies import decide
    from schemas import ALL_MEMBERS, EnvelopeHeader, new_uuid7, partition
    from schemas.export import parse_report

    try:
        parsed = parse_report(report.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {report}: {exc.strerror}") from exc
    fed = load_federation(federation, root)
    standing = load_agency_policy(agency_policy, agency_key) if agency_policy else None
    if ALL_MEMBERS in to:
        # Every member but the originator: the check shows each exclusion and each refusal.
        to = [m.id for m in sorted(fed.members, key=lambda m: m.id) if m.id != parsed.originator]
    now = datetime.now(UTC)
    header = EnvelopeHeader(
        id=new_uuid7(),
        originator=parsed.originator,
        kid="0" * 16,
        created=now,
        kind=parsed.kind,
        priority=parsed.priority,
        route=parsed.route,
        category=parsed.category,
        handling=parsed.handling,
        schema_=parsed.schema_,
        recipients=sorted(set(to) - {parsed.originator}) or ["NOBODY"],
        sections=partition(parsed).sections(),
    )
    decisions = [decide(header, agency, fed, standing, now) for agency in to]
    if as_json:
        if len(decisions) == 1:
            print_json(decisions[0].to_dict())
        else:
            print_json([decision.to_dict() for decision in decisions])
    else:
        for d in decisions:
            colour = "green" if d.allowed else "red"
            out_console.print(f"[bold {colour}]{d.decision.upper()}[/] {d.recipient}", markup=True)
            for reason in d.reasons:
                out_console.print(f"  reason {reason.code}: {reason.message}", markup=False)
            for ob in d.obligations:
                out_console.print(f"  obligation {ob.code}: {ob.message}", markup=False)
            for section in d.withheld_sections:
                out_console.print(f"  withheld section: {section}", markup=False)
    if not all(d.allowed for d in decisions):
        raise typer.Exit(1)
