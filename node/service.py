"""The agency node: publish reports, receive deliveries into the inbox, send receipts.

This is the third enforcement point (DESIGN.md "Data flow"): every delivery is verified against
the pinned root, checked again against the signed policy on its signed header (a broker cannot
talk a node into keeping what the originator's handling forbids), opened with the agency's own
keys except for the sections that decision withholds, compared with its header, stored with its
obligations in the encrypted inbox, and acknowledged to the originator with a signed receipt
(a signed refusal, with a code, for what it refuses once the signature verified).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg

from policies import DEFAULT_SUPPRESSION_K
from protocol.directory import Directory
from protocol.keys import EncryptionKey, PublicSigningKey
from protocol.lanes import ROUTINE
from protocol.settings import load_public_key_file, load_root_public
from protocol.transport import connect, map_nats_errors
from protocol.trust import (
    MAX_BUNDLE_KEYS,
    KeyBundle,
    Subscriptions,
    TopicFilter,
    TrustStore,
    bundle_for,
    sign_document,
)
from protocol.view import PolicyStore
from schemas import Report
from schemas.errors import InputError, PalermoError, ReportInvalid

from ._lanes import FETCH_BATCH, DeliveryOptions, node_lanes
from ._publishing import NodeIdentity
from ._receiving import _Receiving
from .config import DEFAULT_MAX_EMBARGO, DEFAULT_MAX_ENVELOPE_AGE, NodeSettings
from .inbox import Inbox, InboxEntry, StorageKey
from .metrics import NodeMetrics

__all__ = ["FETCH_BATCH", "DeliveryOptions", "Node", "NodeIdentity"]

_log = structlog.get_logger("palermo.node")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Node(_Receiving):
    """One agency's node on a NATS connection. Use :meth:`connect`."""

    def __init__(
        self,
        nc: Client,
        identity: NodeIdentity,
        root: PublicSigningKey,
        inbox: Inbox,
        directory: Directory,
        *,
        broker_keys: Sequence[PublicSigningKey] = (),
        max_envelope_age: timedelta = DEFAULT_MAX_ENVELOPE_AGE,
        max_embargo: timedelta = DEFAULT_MAX_EMBARGO,
        statistics_k: int = DEFAULT_SUPPRESSION_K,
        clock: Callable[[], datetime] = _utc_now,
        delivery: DeliveryOptions | None = None,
    ) -> None:
        self.nc = nc
        # The directory's context: it carries the JetStream domain of a node behind a leafnode.
        self.js = directory.js
        self.identity = identity
        self.root = root
        self.inbox = inbox
        self.directory = directory
        self.trust: TrustStore = directory.store
        self.policy: PolicyStore = directory.policy
        self.received = 0
        self.refused = 0
        self.metrics = NodeMetrics()
        self.metrics.watch_revocations(self.trust)  # the overdue-list alarm (decision 0014)
        self.on_stored: list[Callable[[InboxEntry, Report], object]] = []
        # The broker keys that may sign notices to us ('palermo status'), by key id.
        self.broker_keys = {k.kid: k for k in broker_keys}
        self.max_envelope_age = max_envelope_age
        self.max_embargo = max_embargo
        # The least k this node suppresses a statistical return at (the federation may ask more).
        self.statistics_k = statistics_k
        # Where embargo decisions read the time; tests inject one (never a sleep).
        self.clock = clock
        self.delivery = delivery or DeliveryOptions()
        self._stopping = asyncio.Event()

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        nats_url: str | list[str],
        identity: NodeIdentity,
        root: PublicSigningKey,
        state_dir: Path,
        nats_options: Mapping[str, Any] | None = None,
        js_domain: str | None = None,
        *,
        broker_keys: Sequence[PublicSigningKey] = (),
        max_envelope_age: timedelta = DEFAULT_MAX_ENVELOPE_AGE,
        max_embargo: timedelta = DEFAULT_MAX_EMBARGO,
        statistics_k: int = DEFAULT_SUPPRESSION_K,
        delivery: DeliveryOptions | None = None,
    ) -> AsyncIterator[Node]:
        """Connect, load and follow the directory, open the inbox; close everything on exit.

        ``nats_options`` go to ``nats.connect`` (TLS, credentials, inbox prefix);
        ``js_domain`` is the hub's JetStream domain when this node is behind a leafnode;
        ``broker_keys`` verify the broker's notices (unverified ones are ignored);
        ``max_envelope_age`` is the oldest delivery taken.
        """
        # Local files only, once at start-up: not worth a thread.
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # noqa: ASYNC240
        inbox = Inbox(state_dir / "inbox.db", StorageKey.load_or_create(state_dir / "storage.key"))
        try:
            async with connect(
                nats_url, f"palermo-node-{identity.agency}", **(nats_options or {})
            ) as nc:
                trust = TrustStore(root)
                js = nc.jetstream(domain=js_domain)
                # The high-water marks persist in the state dir: a rollback written to the
                # directory while this node was down is not adopted when it comes back.
                directory = Directory(js, trust, PolicyStore(root, trust), state_dir=state_dir)
                await directory.load()
                await directory.watch()
                try:
                    node = cls(nc, identity, root, inbox, directory, broker_keys=broker_keys,
                               max_envelope_age=max_envelope_age,
                               max_embargo=max_embargo,
                               statistics_k=statistics_k, delivery=delivery)  # fmt: skip
                    directory.register_metrics(node.metrics.registry)
                    yield node
                finally:
                    await directory.close()
        finally:
            inbox.close()

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: NodeSettings) -> AsyncIterator[Node]:
        """The node described by a node.toml (:class:`~node.config.NodeSettings`).

        ``async with Node.open(NodeSettings.load(path)) as node: await node.publish(report)``
        """
        settings.check_secure()
        signing, decryption = settings.keys()
        async with cls.connect(
            settings.nats_url,
            NodeIdentity(signing, decryption),
            load_root_public(settings.root_key),
            settings.state_dir,
            settings.connect_options(),
            settings.nats_js_domain,
            broker_keys=[load_public_key_file(p, "broker") for p in settings.broker_keys],
            max_envelope_age=settings.max_envelope_age,
            max_embargo=settings.max_embargo,
            statistics_k=settings.statistics_k,
            delivery=settings.delivery_options(),
        ) as node:
            yield node

    # --- membership ----------------------------------------------------------------------------

    async def subscribe(
        self, routes: Sequence[str], categories: Sequence[str] = (), kinds: Sequence[str] = ()
    ) -> Subscriptions:
        """Register interest (replacing the previous registration): a signed document in the
        directory that publishers read to decide whom to encrypt for."""
        # The next seq above the highest ever accepted, not above the one held: the held one may
        # have been dropped (signed by a replaced key) and the directory refuses a lower seq.
        mark = self.trust.marks.get(f"subs.{self.identity.agency}")
        filters = [
            TopicFilter.model_validate(
                {"route": r, "categories": list(categories), "kinds": list(kinds)}
            )
            for r in routes
        ]
        subs = Subscriptions(
            agency=self.identity.agency,
            seq=(mark.version + 1) if mark else 1,
            issued=datetime.now(UTC),
            filters=filters,
        )
        await self.directory.publish(sign_document(subs, self.identity.signing, subs.agency))
        return subs

    async def rotate_keys(
        self, new: EncryptionKey, *, overlap_days: int = 7, days: int = 90
    ) -> KeyBundle:
        """Publish a bundle whose newest key is ``new``; older keys stay listed for the overlap.

        Senders wrap for the newest key at once; this node keeps the old private keys, so
        nothing sealed before, during or after the rotation becomes unreadable.
        """
        now = datetime.now(UTC)
        current = self.trust.bundles.get(self.identity.agency)
        keep = []
        for entry in current.keys if current else []:
            until = min(entry.not_after, now + timedelta(days=overlap_days))
            if until > now:
                keep.append(entry.model_copy(update={"not_after": until}))
        fresh = bundle_for(self.identity.agency, [new.public], now=now, days=days)
        mark = self.trust.marks.get(f"bundle.{self.identity.agency}")
        bundle = KeyBundle(
            agency=self.identity.agency,
            seq=(mark.version + 1) if mark else 1,  # above every seq accepted, held or dropped
            issued=now,
            keys=[*fresh.keys, *keep][:MAX_BUNDLE_KEYS],
        )
        await self.directory.publish(sign_document(bundle, self.identity.signing, bundle.agency))
        self.identity = NodeIdentity(self.identity.signing, [new, *self.identity.encryption])
        return bundle

    # --- lifecycle --------------------------------------------------------------------------------

    async def run(self, on_ready: Callable[[], object] | None = None) -> None:
        """Consume this agency's deliveries until :meth:`stop`, urgent ones first (node/_lanes.py);
        ``on_ready`` is called once its delivery consumers exist (``palermo node run`` logs its
        ready line then)."""
        with map_nats_errors("subscribe to deliveries"):
            lanes = await node_lanes(
                self.nc, self.js, self.identity.agency, self.delivery, self.metrics
            )
        if on_ready is not None:
            on_ready()
        try:
            while not self._stopping.is_set():
                turn = await lanes.take()
                if turn is None:
                    self._idle_work()
                    continue
                lane, msgs = turn
                for i, msg in enumerate(msgs):
                    await self._deliver(msg)
                    if lane == ROUTINE and i + 1 < len(msgs) and lanes.urgent_waiting():
                        lanes.put_back(ROUTINE, msgs[i + 1 :])  # urgent work came in: first
                        break
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                for msg in await lanes.close():  # fetched, never handled: back at once
                    await msg.nak()
                for sub in lanes.subs.values():
                    await sub.unsubscribe()

    def _idle_work(self) -> None:
        """Purge expired reports and flag overdue requests; a failure is logged and tried again
        at the next idle moment, never allowed to stop the node taking its deliveries."""
        try:
            self.metrics.purged.inc(len(self.inbox.purge_expired(datetime.now(UTC))))
            self.check_overdue()
        except Exception as exc:
            _log.error("idle work failed; will try again", error=repr(exc))

    async def _deliver(self, msg: Msg) -> None:
        try:
            await self.handle(msg)
        except PalermoError as exc:
            _log.warning("delivery not stored; will retry", code=exc.code, reason=exc.reason)
            with contextlib.suppress(nats.errors.Error):
                await msg.nak(delay=1)
        except Exception as exc:  # one delivery must not stop the node
            # A bug met on untrusted input: keep consuming the other deliveries and leave
            # this one in the stream for a fixed node to take (redelivered).
            _log.error("unexpected error handling a delivery; will retry",
                       subject=msg.subject, error=repr(exc))  # fmt: skip
            with contextlib.suppress(nats.errors.Error):
                await msg.nak(delay=5)

    async def http_ingest(self, request: Any) -> Any:
        """POST /v1/reports: 202 {id, recipients, refused}; 422 with field errors; nothing is
        published unless the whole report is valid and at least one partner may receive it.

        ``?tear_line=true`` also sends the version without personal data to the partners
        refused only because of it (:meth:`publish_tear_line`); the answer adds ``tear_line``.
        """
        from aiohttp import web

        from schemas.export import parse_report

        flag = request.query.get("tear_line", "false")
        if flag not in ("true", "false"):
            problem = InputError(f"tear_line must be true or false, not {flag[:20]!r}")
            return web.json_response(problem.to_dict(), status=400)
        try:
            report = parse_report(await request.read())
            if flag == "true":
                both = await self.publish_tear_line(report)
                return web.json_response(both.to_dict(), status=202)
            sealed = await self.publish(report)
        except ReportInvalid as exc:
            return web.json_response(exc.to_dict(), status=422)
        except InputError as exc:
            return web.json_response(exc.to_dict(), status=409)
        except PalermoError as exc:
            return web.json_response(exc.to_dict(), status=503)
        refused = {
            a: [r.to_dict() for r in d.reasons]
            for a, d in sealed.decisions.items()
            if not d.allowed
        }
        return web.json_response(
            {"id": sealed.header.id, "recipients": sealed.recipients, "refused": refused},
            status=202,
        )

    def stop(self) -> None:
        self._stopping.set()

    def status(self) -> dict[str, Any]:
        return {"agency": self.identity.agency, "received": self.received, "refused": self.refused}
