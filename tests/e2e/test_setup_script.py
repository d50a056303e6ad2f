"""scripts/setup on a copy of the checkout with stub apt-get, dpkg-query and pip: it installs once, skips
pip while .venv is current, reinstalls when pyproject.toml changes, and keeps apt's output to itself
unless apt fails (issue 17 item 9).

The stubs log their arguments, so no package is installed and no venv is touched; the real install on a
fresh Debian machine is what CI's `.ci/run` does with the same script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOISE = "".join(f"Selecting previously unselected package libfoo{i}.\n" for i in range(60))


def _stub(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files scripts/setup reads, a .venv with stub python/pip/qsyncd, stub Debian tools on PATH."""
    repo = tmp_path / "repo"
    for rel in ("scripts/setup", "pyproject.toml", "setup.py", "qsyncd/_md5pair.c"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, repo / rel)
    venv = repo / ".venv" / "bin"
    venv.mkdir(parents=True)
    _stub(venv / "python", "exit 0\n")
    _stub(venv / "pip", f'echo "$*" >> {tmp_path}/pip.calls; echo "pip chatter"\n')
    _stub(venv / "qsyncd", "exit 0\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    # dpkg-query: every package installed unless named in $TMP/missing
    _stub(
        bin_ / "dpkg-query",
        f'for p; do :; done; grep -qx "$p" {tmp_path}/missing 2>/dev/null && exit 1; printf "install ok installed"\n',
    )
    _stub(
        bin_ / "apt-get",
        f'echo "$*" >> {tmp_path}/apt.calls; cat <<EOF\n{NOISE}EOF\n'
        f"exit $(cat {tmp_path}/apt.rc 2>/dev/null || echo 0)\n",
    )
    _stub(bin_ / "sudo", 'exec "$@"\n')
    return repo


def _setup(repo: Path) -> subprocess.CompletedProcess[str]:
    tmp = repo.parent
    env = {**os.environ, "PATH": f"{tmp / 'bin'}:{os.environ['PATH']}", "PYTHON": sys.executable}
    env.pop("QSYNCD_EXTRAS", None)
    return subprocess.run(
        [str(repo / "scripts/setup")], capture_output=True, text=True, cwd=str(tmp), env=env, timeout=120
    )


def _calls(repo: Path, tool: str) -> list[str]:
    f = repo.parent / f"{tool}.calls"
    return f.read_text().splitlines() if f.exists() else []


def test_pip_runs_once_while_the_venv_is_current(checkout: Path):
    first = _setup(checkout)
    assert 0 == first.returncode, first.stderr
    assert any("-e .[systemd,test]" in c for c in _calls(checkout, "pip")), _calls(checkout, "pip")
    assert "pip chatter" not in first.stdout + first.stderr  # pip's output only when it fails
    n = len(_calls(checkout, "pip"))

    again = _setup(checkout)
    assert 0 == again.returncode, again.stderr
    assert n == len(_calls(checkout, "pip")), "pip ran again although nothing changed"
    assert len((again.stdout + again.stderr).splitlines()) <= 2, again.stdout + again.stderr

    with open(checkout / "pyproject.toml", "a") as f:
        f.write("\n# a changed dependency\n")
    changed = _setup(checkout)
    assert 0 == changed.returncode, changed.stderr
    assert len(_calls(checkout, "pip")) > n, "pyproject.toml changed but pip did not run"


def test_a_failed_pip_install_is_shown_and_retried(checkout: Path):
    _stub(checkout / ".venv/bin/pip", 'echo "ERROR: no matching distribution"; exit 1\n')
    res = _setup(checkout)
    assert 0 != res.returncode
    assert "ERROR: no matching distribution" in res.stderr, res.stderr
    assert not (checkout / ".venv/.qsyncd-setup").exists(), "a failed install must not be recorded as current"


def test_apt_is_quiet_unless_it_fails(checkout: Path):
    (checkout.parent / "missing").write_text("rsync\n")
    ok = _setup(checkout)
    assert 0 == ok.returncode, ok.stderr
    assert any("install" in c and "rsync" in c for c in _calls(checkout, "apt")), _calls(checkout, "apt")
    out = ok.stdout + ok.stderr
    assert "Selecting previously" not in out and len(out.splitlines()) <= 3, out

    (checkout.parent / "apt.rc").write_text("100\n")
    failed = _setup(checkout)
    assert 0 != failed.returncode
    assert "Selecting previously unselected package libfoo59." in failed.stderr, failed.stderr
