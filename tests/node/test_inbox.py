"""The encrypted SQLite inbox: store, list, show, purge, and nothing readable at rest."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from node.inbox import Inbox, InboxError, StorageKey
from node.reports import open_report, seal_report
from palermo.devfed import DevFederation
from protocol.envelope import open_envelope
from schemas import EnvelopeHeader, Report
from schemas.errors import InputError, KeyFileError
from schemas.export import parse_report

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
NOW = datetime.now(UTC)


def _delivered(name: str, to: str, **handling: object) -> tuple[EnvelopeHeader, Report, list[str]]:
    """Seal an example for ``to`` and open it as ``to`` would."""
    fed = DevFederation.build(NOW)
    data = parse_report((EXAMPLES / name).read_text()).to_wire()
    data["handling"] = {**data["handling"], **handling}
    report = Report.from_wire(data)
    sealed = seal_report(
        report, fed.agencies[report.originator].signing, [to], fed.trust_store(),
        fed.policy_store(), NOW,
    )  # fmt: skip
    opened = open_envelope(sealed.data, [fed.agencies[to].encryption], fed.trust_store(), now=NOW)
    return opened.header, open_report(opened), list(opened.withheld)


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    box = Inbox(tmp_path / "inbox.db", StorageKey.load_or_create(tmp_path / "storage.key"))
    yield box  # type: ignore[misc]
    box.close()


def test_store_list_show_round_trip(inbox: Inbox) -> None:
    """A stored report is listed with its codes and shown exactly as it was opened."""
    header, report, withheld = _delivered("02-groups-network-western-balkans.json", "ESP-GC")
    inbox.store(header, report, [{"code": "no-judicial-disclosure"}], withheld, NOW)
    [entry] = inbox.entries()
    assert ["TLP:AMBER", "H0", "H1", "H2", "A1"] == entry.codes
    shown, back = inbox.show(entry.id)
    assert report == back
    assert [{"code": "no-judicial-disclosure"}] == shown.obligations


def test_nothing_readable_at_rest(inbox: Inbox, tmp_path: Path) -> None:
    """The database file never holds the report's names or narrative in clear."""
    header, report, withheld = _delivered("02-groups-network-western-balkans.json", "ESP-GC")
    inbox.store(header, report, [], withheld, NOW)
    inbox.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("inbox.db*"))
    assert b"Ardit Example" not in raw
    assert b"package journeys" not in raw
    assert 0o600 == stat.S_IMODE((tmp_path / "storage.key").stat().st_mode)


def test_duplicate_is_refused_and_nothing_half_written(inbox: Inbox) -> None:
    """Storing the same id twice is refused; the first copy stays intact."""
    header, report, withheld = _delivered("04-concealment-lorry-compartment.json", "ESP-GC")
    inbox.store(header, report, [], withheld, NOW)
    with pytest.raises(InputError, match="already"):
        inbox.store(header, report, [], withheld, NOW)
    assert 1 == len(inbox.entries())
    assert inbox.seen(header.id)


def test_expiry_purges_the_content_and_keeps_a_tombstone(inbox: Inbox) -> None:
    """Past its expiry a report loses its content; the entry says when and why."""
    header, report, withheld = _delivered(
        "04-concealment-lorry-compartment.json",
        "ESP-GC",
        expires=(NOW + timedelta(hours=1)).isoformat(),
    )
    inbox.store(header, report, [], withheld, NOW)
    assert [] == inbox.purge_expired(NOW)
    assert [header.id] == inbox.purge_expired(NOW + timedelta(hours=2))
    entry, content = inbox.show(header.id)
    assert (None, "expired") == (content, entry.purge_reason)


def test_retraction_purge(inbox: Inbox) -> None:
    """A purge by id (a retraction) removes the content once."""
    header, report, withheld = _delivered("04-concealment-lorry-compartment.json", "ESP-GC")
    inbox.store(header, report, [], withheld, NOW)
    assert inbox.purge(header.id, "retracted by originator", NOW)
    assert not inbox.purge(header.id, "again", NOW)


def test_wrong_key_or_tampered_row_is_an_error(tmp_path: Path) -> None:
    """Another storage key, or a modified ciphertext, cannot be read back."""
    box = Inbox(tmp_path / "i.db", StorageKey.load_or_create(tmp_path / "k1"))
    header, report, withheld = _delivered("04-concealment-lorry-compartment.json", "ESP-GC")
    box.store(header, report, [], withheld, NOW)
    box.close()
    other = Inbox(tmp_path / "i.db", StorageKey.load_or_create(tmp_path / "k2"))
    with pytest.raises(InboxError, match="does not decrypt"):
        other.show(header.id)
    other.close()
    db = sqlite3.connect(tmp_path / "i.db")
    (body,) = db.execute("SELECT body FROM reports").fetchone()
    db.execute("UPDATE reports SET body = ?", (body[:20] + bytes([body[20] ^ 1]) + body[21:],))
    db.commit()
    db.close()
    box = Inbox(tmp_path / "i.db", StorageKey.load_or_create(tmp_path / "k1"))
    with pytest.raises(InboxError):
        box.show(header.id)
    box.close()


def test_storage_key_permissions_and_length(tmp_path: Path) -> None:
    """A key file readable by others, or of the wrong length, is refused."""
    path = tmp_path / "k"
    StorageKey.load_or_create(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        StorageKey.load_or_create(path)
    with pytest.raises(KeyFileError, match="32 bytes"):
        StorageKey(b"short")
    assert "hidden" in repr(StorageKey(bytes(32)))


def test_list_filters_and_missing_report(inbox: Inbox) -> None:
    """Entries filter by route and time; an unknown id says where to look."""
    header, report, withheld = _delivered("04-concealment-lorry-compartment.json", "ESP-GC")
    inbox.store(header, report, [], withheld, NOW)
    assert 1 == len(inbox.entries(route="western-balkans", since=NOW - timedelta(minutes=1)))
    assert [] == inbox.entries(route="central-med")
    assert [] == inbox.entries(since=NOW + timedelta(minutes=1))
    with pytest.raises(InputError, match="palermo inbox list"):
        inbox.show("nope")


def test_inbox_show_of_a_purged_report_prints_the_purge_reason(tmp_path: Path) -> None:
    """Issue 15 item 10: the text view of a tombstone says when and why it was purged (it
    printed 'null')."""
    from typer.testing import CliRunner

    from node.config import NodeSettings
    from palermo.cli import app

    fed = DevFederation.build(NOW)
    fed.write(tmp_path / "fed")
    config = fed.node_config(tmp_path / "fed", "ESP-GC", "nats://127.0.0.1:1")
    state = NodeSettings.load(config).state_dir
    state.mkdir(parents=True, mode=0o700)
    box = Inbox(state / "inbox.db", StorageKey.load_or_create(state / "storage.key"))
    header, report, withheld = _delivered("04-concealment-lorry-compartment.json", "ESP-GC")
    box.store(header, report, [], withheld, NOW)
    box.purge(header.id, "retracted: wrong vessel identified", NOW)
    box.close()
    done = CliRunner().invoke(app, ["inbox", "show", header.id, "--config", str(config)])
    assert 0 == done.exit_code, done.output
    text = " ".join(done.output.split())
    assert f"purged at {NOW.isoformat(timespec='seconds')}" in text
    assert "retracted: wrong vessel identified" in text
    assert "null" not in text
