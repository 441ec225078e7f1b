"""``palermo officer``: accounts and the access log from the node's host."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from node.console.officers import OfficerStore
from palermo.cli import app

runner = CliRunner()
PASSWORD = "a long enough passphrase"


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "node.toml"
    config.write_text(
        'agency = "AT-BMI"\n'
        f'root_key = "{tmp_path}/root.pub.json"\n'
        f'signing_key = "{tmp_path}/node.key"\n'
        f'encryption_keys = ["{tmp_path}/enc.key"]\n'
        f'state_dir = "{tmp_path}/state"\n'
        "dev = true\n"
    )
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    return config


def test_add_list_disable_and_the_access_log_records_them(tmp_path: Path) -> None:
    """add (password file, two roles, TOTP URI printed once), list (no secrets), disable;
    both changes are access-log entries under the host user, and the chain verifies."""
    config = _config(tmp_path)
    added = runner.invoke(app, ["officer", "add", "rita", "--role", "release-authority",
                                "--role", "administrator", "--totp", "-c", str(config),
                                "--password-file", str(tmp_path / "pw")])  # fmt: skip
    assert 0 == added.exit_code, added.output
    assert "otpauth://totp/Palermo%20AT-BMI:rita?digits=6&secret=" in added.output
    listed = runner.invoke(app, ["officer", "list", "--json", "-c", str(config)])
    rows = json.loads(listed.output)
    assert [("rita", ["administrator", "release-authority"], True, False)] == [
        (r["name"], r["roles"], r["totp"], r["disabled"]) for r in rows
    ]
    assert "argon2" not in listed.output
    assert 0 == runner.invoke(app, ["officer", "disable", "rita", "-c", str(config)]).exit_code
    assert OfficerStore.in_state_dir(tmp_path / "state").get("rita").disabled  # type: ignore[union-attr]
    log = runner.invoke(app, ["officer", "access-log", "--json", "-c", str(config)])
    assert ["officer-add", "officer-disable"] == [e["action"] for e in json.loads(log.output)]
    verified = runner.invoke(app, ["officer", "access-log", "--verify", "-c", str(config)])
    assert (0, "access log intact: 2 entries\n") == (verified.exit_code, verified.output)


def test_a_bad_role_or_short_password_is_refused_with_the_fix(tmp_path: Path) -> None:
    """Exit 2 and a message naming the allowed roles or the length."""
    config = _config(tmp_path)
    bad = runner.invoke(app, ["officer", "add", "anna", "--role", "boss", "-c", str(config),
                              "--password-file", str(tmp_path / "pw")])  # fmt: skip
    assert 2 == bad.exit_code
    assert "reader, officer, release-authority, administrator" in bad.output
    (tmp_path / "short").write_text("short\n")
    short = runner.invoke(app, ["officer", "add", "anna", "--role", "reader", "-c", str(config),
                                "--password-file", str(tmp_path / "short")])  # fmt: skip
    assert 2 == short.exit_code
    assert "12 to 1024" in short.output


def test_the_password_prompt_asks_twice(tmp_path: Path) -> None:
    """Without --password-file the password is prompted for, hidden, and confirmed."""
    config = _config(tmp_path)
    result = runner.invoke(
        app,
        ["officer", "add", "anna", "--role", "reader", "-c", str(config)],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert 0 == result.exit_code, result.output
    store = OfficerStore.in_state_dir(tmp_path / "state")
    assert store.verify_password("anna", PASSWORD) is not None


def test_access_log_verify_exits_1_naming_the_tampered_entry(tmp_path: Path) -> None:
    """An entry edited after the fact: --verify says which and exits 1."""
    config = _config(tmp_path)
    for name in ("anna", "bob"):
        runner.invoke(app, ["officer", "add", name, "--role", "reader", "-c", str(config),
                            "--password-file", str(tmp_path / "pw")])  # fmt: skip
    log = tmp_path / "state" / "access-log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[0].replace("anna reader", "anna administrator") + "\n" + lines[1] + "\n")
    result = runner.invoke(app, ["officer", "access-log", "--verify", "-c", str(config)])
    assert 1 == result.exit_code
    assert "access log BROKEN: entry 1 was modified" in result.output
