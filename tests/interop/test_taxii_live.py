"""``taxii2-client`` against the TAXII servers of live nodes (issue 18, "Done when"): reports
delivered through the federation (nats-server, broker, nodes) are listed and paged; a client
sees only its collections and never a withheld section; ``added_after`` + ``next`` while new
reports arrive returns each object once; a retraction is served as revoked versions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from taxii2client.v21 import Collection, Server, as_pages

from node.interop.exportlog import EXPORT_LOG, entries, verify
from node.interop.taxii import TaxiiServer
from node.interop.taxii_clients import TaxiiClients
from node.interop.taxii_index import TaxiiIndex
from node.interop.taxii_source import InboxSource, subscribed_routes
from node.service import Node
from palermo.devfed import DevFederation
from tests.harness import example, running_federation, wait_for

WITHIN = 60  # seconds: the machine is shared and loaded


class Bearer(requests.auth.AuthBase):
    """A TAXII client token on every request (taxii2-client takes any requests auth)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _serve(node: Node, home: Path) -> TaxiiServer:
    """The TAXII server ``palermo node run`` starts for this node (taxii_port set)."""
    agency = node.identity.agency
    state = home / f"{agency}-taxii"
    routes = lambda: subscribed_routes(node.trust, agency)  # noqa: E731
    source = InboxSource(node.inbox, agency, routes, state / EXPORT_LOG)
    return TaxiiServer(source, TaxiiIndex(state / "taxii.db"), TaxiiClients(state), page_size=50)


@pytest.fixture
async def stack(
    federated_url: str, fed: DevFederation, tmp_path: Path
) -> AsyncIterator[tuple[dict[str, Node], dict[str, TaxiiServer], dict[str, str]]]:
    """ITA-GDF publishing, MLT-AFM receiving, each node with its TAXII server running."""
    async with running_federation(federated_url, fed, ["ITA-GDF", "MLT-AFM"], tmp_path) as nodes:
        servers = {a: _serve(n, tmp_path) for a, n in nodes.items()}
        urls = {a: await s.start() for a, s in servers.items()}
        try:
            yield nodes, servers, urls
        finally:
            for server in servers.values():
                await server.stop()


async def _publish(nodes: dict[str, Node], *names: str) -> list[str]:
    """ITA-GDF publishes the examples; returns their ids once MLT-AFM's node stored them all."""
    ids = [(await nodes["ITA-GDF"].publish(example(n))).header.id for n in names]
    mlt = nodes["MLT-AFM"]

    async def stored() -> bool:
        return all(mlt.inbox.seen(i) for i in ids)

    await wait_for(stored, within=WITHIN)
    return ids


def _aliases(url: str, token: str) -> list[str]:
    [root] = Server(url, auth=Bearer(token)).api_roots
    return [str(c.alias) for c in root.collections]


def _collection(url: str, token: str, alias: str) -> Collection:
    """Blocking (HTTP): call it in a thread, the servers run on the test's loop."""
    [root] = Server(url, auth=Bearer(token)).api_roots
    return next(c for c in root.collections if c.alias == alias)


def _pages(collection: Collection, per_request: int, **filters: Any) -> Iterator[dict[str, Any]]:
    return as_pages(collection.get_objects, per_request=per_request, **filters)


async def _next(pages: Iterator[dict[str, Any]]) -> dict[str, Any] | None:
    """The next envelope, fetched in a thread (taxii2-client blocks; the nodes run here)."""
    return await asyncio.to_thread(next, pages, None)


async def _drain(pages: Iterator[dict[str, Any]], seen: list[dict[str, Any]]) -> None:
    while (envelope := await _next(pages)) is not None:
        seen += envelope.get("objects", [])


def _ids(objects: list[dict[str, Any]]) -> list[str]:
    return [o["id"] for o in objects]


def _refs(objects: list[dict[str, Any]]) -> set[str]:
    """The persons' refs in the objects (carried by the Palermo extension's item)."""
    text = json.dumps(objects)
    return {ref for ref in ("w1", "m2") if f'"ref": "{ref}"' in text}


async def test_taxii2_client_pages_what_the_node_holds_and_only_that(
    stack: tuple[dict[str, Node], dict[str, TaxiiServer], dict[str, str]],
) -> None:
    """Collections per grant (404 otherwise), paging with next while reports arrive, then
    added_after + next while more arrive, each object once; the protected persons withheld
    from MLT-AFM are in ITA-GDF's own collection only; a retraction is revoked versions."""
    nodes, servers, urls = stack
    mlt, ita = servers["MLT-AFM"].clients, servers["ITA-GDF"].clients
    analyst = mlt.add("analyst", ["central-med"])
    elsewhere = mlt.add("elsewhere", ["western-balkans", "own"])
    mine = ita.add("mine", ["own"])
    first = await _publish(nodes, "12", "19")  # 19: protected persons withheld from MLT-AFM

    # Each client lists only what it was granted; another's collection is 404 (as a missing one).
    assert ["central-med"] == await asyncio.to_thread(_aliases, urls["MLT-AFM"], analyst)
    assert "central-med" not in await asyncio.to_thread(_aliases, urls["MLT-AFM"], elsewhere)
    central = await asyncio.to_thread(_collection, urls["MLT-AFM"], analyst, "central-med")
    denied = Collection(central.url, auth=Bearer(elsewhere))
    with pytest.raises(requests.HTTPError) as refused:
        await asyncio.to_thread(denied.get_objects)
    assert 404 == refused.value.response.status_code

    # Paging with next while a report arrives between two pages: each object once.
    pages = _pages(central, per_request=7)
    envelope = await _next(pages)
    assert envelope is not None
    seen = list(envelope["objects"])
    arrived = await _publish(nodes, "01")
    await _drain(pages, seen)
    assert len(_ids(seen)) == len(set(_ids(seen)))
    source = servers["MLT-AFM"].source
    expected = {o["id"] for r in first + arrived for o in source.objects(r)}
    assert expected == set(_ids(seen))

    # added_after the last date_added seen, then next, while two more reports arrive.
    last = await _last_added(central)
    later = await _publish(nodes, "07")
    pages = _pages(central, per_request=5, added_after=last)
    envelope = await _next(pages)
    assert envelope is not None
    polled = list(envelope["objects"])
    later += await _publish(nodes, "12")
    await _drain(pages, polled)
    assert len(_ids(polled)) == len(set(_ids(polled)))
    new = {o["id"] for r in later for o in source.objects(r)} - set(_ids(seen))
    assert new == set(_ids(polled))

    # Never a withheld section: the witness (w1, protected) is in ITA-GDF's own collection,
    # not in what MLT-AFM's node serves of the same report.
    witness_report = first[1]
    served = [o for o in seen if witness_report in json.dumps(o)]
    assert served
    assert {"m2"} == _refs(served)
    own = await asyncio.to_thread(_collection, urls["ITA-GDF"], mine, "own")
    published = await asyncio.to_thread(own.get_objects)
    of_witness_report = [o for o in published["objects"] if witness_report in json.dumps(o)]
    assert {"w1", "m2"} == _refs(of_witness_report)

    # A retraction: MLT-AFM's node purges, its TAXII server serves the revoked versions.
    last = await _last_added(central)
    await nodes["ITA-GDF"].retract(first[0], "wrong vessel")

    async def purged() -> bool:
        entry, _ = nodes["MLT-AFM"].inbox.show(first[0])
        return entry.purged_ms is not None

    await wait_for(purged, within=WITHIN)
    after: list[dict[str, Any]] = []
    await _drain(_pages(central, per_request=50, added_after=last), after)
    [report] = [o for o in seen if o["type"] == "report" and first[0] in json.dumps(o)]
    assert [True] == [o.get("revoked") for o in after if o["id"] == report["id"]]
    assert all(o.get("revoked") for o in after)  # nothing of the withdrawn content

    # Export is dissemination: each report a client received, once, in the node's export log.
    log = servers["MLT-AFM"].source.export_log  # type: ignore[attr-defined]
    verify(log)
    lines = [(e["officer"], e["report"], e["format"]) for e in entries(log)]
    assert sorted(set(first + arrived + later)) == sorted(r for _, r, _ in lines)
    assert {("taxii:analyst", "taxii")} == {(o, f) for o, _, f in lines}
    [witness_line] = [e for e in entries(log) if e["report"] == witness_report]
    assert ["protected-persons"] == witness_line["withheld"]


async def _last_added(collection: Collection) -> str:
    """The date_added of the newest object in the collection (its manifest, paged)."""
    rows: list[dict[str, Any]] = []
    pages = as_pages(collection.get_manifest, per_request=50)
    while (envelope := await _next(pages)) is not None:
        rows += envelope.get("objects", [])
    return str(rows[-1]["date_added"])
