"""``palermo stix`` and ``palermo misp``: from files and from the node's inbox and outbox, each
node export recorded per officer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from node.config import NodeSettings
from node.inbox import Inbox, StorageKey
from node.interop.exportlog import EXPORT_LOG, entries, verify
from node.reports import open_report, seal_report
from palermo.cli import app
from palermo.devfed import DevFederation
from protocol.envelope import open_envelope
from schemas import Report, parse_report
from schemas.errors import ConfigError, InputError
from tests.schemas._support import EXAMPLES_DIR

NOW = datetime.now(UTC)
EXAMPLE = EXAMPLES_DIR / "10-documents-impostor-air-route.json"


def _run(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, done.output


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, Report]:
    """A node (ESP-GC) holding one received report and one retracted report of its own."""
    tmp = tmp_path_factory.mktemp("node")
    fed = DevFederation.build(NOW)
    fed.write(tmp / "fed")
    config = fed.node_config(tmp / "fed", "ESP-GC", "nats://127.0.0.1:1")
    state = NodeSettings.load(config).state_dir
    state.mkdir(parents=True, mode=0o700)
    box = Inbox(state / "inbox.db", StorageKey.load_or_create(state / "storage.key"))
    report = parse_report((EXAMPLES_DIR / "02-groups-network-western-balkans.json").read_text())
    sealed = seal_report(
        report, fed.agencies[report.originator].signing, ["ESP-GC"], fed.trust_store(),
        fed.policy_store(), NOW,
    )  # fmt: skip
    opened = open_envelope(
        sealed.data, [fed.agencies["ESP-GC"].encryption], fed.trust_store(), now=NOW
    )
    received = open_report(opened)
    box.store(opened.header, received, [], list(opened.withheld), NOW)
    own = parse_report(
        json.loads((EXAMPLES_DIR / "03-documents-stolen-blanks.json").read_text())
        | {"originator": "ESP-GC"}
    )
    mine = seal_report(
        own, fed.agencies["ESP-GC"].signing, ["ITA-GDF"], fed.trust_store(), fed.policy_store(), NOW
    )
    box.record_sent(mine.header, own, NOW)
    box.mark_retracted(mine.header.id, NOW)
    box.close()
    return config, opened.header.id, mine.header.id, received


def test_file_export_and_import_round_trip(tmp_path: Path) -> None:
    """An IIR file exports to a bundle and imports back to the same report."""
    out = tmp_path / "r.stix.json"
    code, output = _run("stix", "export", str(EXAMPLE), "-o", str(out))
    assert 0 == code, output
    code, output = _run("stix", "import", str(out), "-o", str(tmp_path / "drafts"))
    assert 0 == code, output
    [draft] = (tmp_path / "drafts").glob("*.iir.json")
    assert parse_report(EXAMPLE.read_text()) == parse_report(draft.read_text())


def test_misp_file_export_and_import_round_trip(tmp_path: Path) -> None:
    """The same through a MISP event file."""
    out = tmp_path / "event.json"
    code, output = _run("misp", "export", str(EXAMPLE), "-o", str(out), "--id", "r-1")
    assert 0 == code, output
    code, output = _run("misp", "import", str(out), "-o", str(tmp_path / "drafts"))
    assert 0 == code, output
    [draft] = (tmp_path / "drafts").glob("*.iir.json")
    assert parse_report(EXAMPLE.read_text()) == parse_report(draft.read_text())


def test_received_report_exports_what_the_node_opened_and_is_recorded(
    node: tuple[Path, str, str, Report], tmp_path: Path
) -> None:
    """A report from the inbox exports as this node saw it, and the export log names the
    officer, the format and the handling, in an unbroken chain."""
    config, received_id, _, received = node
    out = tmp_path / "in.stix.json"
    code, output = _run(
        "stix", "export", received_id, "-c", str(config), "-o", str(out), "--officer", "lt.garcia"
    )
    assert 0 == code, output
    code, output = _run("misp", "export", received_id, "-c", str(config), "-o", str(tmp_path / "e"))
    assert 0 == code, output
    bundle = json.loads(out.read_text())
    assert {received_id} == {
        next(iter(o["extensions"].values())).get("report_id")
        for o in bundle["objects"]
        if o["type"] == "report"
    }
    code, output = _run("stix", "import", str(out), "-o", str(tmp_path / "d"))
    assert 0 == code, output
    [draft] = (tmp_path / "d").glob("*.iir.json")
    assert received == parse_report(draft.read_text())
    log = NodeSettings.load(config).state_dir / EXPORT_LOG
    verify(log)
    mine = [e for e in entries(log) if e["report"] == received_id]
    assert [("lt.garcia", "stix-2.1"), (mine[1]["officer"], "misp")] == [
        (e["officer"], e["format"]) for e in mine
    ]
    assert received.handling.codes() == mine[0]["codes"]
    # Issue 17: the node's per-officer access log shows the same two exports, in its chain.
    from node.console.accesslog import AccessLog

    access = AccessLog.in_state_dir(log.parent, NodeSettings.load(config).agency)
    assert access.verify().ok
    exports = [e for e in access.entries() if e.get("action") == "export"]
    assert [("lt.garcia", received_id), (mine[1]["officer"], received_id)] == [
        (e["officer"], e["report"]) for e in exports
    ]


def test_retracted_own_report_exports_revoked(
    node: tuple[Path, str, str, Report], tmp_path: Path
) -> None:
    """One of our reports, retracted, exports as revoked objects."""
    config, _, sent_id, _ = node
    out = tmp_path / "gone.json"
    code, output = _run("stix", "export", sent_id, "-c", str(config), "-o", str(out))
    assert 0 == code, output
    sdos = [o for o in json.loads(out.read_text())["objects"] if o["type"] == "report"]
    assert [True] == [o["revoked"] for o in sdos]


def test_unknown_id_and_refused_bundle_exit_2(
    node: tuple[Path, str, str, Report], tmp_path: Path
) -> None:
    """An id the node does not hold, and a bundle with a contradictory TLP, are refused with
    the reason and exit code 2."""
    config = node[0]
    code, output = _run("stix", "export", "no-such-report", "-c", str(config))
    assert (2, True) == (code, "no report no-such-report" in " ".join(output.split()))
    out = tmp_path / "b.json"
    assert 0 == _run("stix", "export", str(EXAMPLE), "-o", str(out))[0]
    bundle = json.loads(out.read_text())
    for obj in bundle["objects"]:
        if obj["type"] == "report":
            obj["object_marking_refs"].append(
                "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
            )
    out.write_text(json.dumps(bundle))
    code, output = _run("stix", "import", str(out), "-o", str(tmp_path / "none"))
    assert 2 == code
    assert "markings_unmappable" in output
    assert "contradictory TLP" in " ".join(output.split())
    assert not (tmp_path / "none").exists()


def test_broken_export_log_chain_is_detected(tmp_path: Path) -> None:
    """Editing a line of the export log breaks the chain."""
    from node.interop.exportlog import record_export

    log = tmp_path / EXPORT_LOG
    report = parse_report(EXAMPLE.read_text())
    for officer in ("a", "b"):
        record_export(
            log, officer=officer, report_id="r", originator=report.originator, fmt="misp",
            handling=report.handling, withheld=(), retracted=False, destination="stdout", now=NOW,
        )  # fmt: skip
    verify(log)
    assert 0o600 == log.stat().st_mode & 0o777
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0].replace('"a"', '"c"'), lines[1]]) + "\n")
    with pytest.raises(InputError, match="line 2"):
        verify(log)


def test_expired_report_is_not_exported(tmp_path: Path) -> None:
    """A report past its expiry is purged, not exported, in either format."""
    data = json.loads(EXAMPLE.read_text())
    data["handling"]["expires"] = "2020-01-01T00:00:00Z"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    for fmt in ("stix", "misp"):
        code, output = _run(fmt, "export", str(old))
        assert (2, True) == (code, "expired at 2020-01-01" in " ".join(output.split()))


def test_file_reexport_under_an_envelope_id_keeps_created(tmp_path: Path) -> None:
    """Exported twice under its envelope id (UUIDv7), a file keeps its objects' created time
    (the id's) and ids; only modified moves."""
    from schemas import new_uuid7

    rid = new_uuid7(now_ms=1_780_000_000_000)
    source = EXAMPLES_DIR / "02-groups-network-western-balkans.json"  # no observed time
    assert "observed" not in json.loads(source.read_text())
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    for out in (first, second):
        assert 0 == _run("stix", "export", str(source), "--id", rid, "-o", str(out))[0]
    a, b = (json.loads(p.read_text())["objects"] for p in (first, second))
    reports = [next(o for o in objs if o["type"] == "report") for objs in (a, b)]
    assert reports[0]["id"] == reports[1]["id"]
    assert ["2026-05-28T20:26:40.000Z"] * 2 == [r["created"] for r in reports]
    assert reports[0]["modified"] <= reports[1]["modified"]


def test_an_export_the_log_cannot_record_does_not_happen(
    node: tuple[Path, str, str, Report], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export is dissemination: the record comes first, and a log that cannot be written (a
    typed error saying so) stops the export before any file is written."""
    from node.interop import exportlog

    config, received_id, _, received = node
    with pytest.raises(ConfigError, match="cannot record the export"):
        exportlog.record_export(
            tmp_path, officer="o", report_id=received_id, originator="GRC-HCG", fmt="stix-2.1",
            handling=received.handling, withheld=(), retracted=False, destination="stdout",
            now=NOW,
        )  # fmt: skip

    real = exportlog.record_export

    def unwritable(path: Path, **fields: object) -> None:
        real(tmp_path, **fields)  # type: ignore[arg-type]  # a directory: cannot be appended to

    monkeypatch.setattr(exportlog, "record_export", unwritable)
    for fmt in ("stix", "misp"):
        out = tmp_path / f"{fmt}.json"
        code, output = _run(fmt, "export", received_id, "-c", str(config), "-o", str(out))
        assert (2, False) == (code, out.exists()), output
        assert "cannot record the export" in output
