"""The node's read-only TAXII 2.1 server: what this agency's node holds, for its own tools.

Discovery (``/taxii2/``), one API root (``/palermo/``), its collections (one per route the node
receives, plus ``own``), and per collection: objects (``added_after``, ``limit``, ``next``,
``match[id|type|version]``), one object, its versions, and the manifest. Everything answers
``application/taxii+json;version=2.1``, errors included (TAXII 2.1 §3.6), and a request whose
``Accept`` allows no TAXII 2.1 answer gets 406.

Every request carries a client's bearer token (:mod:`node.interop.taxii_clients`); a client
sees only the collections it was granted (the others are not listed, and are 404 exactly like a
collection the node does not have, so a client cannot learn which routes the node receives: TAXII
2.1 §5.2 allows 404 for "the client does not have access"). The server
listens on its own socket (``taxii_host``/``taxii_port``), never beside ``/metrics``
(unauthenticated) or ingest (which signs in the agency's name): decision 0030.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from schemas.errors import ConfigError, InputError, PalermoError

from ..config import DEFAULT_TAXII_PAGE_SIZE, NodeSettings
from ..inbox import Inbox
from .exportlog import EXPORT_LOG
from .taxii_clients import TaxiiClient, TaxiiClients
from .taxii_index import IndexedObject, Page, TaxiiIndex, from_stix_time
from .taxii_source import CollectionInfo, InboxSource, ObjectSource, synchronise

__all__ = [
    "API_ROOT",
    "STIX_MEDIA_TYPE",
    "TAXII_MEDIA_TYPE",
    "TaxiiServer",
    "taxii_server",
]

TAXII_MEDIA_TYPE: Final[str] = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE: Final[str] = "application/stix+json;version=2.1"
API_ROOT: Final[str] = "palermo"
_CURSOR_PREFIX: Final[str] = "plm2."
"""plm2: the cursor is the last ``date_added`` served (plm1 was the row number, shared by all
collections: its gaps told a client how many objects other collections had gained)."""
_REFUSAL: Final[str] = (
    "send a TAXII client token as 'Authorization: Bearer <token>' (palermo taxii token add)"
)
_NOT_GRANTED: Final[str] = (
    "this client may read no collection {!r} on this server; see 'palermo taxii token list' "
    "and 'palermo taxii token add --collections'"
)

_log = structlog.get_logger("palermo.node.taxii")
_CLIENT: Final = web.RequestKey("client", TaxiiClient)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TaxiiError(Exception):
    """A TAXII error message (§3.6.1) with its HTTP status."""

    def __init__(self, status: int, title: str, description: str) -> None:
        super().__init__(description)
        self.status, self.title, self.description = status, title, description

    def response(self) -> web.Response:
        body = {"title": self.title, "description": self.description,
                "http_status": str(self.status)}  # fmt: skip
        headers = {"WWW-Authenticate": 'Bearer realm="palermo-taxii"'} if self.status == 401 else {}
        return _taxii(body, status=self.status, headers=headers)


def _taxii(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers={"Content-Type": TAXII_MEDIA_TYPE, **(headers or {})},
    )


def accepts_taxii(accept: str | None) -> bool:
    """Whether an ``Accept`` header allows a TAXII 2.1 answer (none at all does: the default)."""
    if accept is None or not accept.strip():
        return True
    for media_range in accept.split(","):
        kind, *params = [p.strip().lower() for p in media_range.split(";")]
        values = dict(p.partition("=")[::2] for p in params)
        if values.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        if kind in ("*/*", "application/*"):
            return True
        if kind == "application/taxii+json" and values.get("version", "2.1") == "2.1":
            return True
    return False


def encode_cursor(added_us: int) -> str:
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(str(added_us).encode()).decode().rstrip("=")


def decode_cursor(value: str) -> int:
    """The ``date_added`` (microseconds) after which a ``next`` continues: nothing the envelope
    did not already show (X-TAXII-Date-Added-Last); a 400 for anything this server did not
    write."""
    try:
        if not value.startswith(_CURSOR_PREFIX) or len(value) > 40:
            raise ValueError("not ours")
        raw = value[len(_CURSOR_PREFIX) :]
        seq = int(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
        if seq < 0:
            raise ValueError("negative")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TaxiiError(
            400, "Invalid next", "next must be a value this server returned in an envelope"
        ) from exc
    return seq


class TaxiiServer:
    """The TAXII 2.1 API over an :class:`ObjectSource`, on its own listener."""

    def __init__(
        self,
        source: ObjectSource,
        index: TaxiiIndex,
        clients: TaxiiClients,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        page_size: int = DEFAULT_TAXII_PAGE_SIZE,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source, self.index, self.clients = source, index, clients
        self.host, self.port, self.tls = host, port, tls
        self.page_size = page_size
        self.clock = clock
        self._runner: web.AppRunner | None = None
        self._indexing = asyncio.Lock()

    # --- the application --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        root = f"/{API_ROOT}/"
        collection = root + "collections/{collection}/"
        app.router.add_get("/taxii2/", self._discovery)
        app.router.add_get(root, self._api_root)
        app.router.add_get(root + "collections/", self._collections)
        app.router.add_get(collection, self._collection)
        app.router.add_get(collection + "objects/", self._objects)
        app.router.add_get(collection + "objects/{object_id}/", self._object)
        app.router.add_get(collection + "objects/{object_id}/versions/", self._versions)
        app.router.add_get(collection + "manifest/", self._manifest)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate, negotiate, and turn every failure into a TAXII error message."""
        try:
            client = self.clients.authenticate(request.headers.get("Authorization"))
            if client is None:
                _log.warning("taxii refused", peer=request.remote, path=request.path,
                             why="no valid token")  # fmt: skip
                raise TaxiiError(401, "Unauthorized", _REFUSAL)
            if not accepts_taxii(request.headers.get("Accept")):
                raise TaxiiError(
                    406, "Not Acceptable", f"this server answers {TAXII_MEDIA_TYPE} only"
                )
            request[_CLIENT] = client
            response = await handler(request)
        except TaxiiError as exc:
            return exc.response()
        except web.HTTPException as exc:  # no such route (404), a write to a read-only one (405)
            description = (
                "this TAXII server is read-only: GET only"
                if exc.status == 405
                else f"no TAXII resource at {request.path[:200]}"
            )
            return TaxiiError(exc.status, exc.reason, description).response()
        except InputError as exc:
            return TaxiiError(400, "Bad Request", exc.reason).response()
        except Exception as exc:  # a client gets a TAXII error, whatever went wrong here
            _log.error("taxii request failed", path=request.path, error=repr(exc))
            failed = TaxiiError(500, "Internal Error", "the node could not answer; see its log")
            return failed.response()
        _log.info("taxii request", client=client.name, path=request.path, status=response.status)
        return response

    # --- discovery, API root, collections ---------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.Response:
        return _taxii({
            "title": "Palermo node TAXII server",
            "description": "Read-only: the reports this agency's node holds and may show.",
            "default": f"{request.url.origin()}/{API_ROOT}/",
            "api_roots": [f"{request.url.origin()}/{API_ROOT}/"],
        })  # fmt: skip

    async def _api_root(self, request: web.Request) -> web.Response:
        return _taxii({
            "title": "Palermo",
            "description": "One collection per route this node receives, and 'own'.",
            "versions": [TAXII_MEDIA_TYPE],
            "max_content_length": 0,  # read-only: no request body is ever accepted
        })  # fmt: skip

    def _readable(self, client: TaxiiClient) -> list[CollectionInfo]:
        return [c for c in self.source.collections() if client.may_read(c.alias)]

    @staticmethod
    def _describe(info: CollectionInfo) -> dict[str, Any]:
        return {"id": info.id, "title": info.title, "description": info.description,
                "alias": info.alias, "can_read": True, "can_write": False,
                "media_types": [STIX_MEDIA_TYPE]}  # fmt: skip

    async def _collections(self, request: web.Request) -> web.Response:
        readable = self._readable(request[_CLIENT])
        return _taxii({"collections": [self._describe(c) for c in readable]})

    async def _granted(self, request: web.Request) -> CollectionInfo:
        """The collection in the path if it exists and this client may read it; else 404, the
        same answer either way (a 403 would tell which routes this node receives)."""
        wanted = request.match_info["collection"]
        for info in self.source.collections():
            if wanted in (info.id, info.alias) and request[_CLIENT].may_read(info.alias):
                # One at a time: two polls must not index the same new report twice.
                async with self._indexing:
                    await synchronise(self.index, self.source, info.alias, self.clock())
                return info
        raise TaxiiError(404, "Not Found", _NOT_GRANTED.format(wanted[:80]))

    async def _collection(self, request: web.Request) -> web.Response:
        info = await self._granted(request)
        return _taxii(self._describe(info))

    # --- objects ----------------------------------------------------------------------------

    def _page(self, request: web.Request, info: CollectionInfo, **fixed: Any) -> Page:
        query = request.query
        limit = self.page_size
        if "limit" in query:
            try:
                limit = int(query["limit"])
            except ValueError:
                limit = 0
            if limit < 1:
                raise TaxiiError(400, "Invalid limit", "limit must be a positive integer")
            limit = min(limit, self.page_size)
        added_after = query.get("added_after")
        after = [] if added_after is None else [from_stix_time(added_after, "added_after")]
        after += [decode_cursor(query["next"])] if "next" in query else []
        return self.index.page(
            info.alias,
            limit=limit,
            added_after_us=max(after) if after else None,
            ids=fixed.get("ids", _split(query.get("match[id]"))),
            types=_split(query.get("match[type]")),
            versions=fixed.get("versions", _split(query.get("match[version]")) or ["last"]),
        )  # fmt: skip

    def _contents(self, rows: list[IndexedObject]) -> list[dict[str, Any]]:
        """The objects of a page: exported again from the inbox (never stored in clear), or,
        for a revoked version, only what identifies it (the content is withdrawn). An object
        of a report withdrawn since the index was brought up to date is left out: the next
        request revokes it."""
        exported: dict[str, dict[str, dict[str, Any]]] = {}
        out = []
        for row in rows:
            if row.revoked:
                out.append(_tombstone(row))
                continue
            if row.body is not None:  # a shared definition, kept as is
                out.append(json.loads(row.body))
                continue
            if row.report_id not in exported:
                exported[row.report_id] = self._export(row.report_id)
            if (obj := exported[row.report_id].get(row.stix_id)) is not None:
                out.append(obj)
        return out

    def _export(self, report_id: str) -> dict[str, dict[str, Any]]:
        """A report's objects by id; none if it was withdrawn since the index was brought up
        to date (the next request revokes it)."""
        try:
            return {o["id"]: o for o in self.source.objects(report_id)}
        except PalermoError:
            return {}

    @staticmethod
    def _headers(page: Page) -> dict[str, str]:
        if not page.rows:
            return {}
        return {"X-TAXII-Date-Added-First": page.rows[0].date_added,
                "X-TAXII-Date-Added-Last": page.rows[-1].date_added}  # fmt: skip

    def _envelope(self, request: web.Request, info: CollectionInfo, page: Page) -> web.Response:
        body: dict[str, Any] = {"more": page.more}
        if page.more and page.last_added_us is not None:
            body["next"] = encode_cursor(page.last_added_us)
        objects = self._contents(page.rows)
        if objects:
            body["objects"] = objects
        client, now = request[_CLIENT].name, self.clock()
        # A shared definition (a TLP marking) says nothing of the report that brought it first.
        reports = {r.report_id for r in page.rows if not r.shared}
        fresh = self.index.record_served(client, reports, now)
        if fresh:
            self.source.exported(client, fresh, now)
        return _taxii(body, headers=self._headers(page))

    async def _objects(self, request: web.Request) -> web.Response:
        info = await self._granted(request)
        return self._envelope(request, info, self._page(request, info))

    def _known(self, request: web.Request, info: CollectionInfo) -> str:
        object_id = request.match_info["object_id"]
        if not self.index.knows(info.alias, object_id):
            raise TaxiiError(404, "Not Found", f"no object {object_id[:80]!r} in this collection")
        return object_id

    async def _object(self, request: web.Request) -> web.Response:
        info = await self._granted(request)
        page = self._page(request, info, ids=[self._known(request, info)])
        return self._envelope(request, info, page)

    async def _versions(self, request: web.Request) -> web.Response:
        info = await self._granted(request)
        page = self._page(request, info, ids=[self._known(request, info)], versions=["all"])
        body: dict[str, Any] = {"more": page.more, "versions": [r.version for r in page.rows]}
        if page.more and page.last_added_us is not None:
            body["next"] = encode_cursor(page.last_added_us)
        return _taxii(body, headers=self._headers(page))

    async def _manifest(self, request: web.Request) -> web.Response:
        info = await self._granted(request)
        page = self._page(request, info)
        body: dict[str, Any] = {"more": page.more}
        if page.more and page.last_added_us is not None:
            body["next"] = encode_cursor(page.last_added_us)
        if page.rows:
            body["objects"] = [{"id": r.stix_id, "date_added": r.date_added,
                                "version": r.version, "media_type": STIX_MEDIA_TYPE}
                               for r in page.rows]  # fmt: skip
        return _taxii(body, headers=self._headers(page))

    # --- the listener -----------------------------------------------------------------------

    async def start(self) -> str:
        """Listen; returns the discovery URL (``http(s)://host:port/taxii2/``)."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/taxii2/"

    async def stop(self) -> None:
        """Stop listening and close the index (the server owns it)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.index.close()


def _tombstone(row: IndexedObject) -> dict[str, Any]:
    """A revoked version: what identifies the object, nothing of its withdrawn content."""
    return {"type": row.stix_type, "spec_version": "2.1", "id": row.stix_id,
            "created": row.created, "modified": row.version, "revoked": True}  # fmt: skip


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def taxii_server(
    settings: NodeSettings, inbox: Inbox, agency: str, routes: Callable[[], set[str]]
) -> TaxiiServer:
    """The TAXII server a node.toml describes, over the node's inbox (``taxii_port`` set)."""
    settings.check_taxii()
    tls = None
    if settings.taxii_tls_cert is not None and settings.taxii_tls_key is not None:
        tls = _tls_context(settings.taxii_tls_cert, settings.taxii_tls_key)
    state = settings.state_dir
    return TaxiiServer(
        InboxSource(inbox, agency, routes, state / EXPORT_LOG),
        TaxiiIndex(state / "taxii.db"),
        TaxiiClients(state),
        host=settings.taxii_host,
        port=settings.taxii_port or 0,
        tls=tls,
        page_size=settings.taxii_page_size,
    )


def _tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Server-side TLS (1.2 at least); clients prove themselves with their token."""
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TAXII TLS files (taxii_tls_cert {cert}, taxii_tls_key {key}): {exc}"
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
