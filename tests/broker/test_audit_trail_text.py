"""``palermo audit trail`` answers an auditor's questions in text, not only with ``--json``
(issue 15 item 9): obligations, sections withheld, and a non-refoulement override with its
justification, kept by the broker's audit record from the signed header. A real broker process
on a real nats-server."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import nats

from node.reports import seal_report
from palermo.devfed import DevFederation
from palermo.natsserver import NatsServer
from protocol.envelope import seal
from schemas import EnvelopeHeader, Handling, new_uuid7
from tests.harness import (
    PALERMO,
    example,
    publish,
    read_all,
    start_broker_process,
    stop_process,
    stream_count,
    wait_for,
    write_broker_config,
)

JUSTIFICATION = "the person is a national of Malta resident there, not a migrant at risk"


def _with_override(fed: DevFederation) -> tuple[EnvelopeHeader, bytes]:
    """ITA-GDF to MLT-AFM, AMBER, with an override naming MLT-AFM and its justification."""
    ita = fed.agencies["ITA-GDF"]
    handling = Handling(
        tlp="AMBER", rel_to=["MLT-AFM"],
        non_refoulement_override={"agencies": ["MLT-AFM"], "justification": JUSTIFICATION},
    )  # fmt: skip
    header = EnvelopeHeader(
        id=new_uuid7(), originator="ITA-GDF", kid=ita.signing.kid, created=datetime.now(UTC),
        kind="report", route="central-med", category="routes", handling=handling,
        recipients=["MLT-AFM"],
    )  # fmt: skip
    return header, seal(header, b"x" * 64, ita.signing, [fed.agencies["MLT-AFM"].encryption.public])


def _trail(url: str, envelope_id: str, *extra: str) -> str:
    done = subprocess.run(
        [PALERMO, "audit", "trail", envelope_id, "--nats", url, *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert 0 == done.returncode, done.stderr
    return done.stdout


async def test_trail_text_shows_withheld_sections_obligations_and_the_override(
    nats_server: NatsServer, federated_url: str, fed: DevFederation, tmp_path: Path
) -> None:
    trust = fed.trust_store()
    witness = seal_report(example("08"), fed.agencies["ESP-GC"].signing, ["ITA-GDF", "MLT-AFM"],
                          trust, fed.policy_store(trust), datetime.now(UTC))  # fmt: skip
    override = _with_override(fed)
    proc = start_broker_process(
        write_broker_config(tmp_path, fed, nats_server.client_url), tmp_path / "broker.log"
    )
    nc = await nats.connect(nats_server.client_url)
    try:
        await publish(nc, [(witness.header, witness.data), override])

        async def delivered() -> bool:
            return await stream_count(nc, "PLM_DLV") == 3

        await wait_for(delivered, within=30)
        assert 0 == stop_process(proc)
        # The record keeps the override whole, justification included.
        entries = [json.loads(m.data) for m in await read_all(nc, "PLM_AUDIT")]
    finally:
        await nc.close()
    [record] = [
        r for e in entries for r in e.get("records", []) if r.get("envelope") == override[0].id
    ]
    assert JUSTIFICATION == record["non_refoulement_override"]["justification"]

    text = _trail(nats_server.client_url, override[0].id)
    assert f"non-refoulement override for MLT-AFM: {JUSTIFICATION}" in text
    assert "MLT-AFM      allow    obligations: " in text

    text = _trail(nats_server.client_url, witness.header.id)
    lines = text.splitlines()
    mlt = next(i for i, line in enumerate(lines) if "MLT-AFM" in line)
    assert "withheld sections: protected-persons" in lines[mlt + 1]
    assert "no-judicial-disclosure" in lines[mlt]
    assert "agreements: " in text
