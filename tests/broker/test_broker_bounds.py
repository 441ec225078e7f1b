"""The broker refuses a megabyte of tiny msgpack objects as too_complex (issue 12, item 10),
and the genuine envelope published behind it is still delivered."""

from __future__ import annotations

import msgpack
import nats

from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.transport import publish_subject
from tests.harness import envelope, publish, read_all, running_broker, wait_for


def _hostile(genuine: bytes) -> bytes:
    """The genuine envelope with its header replaced by ~1 MB of one-entry maps (canonical:
    it would decode in full, and only then fail the header schema)."""
    start = len(b"\x87\xa1v\x01\xa5suite\x01\xa3hdr")
    end = start + len(msgpack.packb(msgpack.unpackb(genuine)["hdr"]))
    one = msgpack.packb({"a": 0})
    inner = b"\xdc" + (1000).to_bytes(2, "big") + one * 1000
    objects = b"\xdc" + (245).to_bytes(2, "big") + inner * 245
    return genuine[:start] + b"\x81\xa2zz" + objects + genuine[end:]


async def test_tiny_objects_are_dead_lettered_as_too_complex(
    nats_server: NatsServer, federated_url: str, fed: DevFederation
) -> None:
    """A 1 MB envelope of tiny objects: one dead letter with code too_complex; the genuine
    envelope published after it reaches its four recipients."""
    nc = await nats.connect(nats_server.client_url)
    header, data = envelope(fed)
    hostile = _hostile(data)
    await nc.jetstream().publish(publish_subject(header), hostile, headers={"Nats-Msg-Id": "x"})
    await publish(nc, [(header, data)])
    async with running_broker(nats_server.client_url, fed) as broker:

        async def processed() -> bool:
            return broker.processed >= 2

        await wait_for(processed, within=30)
    dead = await read_all(nc, "PLM_DEAD")
    delivered = await read_all(nc, "PLM_DLV")
    await nc.close()
    codes = sorted(m.headers["Palermo-Reason-Code"] for m in dead)
    assert (980_000 < len(hostile) < 1024 * 1024, ["not-in-rel-to", "too_complex"], 4) == (
        True,
        codes,
        len(delivered),
    )
