"""The federation directory: signed trust documents in a JetStream key-value bucket.

Keys: ``cert.<AGENCY>``, ``bundle.<AGENCY>``, ``subs.<AGENCY>``, ``revocations``,
``policy.federation``, ``policy.agency.<AGENCY>``. Every value is a signed document; nothing is
used before the :class:`~protocol.trust.TrustStore` has verified it against the pinned root, so
a writer to the bucket can at worst withhold documents, never forge them. Both the broker and
the nodes keep a live view with :meth:`Directory.watch`.

A key holds only its own subject's document (``policy.agency.B`` only B's standing policy), and
versions only go up: each key has a high-water mark, persisted in the process's state dir
(:mod:`protocol.watermarks`), and nothing below it is adopted, in this run or after a restart. At
start-up, a directory offering only an older revocation list or federation policy than the marks
stops the process (:class:`~schemas.errors.Rollback`); an older per-agency document is refused
and that agency's document treated as missing (docs/decisions/0013-trust-high-water-marks.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry, Gauge

from protocol.marks import REVOCATIONS_KEY, check_key, document_key
from protocol.trust import TrustStore
from protocol.view import AGENCY_PREFIX, FEDERATION_KEY, PolicyStore
from schemas.errors import PalermoError, Rollback, TransportError, TrustError

from .transport import map_nats_errors
from .watermarks import MarksFile

__all__ = ["BUCKET", "Directory", "directory_key"]

BUCKET: Final[str] = "PLM_DIR"
MAX_DOCUMENT_BYTES: Final[int] = 256 * 1024
REFUSE_START_BELOW: Final[tuple[str, ...]] = (REVOCATIONS_KEY, FEDERATION_KEY)
"""Keys whose rollback at start-up stops the process: running on an older revocation list
un-revokes keys, on an older federation policy re-admits what the operator withdrew. Below the
mark on any other key, only that agency's document is missing (no bundle: nobody seals for it;
no standing policy: its reports are denied), which fails closed."""
_log = structlog.get_logger("palermo.directory")


def directory_key(signed: Mapping[str, Any]) -> str:
    """Where a signed document lives in the bucket, from its kind and agency."""
    return document_key(signed)


class Directory:
    """A verified, live view of the directory bucket."""

    def __init__(
        self,
        js: JetStreamContext,
        store: TrustStore,
        policy: PolicyStore | None = None,
        *,
        replicas: int = 1,
        state_dir: Path | None = None,
    ) -> None:
        """``state_dir``: where the high-water marks persist (None: in memory only, for tools
        that publish and exit)."""
        self.js = js
        self.store = store
        self.policy = policy or PolicyStore(store.root, store)
        self.replicas = replicas
        self.raw: dict[str, dict[str, Any]] = {}
        self.rejected: dict[str, str] = {}
        self.below_mark: dict[str, Rollback] = {}
        """Keys whose latest entry was refused as a rollback (held, offered: on the error)."""
        self._marks_file = MarksFile(state_dir, store.root.kid) if state_dir is not None else None
        if self._marks_file is not None:
            store.marks.merge(self._marks_file.load())
        self._saved_revision = -1 if self._marks_file is None else store.marks.revision
        self._loading = False
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        # The bucket revision of each document this process wrote (publish): the watcher may
        # still hand over that key's earlier entry afterwards, which is history, not a rollback.
        self._written: dict[str, int] = {}

    async def open(self, *, create: bool = True) -> KeyValue:
        if self._kv is not None:
            return self._kv
        with map_nats_errors(f"open the directory bucket {BUCKET}"):
            try:
                kv: KeyValue | None = await self.js.key_value(BUCKET)
            except nats.js.errors.BucketNotFoundError:
                if not create:
                    raise
                kv = None
        self._kv = kv if kv is not None else await self._create()
        return self._kv

    async def _create(self) -> KeyValue:
        try:
            with map_nats_errors(f"create the directory bucket {BUCKET}"):
                return await self.js.create_key_value(
                    bucket=BUCKET, history=5, replicas=self.replicas
                )
        except TransportError as exc:
            # Under a deployment's permissions only the operator may create it (decision 0015).
            raise TransportError(
                f"the directory bucket {BUCKET} does not exist and could not be created "
                f"({exc.reason}); the operator creates it with the streams, once: 'palermo "
                "broker streams create --config broker.toml --nats-config admin.toml'"
            ) from exc

    async def publish(self, signed: dict[str, Any]) -> str:
        """Verify a document against what we hold, then store it. Returns its key."""
        key = directory_key(signed)
        self._verify(key, signed)
        self._persist()
        data = json.dumps(signed, sort_keys=True).encode()
        if len(data) > MAX_DOCUMENT_BYTES:
            raise TrustError(f"{key} is {len(data)} bytes; the limit is {MAX_DOCUMENT_BYTES}")
        kv = await self.open()
        with map_nats_errors(f"store {key} in the directory"):
            revision = await kv.put(key, data)
        self._written[key] = max(revision, self._written.get(key, 0))
        self.raw[key] = signed
        return key

    def _persist(self) -> None:
        """Write the marks when they moved (after the document was taken, before it is used
        by anything slow: a crash in between re-reads the same document on restart)."""
        if self._marks_file is None or self._loading:
            return
        if self.store.marks.revision != self._saved_revision:
            self._marks_file.save(self.store.marks.as_dict())
            self._saved_revision = self.store.marks.revision

    def _verify(self, key: str, signed: Mapping[str, Any]) -> None:
        """Verify and take a document; raises (and changes nothing) if it does not verify."""
        # The key must be the document's own subject before anything else: the handler is
        # chosen by the key, and the document is filed under the agency named inside it.
        check_key(key, signed)
        if key == FEDERATION_KEY:
            self.policy.set_federation(signed)
        elif key.startswith(AGENCY_PREFIX):
            self.policy.set_agency_policy(signed)
        else:
            self.store.add(signed)

    def register_metrics(self, registry: CollectorRegistry) -> None:
        """``palermo_trust_documents_below_mark``: directory entries refused as rollbacks now
        (each is treated as missing; alert on > 0: someone wrote an older document)."""
        gauge = Gauge(
            "palermo_trust_documents_below_mark",
            "Directory keys whose latest entry is below this process's high-water mark",
            registry=registry,
        )
        gauge.set_function(lambda: len(self.below_mark))

    def on_change(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(key, document)`` after each verified update (e.g. a revocation)."""
        self._listeners.append(listener)

    def _apply(self, key: str, value: bytes) -> None:
        try:
            signed = json.loads(value)
            if not isinstance(signed, dict):
                raise TrustError(
                    f"not a signed document: a JSON object is expected, not {type(signed).__name__}"
                )
            self._verify(key, signed)
        # ValueError covers bytes that are not UTF-8 as well as bad JSON; RecursionError a deep
        # nest. Anything escaping here would stop the watcher, and with it every later
        # revocation: one bad entry must never do more than be refused.
        except (ValueError, RecursionError, PalermoError) as exc:
            reason = (
                exc.reason
                if isinstance(exc, PalermoError)
                else f"not JSON: {type(exc).__name__}: {str(exc)[:200]}"
            )
            # A bad entry is logged and ignored; the last good state stays in force.
            self.rejected[key] = reason
            if isinstance(exc, Rollback):
                self.below_mark[key] = exc
            _log.warning("directory entry refused", key=key, reason=reason)
            return
        self.rejected.pop(key, None)
        self.below_mark.pop(key, None)
        self.raw[key] = signed
        self._persist()
        for listener in self._listeners:
            listener(key, signed)

    async def load(self) -> None:
        """Read every entry once: certificates first, so bundles can be checked against them."""
        kv = await self.open()
        with map_nats_errors("read the directory"):
            try:
                keys = await kv.keys()
            except nats.js.errors.NoKeysError:
                return
            entries = {k: (await kv.get(k)).value or b"" for k in keys}
        # Certificates first (bundles and standing policies are checked against them), then
        # revocations, then the federation policy, then the rest. The order decides nothing
        # else: each key holds only its own subject's document, and versions are checked
        # against the marks.
        order = {"cert": 0, "revocations": 1, "policy": 2}
        self._loading = True
        try:
            for key in sorted(entries, key=lambda k: (order.get(k.split(".")[0], 3), k)):
                self._apply(key, entries[key])
        finally:
            self._loading = False
        self._persist()
        self._refuse_to_run_below_marks()

    def _refuse_to_run_below_marks(self) -> None:
        """Stop on a rolled-back revocation list or federation policy; log the rest."""
        for key, exc in sorted(self.below_mark.items()):
            if key in REFUSE_START_BELOW:
                offered = "nothing newer" if exc.offered is None else f"version {exc.offered}"
                raise Rollback(
                    f"refusing to start: the directory offers {key} {offered}, but this process "
                    f"has already accepted version {exc.held} ({exc.reason}); running on it "
                    f"would undo what the newer one says. Publish the current {key} to the "
                    "directory ('palermo directory publish'), then start again",
                    key=key,
                    held=exc.held,
                    offered=exc.offered,
                )
            _log.error("directory entry below its high-water mark: treated as missing",
                       key=key, held=exc.held, offered=exc.offered)  # fmt: skip

    def watched(self, key: str, value: bytes, revision: int | None) -> None:
        """One entry from the watcher. An entry at or before a revision this process wrote
        itself is skipped: it is our own write (already taken) or the value it replaced,
        delivered late because the watcher's first pass was still under way ('palermo
        subscribe' used to log that older entry as refused even though it succeeded). A lower
        version written after ours still arrives with a higher revision and is refused."""
        if revision is not None and revision <= self._written.get(key, 0):
            return
        self._apply(key, value)

    async def watch(self) -> None:
        """Start applying updates as they arrive (revocations take effect within a second)."""
        kv = await self.open()
        with map_nats_errors("watch the directory"):
            watcher = await kv.watchall()

        async def run() -> None:
            async for entry in watcher:
                if entry is None or entry.value is None or entry.operation is not None:
                    continue
                self.watched(entry.key, entry.value, entry.revision)

        self._task = asyncio.create_task(run(), name="directory-watch")
        self._watcher = watcher

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            await self._watcher.stop()  # type: ignore[no-untyped-call]
            self._task = None
