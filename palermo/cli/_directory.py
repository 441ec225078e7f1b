"""``palermo directory``: publish and show the federation directory (operator tooling)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from protocol.commandline import (
    DEFAULT_NATS,
    NatsConfigOption,
    NatsOption,
    handles_errors,
    nats_connection,
    out_console,
    print_json,
    read_json,
)
from protocol.settings import load_root_public

__all__ = ["directory_app"]

directory_app = typer.Typer(help="Publish and show the federation directory.", no_args_is_help=True)


@directory_app.command("publish")
@handles_errors
def publish(
    files: Annotated[list[Path], typer.Argument(help="Signed documents (*.json).")],
    root: Annotated[Path, typer.Option("--root", help="Pinned root.pub.json.")],
    nats_url: NatsOption = DEFAULT_NATS,
    nats_config: NatsConfigOption = None,
) -> None:
    """Verify signed trust and policy documents, then store them in the directory.

    Example: palermo directory publish federation/members/*.cert.json --root root.pub.json
    """
    from protocol.directory import Directory
    from protocol.transport import connect
    from protocol.trust import TrustStore

    docs = [read_json(f) for f in files]
    urls, options = nats_connection(nats_url, nats_config)

    async def go() -> list[str]:
        async with connect(urls, "palermo-directory", **options) as nc:
            directory = Directory(nc.jetstream(), TrustStore(load_root_public(root)))
            await directory.load()
            order = {"membership-certificate": 0, "revocation-list": 1, "federation-policy": 2}
            ranked = sorted(docs, key=lambda d: order.get(d.get("document", {}).get("kind"), 3))
            return [await directory.publish(d) for d in ranked]

    for key in asyncio.run(go()):
        out_console.print(f"published {key}")


@directory_app.command("show")
@handles_errors
def show(
    root: Annotated[Path, typer.Option("--root", help="Pinned root.pub.json.")],
    nats_url: NatsOption = DEFAULT_NATS,
    nats_config: NatsConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the verified directory: members, keys, subscriptions, revocations, refusals.

    Example: palermo directory show --root root.pub.json --json
    """
    from protocol.directory import Directory
    from protocol.transport import connect
    from protocol.trust import TrustStore

    urls, options = nats_connection(nats_url, nats_config)

    async def go() -> dict[str, Any]:
        async with connect(urls, "palermo-directory", **options) as nc:
            store = TrustStore(load_root_public(root))
            directory = Directory(nc.jetstream(), store)
            await directory.load()
            return {
                "members": {
                    a: {
                        "name": c.name,
                        "country": c.country,
                        "groups": c.groups,
                        "accreditation": c.accreditation.value,
                        "serial": c.serial,
                    }
                    for a, c in sorted(store.members.items())
                },
                "revoked": [e.model_dump(mode="json") for e in store.revocations.entries],
                "subscriptions": {
                    a: [f.model_dump(mode="json") for f in s.filters]
                    for a, s in sorted(store.subscriptions.items())
                },
                "federation_policy": directory.policy.federation.version
                if directory.policy.federation
                else None,
                "refused": directory.rejected,
            }

    data = asyncio.run(go())
    if as_json:
        print_json(data)
        return
    for agency, info in data["members"].items():
        out_console.print(f"{agency:<12} {info['country']} {','.join(info['groups'])}")
    for entry in data["revoked"]:
        out_console.print(f"revoked: {entry['agency']} {entry.get('kid') or ''} {entry['reason']}")
    for key, reason in data["refused"].items():
        out_console.print(f"refused {key}: {reason}")
