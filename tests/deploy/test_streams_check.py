"""The broker's start-up check of the streams and the directory bucket (broker/streams.py),
on a plain nats-server: what it refuses, and what the operator's command repairs."""

from __future__ import annotations

import dataclasses

import nats
import pytest
from nats.js.api import StreamSource, SubjectTransform

from broker.streams import StreamLimits, ensure_directory_bucket, ensure_streams
from schemas.errors import StreamsNotProvisioned


async def test_a_directory_stream_fed_from_another_stream_is_refused_then_repaired(
    nats_url: str,
) -> None:
    """KV_PLM_DIR sourcing another stream (the rewrite above, done by someone with the right):
    a broker that may only check refuses to start; the operator's command removes the source."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, StreamLimits())
        await js.create_key_value(bucket="PLM_DIR", history=5)
        config = (await js.stream_info("KV_PLM_DIR")).config
        transform = SubjectTransform(src="plm.seen.>", dest="$KV.PLM_DIR.>")
        await js.update_stream(dataclasses.replace(
            config, sources=[StreamSource(name="PLM_SEEN", subject_transforms=[transform])]
        ))  # fmt: skip
        with pytest.raises(StreamsNotProvisioned) as raised:
            await ensure_directory_bucket(js, create=False)
        await ensure_directory_bucket(js)  # what 'palermo broker streams create' runs
        repaired = (await js.stream_info("KV_PLM_DIR")).config
    finally:
        await nc.close()
    assert ["KV_PLM_DIR"] == raised.value.streams
    assert "sources: expected []" in raised.value.reason
    assert (None, ["$KV.PLM_DIR.>"]) == (repaired.sources, repaired.subjects)


async def test_a_missing_stream_is_named_with_the_command_to_run(nats_url: str) -> None:
    """No streams yet and no right to create them: every stream is named, with the command."""
    nc = await nats.connect(nats_url)
    try:
        with pytest.raises(StreamsNotProvisioned) as raised:
            await ensure_streams(nc.jetstream(), StreamLimits(), create=False)
    finally:
        await nc.close()
    assert ["PLM_AUDIT", "PLM_DEAD", "PLM_DLV", "PLM_HOLD", "PLM_PUB", "PLM_RCPT", "PLM_SEEN"] == (
        raised.value.streams
    )
    assert "palermo broker streams create --config broker.toml --nats-config admin.toml" == (
        raised.value.command
    )


async def test_a_stream_created_after_the_request_gave_up_counts_as_created(
    nats_url: str,
) -> None:
    """A replicated stream on a loaded cluster can be created after the request timed out: the
    check looks again, finds it as configured, and carries on with the other streams, instead of
    reporting it missing (and the rest uncreated) as if the user had no right to create it."""
    nc = await nats.connect(nats_url)
    try:
        real = nc.jetstream()

        class SlowReply(type(real)):  # type: ignore[misc]
            """Creates the stream, then loses the reply the first time, as a slow server does."""

            late = 0

            async def add_stream(self, config=None, **params):  # type: ignore[no-untyped-def]
                info = await super().add_stream(config, **params)
                if not SlowReply.late:
                    SlowReply.late += 1
                    raise nats.errors.TimeoutError
                return info

        await ensure_streams(SlowReply(nc), StreamLimits())
        names = sorted(str(info.config.name) for info in await real.streams_info())
    finally:
        await nc.close()
    assert 1 == SlowReply.late
    assert ["PLM_AUDIT", "PLM_DEAD", "PLM_DLV", "PLM_HOLD", "PLM_PUB", "PLM_RCPT", "PLM_SEEN"] == (
        names
    )
