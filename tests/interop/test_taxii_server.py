"""The TAXII 2.1 server over a source of example reports: paging, authentication, content
negotiation, withdrawal (issue 18 item 3). The live federation is ``test_taxii_live.py``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.interop import agency_identity_id, export_bundle
from node.interop.taxii import TAXII_MEDIA_TYPE, TaxiiServer, decode_cursor, encode_cursor
from node.interop.taxii_clients import TaxiiClients
from node.interop.taxii_index import TaxiiIndex, from_stix_time
from node.interop.taxii_source import CollectionInfo, Holding, is_shared, synchronise
from schemas import Report, new_uuid7
from schemas.errors import InputError
from tests.harness import example

AGENCY = "MLT-AFM"
CREATED = datetime(2026, 11, 30, 9, tzinfo=UTC)
ROOT = "/palermo/collections/"


class Shelf:
    """An ``ObjectSource`` of example reports, each exported as the node exports it."""

    def __init__(self) -> None:
        self.held: dict[str, tuple[str, Report, bool]] = {}
        self.log: list[tuple[str, str]] = []

    def put(self, alias: str, name: str) -> str:
        report_id = new_uuid7()
        self.held[report_id] = (alias, example(name), True)
        return report_id

    def withdraw(self, report_id: str) -> None:
        alias, report, _ = self.held[report_id]
        self.held[report_id] = (alias, report, False)

    def collections(self) -> list[CollectionInfo]:
        return [CollectionInfo.of(AGENCY, a) for a in ("own", "central-med", "eastern-med")]

    def holdings(self, alias: str, now: datetime) -> list[Holding]:
        return [Holding(i, live) for i, (a, _, live) in self.held.items() if a == alias]

    def objects(self, report_id: str) -> list[dict[str, Any]]:
        _, report, live = self.held[report_id]
        if not live:
            raise InputError(f"report {report_id} was withdrawn")
        bundle = export_bundle(report, report_id=report_id, created=CREATED, modified=CREATED)
        objects: list[dict[str, Any]] = json.loads(bundle.serialize())["objects"]
        return objects

    def exported(self, client: str, report_ids: list[str], now: datetime) -> None:
        self.log += [(client, r) for r in report_ids]


class Clock:
    """The server's clock, moved by the test (never a sleep)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Taxii:
    server: TaxiiServer
    shelf: Shelf
    clock: Clock
    clients: TaxiiClients
    session: aiohttp.ClientSession
    base: str
    tokens: dict[str, str]

    async def get(
        self, path: str, who: str | None = "analyst", **headers: str
    ) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        if who is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens[who]}")
        async with self.session.get(self.base + path, headers=headers) as response:
            assert TAXII_MEDIA_TYPE == response.headers["Content-Type"]
            return response.status, await response.json(content_type=None), response.headers

    async def objects(self, alias: str, **query: str) -> tuple[int, dict[str, Any], Any]:
        url = f"{ROOT}{alias}/objects/?" + "&".join(f"{k}={v}" for k, v in query.items())
        return await self.get(url.replace("+", "%2B"))


@pytest.fixture
async def taxii(tmp_path: Path) -> AsyncIterator[Taxii]:
    shelf, clock, clients = Shelf(), Clock(), TaxiiClients(tmp_path)
    tokens = {
        "analyst": clients.add("analyst", ["central-med", "own"]),
        "all": clients.add("all", ["*"]),
        "eastern": clients.add("eastern", ["eastern-med"]),
    }
    server = TaxiiServer(
        shelf, TaxiiIndex(tmp_path / "taxii.db"), clients, page_size=5, clock=clock
    )
    base = (await server.start()).removesuffix("/taxii2/")
    async with aiohttp.ClientSession() as session:
        yield Taxii(server, shelf, clock, clients, session, base, tokens)
    await server.stop()


async def test_discovery_lists_the_api_root_and_a_client_only_its_collections(taxii: Taxii) -> None:
    """/taxii2/ names the root; the collections a client was not granted are not listed."""
    status, discovery, _ = await taxii.get("/taxii2/")
    assert (200, [f"{taxii.base}/palermo/"]) == (status, discovery["api_roots"])
    status, root, _ = await taxii.get("/palermo/")
    assert (200, [TAXII_MEDIA_TYPE]) == (status, root["versions"])
    _, listed, _ = await taxii.get(ROOT)
    assert ["own", "central-med"] == [c["alias"] for c in listed["collections"]]
    assert all(c["can_read"] and not c["can_write"] for c in listed["collections"])
    _, everything, _ = await taxii.get(ROOT, who="all")
    assert 3 == len(everything["collections"])


async def test_a_collection_answers_by_id_or_alias_and_refuses_other_clients(taxii: Taxii) -> None:
    """200 for a granted collection (id or alias); another's is 404 exactly like one the node
    does not have, by alias or id, so a client cannot learn which routes the node receives."""
    info = CollectionInfo.of(AGENCY, "central-med")
    status, by_id, _ = await taxii.get(f"{ROOT}{info.id}/")
    assert (200, "central-med") == (status, by_id["alias"])
    held, absent = (
        CollectionInfo.of(AGENCY, "eastern-med"),
        CollectionInfo.of(AGENCY, "western-med"),
    )
    answers = []
    for wanted in (held.alias, held.id, absent.alias, absent.id):
        for path in ("", "objects/", "manifest/"):
            status, error, _ = await taxii.get(f"{ROOT}{wanted}/{path}")
            answers.append((status, error["title"], error["description"].replace(wanted, "X")))
    assert {(404, "Not Found", answers[0][2])} == set(answers)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-the-right-length-0123456789abcdef", "Basic YWxpY2U6c2VjcmV0"],
)
async def test_without_a_valid_token_every_resource_is_401(
    taxii: Taxii, authorization: str | None
) -> None:
    """No token, a wrong one, another scheme: 401 with a TAXII error and a Bearer challenge."""
    headers = {"Authorization": authorization} if authorization else {}
    for path in ("/taxii2/", f"{ROOT}central-med/objects/", "/nowhere/"):
        status, error, response_headers = await taxii.get(path, who=None, **headers)
        assert (401, "401") == (status, error["http_status"])
        assert response_headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_works_from_its_addition_until_its_removal(taxii: Taxii) -> None:
    """The running server re-reads the clients file: no restart to add or revoke a client."""
    token = taxii.clients.add("late", ["own"])
    taxii.tokens["late"] = token
    assert 200 == (await taxii.get("/taxii2/", who="late"))[0]
    taxii.clients.remove("late")
    assert 401 == (await taxii.get("/taxii2/", who="late"))[0]
    assert ["all", "analyst", "eastern"] == [c.name for c in taxii.clients.list()]


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        (TAXII_MEDIA_TYPE, 200),
        ("application/taxii+json", 200),
        ("application/json, application/taxii+json;version=2.1;q=0.5", 200),
        ("*/*", 200),
        ("application/json", 406),
        ("application/taxii+json;version=2.0", 406),
        ("application/vnd.oasis.taxii+json; version=2.0", 406),
        ("application/taxii+json;version=2.1;q=0", 406),
    ],
)
async def test_accept_is_negotiated(taxii: Taxii, accept: str, status: int) -> None:
    """A TAXII 2.1 answer or 406; the answer is always application/taxii+json;version=2.1."""
    got, body, _ = await taxii.get("/palermo/", Accept=accept)
    assert status == got
    assert "title" in body
    assert got == 200 or "406" == body["http_status"]


async def test_writes_are_405_with_a_taxii_error(taxii: Taxii) -> None:
    """The server is read-only: a POST of objects is refused as TAXII says, not in HTML."""
    headers = {"Authorization": f"Bearer {taxii.tokens['analyst']}"}
    url = f"{taxii.base}{ROOT}central-med/objects/"
    async with taxii.session.post(url, headers=headers, data=b"{}") as response:
        assert (405, TAXII_MEDIA_TYPE) == (response.status, response.headers["Content-Type"])
        assert "read-only" in (await response.json(content_type=None))["description"]


async def _page_all(taxii: Taxii, alias: str, **query: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    status, envelope, _ = await taxii.objects(alias, **query)
    while True:
        assert 200 == status
        seen += envelope.get("objects", [])
        if not envelope["more"]:
            return seen
        status, envelope, _ = await taxii.objects(alias, **query, next=envelope["next"])


async def test_paging_returns_each_object_once_while_reports_arrive(taxii: Taxii) -> None:
    """Reports added between pages come after the cursor: nothing twice, nothing missed."""
    first = [taxii.shelf.put("central-med", n) for n in ("01", "12")]
    status, envelope, _ = await taxii.objects("central-med", limit="4")
    assert (200, True, 4) == (status, envelope["more"], len(envelope["objects"]))
    seen = list(envelope["objects"])
    later = [taxii.shelf.put("central-med", n) for n in ("09", "16")]
    taxii.clock.now -= timedelta(hours=1)  # the wall clock steps back: date_added still rises
    while envelope["more"]:
        status, envelope, _ = await taxii.objects("central-med", limit="4", next=envelope["next"])
        seen += envelope.get("objects", [])
    ids = [o["id"] for o in seen]
    assert len(ids) == len(set(ids))
    every = {o["id"] for r in first + later for o in taxii.shelf.objects(r)}
    assert every == set(ids)
    # Each report's own objects carry its id in the Palermo extension: all four are there.
    mentioned = {e["report_id"] for o in seen for e in o.get("extensions", {}).values()
                 if isinstance(e, dict) and "report_id" in e}  # fmt: skip
    assert set(first + later) == mentioned


async def test_added_after_the_last_date_added_returns_only_what_came_later(taxii: Taxii) -> None:
    """X-TAXII-Date-Added-Last of one poll is the added_after of the next: no gap, no repeat."""
    taxii.shelf.put("central-med", "01")
    seen = await _page_all(taxii, "central-med")
    manifests = await _manifest_all(taxii, "central-med")
    assert [o["id"] for o in seen] == [m["id"] for m in manifests]
    last = manifests[-1]["date_added"]
    dates = [from_stix_time(m["date_added"], "") for m in manifests]
    assert dates == sorted(set(dates))  # strictly increasing
    assert 0 == len(await _page_all(taxii, "central-med", added_after=last))
    newer = taxii.shelf.put("central-med", "12")
    after = await _page_all(taxii, "central-med", added_after=last)
    fresh = {o["id"] for o in taxii.shelf.objects(newer)} - {o["id"] for o in seen}
    assert fresh == {o["id"] for o in after}


async def _manifest_all(taxii: Taxii, alias: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    path = f"{ROOT}{alias}/manifest/"
    _, envelope, headers = await taxii.get(path)
    while True:
        rows += envelope.get("objects", [])
        if rows:
            assert rows[-1]["date_added"] == headers["X-TAXII-Date-Added-Last"]
        if not envelope["more"]:
            return rows
        _, envelope, headers = await taxii.get(f"{path}?next={envelope['next']}")


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"next": "not-a-cursor"}, "next"),
        ({"next": "plm2.LTE"}, "next"),  # a negative time
        ({"next": "plm1.NQ"}, "next"),  # the row number of the first format
        ({"added_after": "yesterday"}, "added_after"),
        ({"added_after": "2026-12-03T12:00:00"}, "time zone"),
        ({"match[version]": "soon"}, "match[version]"),
    ],
)
async def test_bad_paging_parameters_are_400(
    taxii: Taxii, query: dict[str, str], problem: str
) -> None:
    """A malformed limit, cursor or timestamp is a TAXII error saying which, never a 500."""
    status, error, _ = await taxii.objects("central-med", **query)
    assert (400, "400") == (status, error["http_status"])
    assert problem in error["description"] + error["title"]


async def test_a_limit_above_the_page_size_is_capped(taxii: Taxii) -> None:
    """limit=1000 against taxii_page_size 5: five objects, and more to come."""
    taxii.shelf.put("central-med", "12")
    _, envelope, _ = await taxii.objects("central-med", limit="1000")
    assert (5, True) == (len(envelope["objects"]), envelope["more"])
    assert 5 == decode_cursor(encode_cursor(5))


async def test_next_carries_only_the_last_date_added(taxii: Taxii) -> None:
    """The cursor is the last date_added the envelope showed, nothing more: a row number
    shared by every collection told a client how many objects the others had gained."""
    taxii.shelf.put("central-med", "12")
    taxii.shelf.put("eastern-med", "12")
    _, first, headers = await taxii.objects("central-med", limit="2")
    assert from_stix_time(headers["X-TAXII-Date-Added-Last"], "t") == decode_cursor(first["next"])
    taxii.clock.now += timedelta(seconds=1)
    await taxii.get(f"{ROOT}eastern-med/objects/", who="all")  # another collection grows
    taxii.clock.now += timedelta(seconds=1)
    _, second, headers = await taxii.objects("central-med", limit="2", next=first["next"])
    assert from_stix_time(headers["X-TAXII-Date-Added-Last"], "t") == decode_cursor(second["next"])
    assert not {o["id"] for o in first["objects"]} & {o["id"] for o in second["objects"]}


async def test_an_empty_collection_is_an_empty_envelope(taxii: Taxii) -> None:
    """No objects yet: more false, no objects, no next."""
    status, envelope, _ = await taxii.objects("own")
    assert (200, {"more": False}) == (status, envelope)


async def test_one_object_its_versions_and_filters(taxii: Taxii) -> None:
    """objects/{id}/, versions/, match[type] and match[id]; an unknown id is 404."""
    report_id = taxii.shelf.put("own", "12")
    objects = taxii.shelf.objects(report_id)
    report = next(o for o in objects if o["type"] == "report")
    status, envelope, _ = await taxii.get(f"{ROOT}own/objects/{report['id']}/")
    assert (200, [report]) == (status, envelope["objects"])
    _, versions, _ = await taxii.get(f"{ROOT}own/objects/{report['id']}/versions/")
    assert [report["modified"]] == versions["versions"]
    only = await _page_all(taxii, "own", **{"match[type]": "report"})
    assert [report] == only
    by_id = await _page_all(taxii, "own", **{"match[id]": report["id"]})
    assert [report] == by_id
    by_version = await _page_all(taxii, "own", **{"match[version]": report["modified"]})
    assert report in by_version
    status, error, _ = await taxii.get(f"{ROOT}own/objects/report--{new_uuid7()}/")
    assert (404, "Not Found") == (status, error["title"])


async def test_a_withdrawn_report_is_served_as_revoked_and_its_content_no_more(
    taxii: Taxii,
) -> None:
    """Expired, purged or retracted: a revoked version of each of its objects and no earlier
    version; the definitions it shares (its TLP, its originator's identity) stay."""
    kept = taxii.shelf.put("central-med", "12")  # ITA-GDF, AMBER
    gone = taxii.shelf.put("central-med", "16")  # MLT-AFM, RED
    gone_objects = taxii.shelf.objects(gone)
    shared = {o["id"] for o in gone_objects if is_shared(o, gone)}
    assert agency_identity_id("MLT-AFM") in shared
    before = await _page_all(taxii, "central-med")
    taxii.shelf.withdraw(gone)
    taxii.clock.now += timedelta(minutes=5)
    after = await _page_all(taxii, "central-med", **{"match[version]": "all"})
    kept_ids = {o["id"] for o in taxii.shelf.objects(kept)}
    revoked = [o for o in after if o.get("revoked")]
    assert {o["id"] for o in gone_objects} - shared - kept_ids == {o["id"] for o in revoked}
    tombstone_keys = {"type", "spec_version", "id", "created", "modified", "revoked"}
    assert all(tombstone_keys == set(o) for o in revoked)
    live = [o for o in after if not o.get("revoked")]
    assert kept_ids | shared == {o["id"] for o in live}  # nothing else of the withdrawn report
    for tombstone in revoked:
        earlier = next(o for o in before if o["id"] == tombstone["id"])
        assert tombstone["modified"] > earlier["modified"]
        _, versions, _ = await taxii.get(f"{ROOT}central-med/objects/{tombstone['id']}/versions/")
        assert [tombstone["modified"]] == versions["versions"]


async def test_the_index_records_what_each_client_received(taxii: Taxii) -> None:
    """Export is dissemination: the first time a client got each report, per client."""
    report_id = taxii.shelf.put("own", "12")
    await _page_all(taxii, "own")
    await _page_all(taxii, "own")
    assert [(report_id, int(taxii.clock.now.timestamp() * 1000))] == (
        taxii.server.index.served("analyst")
    )
    assert [] == taxii.server.index.served("all")
    assert [("analyst", report_id)] == taxii.shelf.log  # once, however often it is fetched


async def test_indexing_is_bounded_per_request_and_withdrawal_is_not(tmp_path: Path) -> None:
    """A first poll of a large inbox indexes a budget of reports, oldest first, the next polls
    the rest; a withdrawal is applied whatever the budget."""
    shelf, index = Shelf(), TaxiiIndex(tmp_path / "taxii.db")
    ids = [shelf.put("own", n) for n in ("01", "12", "16")]
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    await synchronise(index, shelf, "own", now, budget=2)
    assert {ids[0]: "live", ids[1]: "live"} == index.holdings("own")
    shelf.withdraw(ids[0])
    await synchronise(index, shelf, "own", now, budget=0)
    assert {ids[0]: "withdrawn", ids[1]: "live"} == index.holdings("own")
    await synchronise(index, shelf, "own", now)
    assert "live" == index.holdings("own")[ids[2]]
    index.close()
