"""What the TAXII server shows: the node's collections, the reports each holds, their objects.

:class:`ObjectSource` is the seam between the server (HTTP, paging, the index) and the node's
data; :class:`InboxSource` is the node's: one collection per route the node receives (its
subscriptions, and any route it still holds reports on), plus ``own`` for what it published.
A report's objects come from the STIX exporter, from the report as the inbox holds it: the
sections the policy withheld from this agency were never opened, so they are not in it and
cannot be exported. A report that expired, was purged (its content shredded) or retracted by
its originator is *withdrawn*: the server then serves revoked versions instead.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import structlog
from stix2.exceptions import STIXError

from protocol.trust import TrustStore
from schemas import EnvelopeHeader, Kind, Route, to_epoch_ms
from schemas.errors import InputError, PalermoError

from ..inbox import Inbox
from .exportlog import record_export
from .markings import PALERMO_EXTENSION_ID
from .stix_export import export_bundle
from .taxii_clients import OWN_COLLECTION
from .taxii_index import LIVE, TaxiiIndex

__all__ = [
    "COLLECTIONS_NAMESPACE",
    "MAX_INDEXED_PER_REQUEST",
    "CollectionInfo",
    "Holding",
    "InboxSource",
    "ObjectSource",
    "is_shared",
    "subscribed_routes",
    "synchronise",
]

_log = structlog.get_logger("palermo.node.taxii")

COLLECTIONS_NAMESPACE: Final = uuid.UUID("5f0f5a52-6e0b-4c55-9d3b-7a1d0d7c2e18")
"""UUIDv5 namespace of collection ids: the same node gives the same ids across restarts."""
MAX_INDEXED_PER_REQUEST: Final[int] = 200
"""New reports indexed (exported) before one answer; the rest by the next requests."""
# Kinds a node publishes as reports (a release re-seals one, a retraction withdraws one).
_PUBLISHED: Final = frozenset({Kind.ALERT.value, Kind.REPORT.value, Kind.STATISTICS.value})


@dataclass(frozen=True)
class CollectionInfo:
    """A TAXII collection: its alias (a route, or ``own``) and what a client is told of it."""

    alias: str
    title: str
    description: str
    id: str

    @classmethod
    def of(cls, agency: str, alias: str) -> CollectionInfo:
        if alias == OWN_COLLECTION:
            title = f"{agency}: reports this agency published"
            about = f"The reports {agency} published to its partners, as STIX 2.1."
        else:
            title = f"{agency}: reports received on route {alias}"
            about = (
                f"The reports {agency}'s node received on the {alias} route, as STIX 2.1, "
                "without the sections withheld from it."
            )
        ident = str(uuid.uuid5(COLLECTIONS_NAMESPACE, f"{agency}/{alias}"))
        return cls(alias, title, about, ident)


@dataclass(frozen=True)
class Holding:
    """A report a collection holds, in the order the node got it, and whether it may be shown."""

    report_id: str
    live: bool


class ObjectSource(Protocol):
    """Where a TAXII server's content comes from (the node's inbox; a test's own)."""

    def collections(self) -> list[CollectionInfo]:
        """Every collection, whoever asks (the server keeps those a client may read)."""
        ...

    def holdings(self, alias: str, now: datetime) -> list[Holding]:
        """The reports a collection holds, oldest first, withdrawn ones marked."""
        ...

    def objects(self, report_id: str) -> list[dict[str, Any]]:
        """A live report's STIX objects; a ``PalermoError`` if it cannot be exported."""
        ...

    def exported(self, client: str, report_ids: list[str], now: datetime) -> None:
        """Record that a client received these reports for the first time (dissemination)."""
        ...


class InboxSource:
    """The node's own data: its inbox (received reports) and its record of what it sent."""

    def __init__(
        self, inbox: Inbox, agency: str, routes: Callable[[], set[str]], export_log: Path
    ) -> None:
        self.inbox = inbox
        self.agency = agency
        self.export_log = export_log
        self.routes = routes
        """The routes the node subscribes to now (read from the live directory each time)."""

    def collections(self) -> list[CollectionInfo]:
        held = {e.route for e in self.inbox.entries()}
        aliases = [r.value for r in Route if r.value in held | self.routes()]
        return [CollectionInfo.of(self.agency, a) for a in [OWN_COLLECTION, *aliases]]

    def holdings(self, alias: str, now: datetime) -> list[Holding]:
        now_ms = to_epoch_ms(now)
        if alias == OWN_COLLECTION:
            # Inbox has no method listing what was sent: its table is read here, oldest first
            # (read-only; a method on Inbox would be the better home).
            rows = self.inbox._db.execute(
                "SELECT id, header, retracted_ms FROM sent ORDER BY sent_ms, id"
            )
            held = []
            for report_id, header, retracted in rows:
                head = json.loads(header)
                if head.get("kind") not in _PUBLISHED:
                    continue
                expires = EnvelopeHeader.model_validate(head).handling.expires
                expired = expires is not None and to_epoch_ms(expires) <= now_ms
                held.append(Holding(report_id, retracted is None and not expired))
            return held
        return [
            Holding(e.id, e.purged_ms is None and (e.expires_ms is None or e.expires_ms > now_ms))
            for e in reversed(self.inbox.entries(route=alias))
        ]

    def objects(self, report_id: str) -> list[dict[str, Any]]:
        """The report's bundle objects. Every export of a report gives the same objects, the
        same versions (``modified`` is the report's creation time): a version only changes
        when the report is withdrawn, and the index adds the revoked one then."""
        withheld: list[str] = []
        if self.inbox.seen(report_id):
            entry, report = self.inbox.show(report_id)
            if report is None:  # purged between the listing and now
                raise InputError(f"report {report_id} was purged: nothing left to export")
            created = EnvelopeHeader.model_validate(entry.header).created
            # Never opened, so not in the report; named again so nothing could come from them.
            withheld = entry.withheld
        else:
            report = self.inbox.sent_report(report_id)
            created = self.inbox.sent_header(report_id).created
        try:
            bundle = export_bundle(
                report, report_id=report_id, created=created, modified=created, withhold=withheld
            )
        except (ValueError, STIXError) as exc:  # a report the mapping cannot carry
            raise InputError(f"report {report_id} cannot be exported as STIX 2.1: {exc}") from exc
        objects: list[dict[str, Any]] = json.loads(bundle.serialize())["objects"]
        return objects

    def exported(self, client: str, report_ids: list[str], now: datetime) -> None:
        """One line per report in the node's export log (``exports.jsonl``, hash-chained, the
        log ``palermo stix export`` writes), ``officer`` being ``taxii:CLIENT``."""
        for report_id in report_ids:
            withheld: list[str] = []
            if self.inbox.seen(report_id):
                entry, _ = self.inbox.show(report_id)
                header = EnvelopeHeader.model_validate(entry.header)
                withheld, revoked = entry.withheld, entry.purged_ms is not None
            else:
                header = self.inbox.sent_header(report_id)
                revoked = self.inbox.retracted(report_id)
            record_export(
                self.export_log,
                officer=f"taxii:{client}",
                report_id=report_id,
                originator=header.originator,
                fmt="taxii",
                handling=header.handling,
                withheld=withheld,
                retracted=revoked,
                destination=f"TAXII client {client}",
                now=now,
                agency=self.agency,
            )


def is_shared(obj: dict[str, Any], report_id: str) -> bool:
    """Whether an object outlives the report it came with: a marking or extension definition,
    or an identity that is not the report's own (an agency's, Palermo's). Anything else, even a
    type this does not know, is the report's: hidden and revoked with it, never left behind."""
    if obj["type"] in ("marking-definition", "extension-definition"):
        return True
    ours = obj.get("extensions", {}).get(PALERMO_EXTENSION_ID, {})
    return bool(obj["type"] == "identity" and ours.get("report_id") != report_id)


async def synchronise(
    index: TaxiiIndex,
    source: ObjectSource,
    alias: str,
    now: datetime,
    budget: int = MAX_INDEXED_PER_REQUEST,
) -> None:
    """Bring the index of one collection up to date with what the source holds now.

    Called before each answer: every report withdrawn since the last request is revoked, and
    up to ``budget`` reports stored since are indexed (their objects get their ``date_added``
    now), oldest first, yielding to the event loop after each: the node consumes its deliveries
    on the same loop, and a first poll of a large inbox must not stall it. What is left is
    indexed by the next requests, after what is already served, like any new arrival. A report
    the exporter refuses is logged and remembered, never half indexed.
    """
    known = index.holdings(alias)
    for holding in source.holdings(alias, now):
        state = known.get(holding.report_id)
        if state == LIVE and not holding.live:
            index.withdraw(alias, holding.report_id, now)
        elif state is None and holding.live and budget > 0:
            budget -= 1
            try:
                objects = source.objects(holding.report_id)
            except PalermoError as exc:
                _log.warning("report not exported to TAXII", report=holding.report_id,
                             collection=alias, code=exc.code, reason=exc.reason)  # fmt: skip
                index.unexportable(alias, holding.report_id)
                continue
            shared = {o["id"] for o in objects if is_shared(o, holding.report_id)}
            index.add(alias, holding.report_id, objects, now, shared)
            await asyncio.sleep(0)


def subscribed_routes(trust: TrustStore, agency: str) -> set[str]:
    """The routes ``agency`` subscribes to in the directory now (every route for ``*``)."""
    subs = trust.subscriptions.get(agency)
    routes = {str(f.route) for f in subs.filters} if subs is not None else set()
    return {r.value for r in Route} if "*" in routes else routes
