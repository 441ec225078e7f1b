"""``make browser``, the step that puts Debian's Chromium and chromedriver in place for the
console's browser tests: run with stand-ins for ``id`` and ``apt-get`` on PATH (nothing is
installed), so each branch is checked on any machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _make_browser(tmp_path: Path, *, uid: int, apt_rc: int, bins: list[Path]) -> tuple[int, str]:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (stubs / "apt-get").write_text(
        f'#!/bin/sh\necho "apt-get $*" >> {tmp_path}/apt.log\nexit {apt_rc}\n'
    )
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    make = shutil.which("make")
    assert make is not None, "make is needed to run the Makefile"
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    done = subprocess.run(
        [make, "-s", "-C", str(ROOT), "browser", f"CHROMIUM_BINS={' '.join(map(str, bins))}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr


def test_present_binaries_need_nothing(tmp_path: Path) -> None:
    there = tmp_path / "chromium"
    there.write_text("#!/bin/sh\n")
    there.chmod(0o755)
    assert (0, "") == _make_browser(tmp_path, uid=1000, apt_rc=0, bins=[there])
    assert not (tmp_path / "apt.log").exists()


def test_not_root_says_what_to_install(tmp_path: Path) -> None:
    rc, err = _make_browser(tmp_path, uid=1000, apt_rc=0, bins=[tmp_path / "chromium"])
    assert 0 != rc
    assert "sudo apt-get install chromium chromium-driver" in err
    assert str(tmp_path / "chromium") in err


@pytest.mark.parametrize(("apt_rc", "said"), [(100, "could not install"), (0, "still missing")])
def test_as_root_an_install_that_leaves_them_missing_fails_clearly(
    tmp_path: Path, apt_rc: int, said: str
) -> None:
    """apt-get failing, or succeeding without putting the binaries where the tests look
    (Ubuntu's snap wrappers): make fails and says so, rather than the browser tests failing
    later with a driver error."""
    rc, err = _make_browser(tmp_path, uid=0, apt_rc=apt_rc, bins=[tmp_path / "chromium"])
    assert 0 != rc
    assert said in err
    assert "apt-get update" in (tmp_path / "apt.log").read_text()
