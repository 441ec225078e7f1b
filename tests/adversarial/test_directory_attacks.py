"""A writer to the directory bucket can at worst withhold documents: garbage entries are refused
one by one, and the live view keeps applying what follows (above all, revocations)."""

from __future__ import annotations

from datetime import UTC, datetime

import nats
import pytest

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.directory import BUCKET, Directory
from protocol.trust import ROOT, RevocationEntry, RevocationList, sign_document
from tests.harness import wait_for

GARBAGE = {
    "bundle.LBY-DCIM": b"\xff\xfe\xfa not utf-8",
    "subs.LBY-DCIM": b"[" * 100_000,
    "cert.LBY-DCIM": b'{"document": [], "signature": 1}',
    "policy.agency.LBY-DCIM": b"NaN",
}


@pytest.mark.parametrize("when", ["before-load", "while-watching"])
async def test_garbage_entries_are_refused_and_revocations_still_apply(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, when: str
) -> None:
    """Non-UTF-8, a 100,000-deep JSON nest, a wrong shape, NaN: each refused with a reason;
    a revocation published afterwards still reaches the live view."""
    nc = await nats.connect(nats_server.client_url)
    kv = await nc.jetstream().key_value(BUCKET)
    view = Directory(nc.jetstream(), fed.trust_store(), fed.policy_store())
    try:
        if when == "before-load":
            for key, value in GARBAGE.items():
                await kv.put(key, value)
        await view.load()
        await view.watch()
        if when == "while-watching":
            for key, value in GARBAGE.items():
                await kv.put(key, value)
        now = datetime.now(UTC)
        revoked = RevocationList(seq=2, issued=now, entries=[
            RevocationEntry(agency="ITA-GDF", reason="compromised", revoked_at=now)])  # fmt: skip
        await Directory(nc.jetstream(), fed.trust_store()).publish(
            sign_document(revoked, fed.root, ROOT)
        )

        async def applied() -> bool:
            return view.store.revoked("ITA-GDF", None, datetime.now(UTC)) is not None

        await wait_for(applied, within=10, every=0.02)
        rejected = dict(view.rejected)
    finally:
        await view.close()
        await nc.close()
    assert set(GARBAGE) == set(rejected)
    assert rejected["bundle.LBY-DCIM"].startswith("not JSON: UnicodeDecodeError")
    assert rejected["subs.LBY-DCIM"].startswith("not JSON: RecursionError")
    assert "a JSON object is expected, not float" in rejected["policy.agency.LBY-DCIM"]
    assert "LBY-DCIM" in view.store.members
