"""The installed ``qsyncd`` console script (the venv's ``bin/qsyncd``), run the way a user types it.

Tests of the command surface go through this script, not ``python -m qsyncd``: the bugs of issue 17
(``qsyncd emulator --root`` refused, a traceback into ``| head``) were only visible from there.
Processes started here are stopped by their pid, also when a test fails.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from qsynctest import stop_process

REPO = Path(__file__).resolve().parents[2]
# The script pip put next to the interpreter running the tests (not resolved: the venv's python is a
# symlink to the system one, whose bin/ has no qsyncd).
QSYNCD = Path(sys.executable).parent / "qsyncd"


def qsyncd_bin() -> str:
    """The console script's path; the test fails (not skips) without it: ./scripts/setup installs it."""
    if not os.access(QSYNCD, os.X_OK):
        pytest.fail(f"no console script at {QSYNCD}: run ./scripts/setup (it installs qsyncd into .venv)")
    return str(QSYNCD)


def user_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a user's shell: ours without PYTHONUNBUFFERED (a test runner may set it; it
    changes when a closed pipe is noticed: at each write, where logging and argparse drop the error,
    instead of at the last flush), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**env, **(extra or {})}


def argv(command: str, subs: Mapping[str, str] | None = None) -> list[str]:
    """``command`` as the shell would split it, ``qsyncd`` made the console script's path, and each word
    that is a key of ``subs`` (a placeholder such as FILE, or a path such as /etc/qsyncd/qsyncd.toml)
    replaced by its value."""
    words = [(subs or {}).get(w, w) for w in shlex.split(command)]
    if words[0] == "qsyncd" or words[0].endswith("/bin/qsyncd"):
        words[0] = qsyncd_bin()
    return words


def run(
    words: list[str], *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(words, capture_output=True, text=True, timeout=timeout, cwd=str(cwd), env=user_env(env))


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Send ``sig`` to the process we started (by its pid) and wait; SIGKILL if it does not end."""
    return stop_process(proc, sig, timeout)


@contextmanager
def started(
    words: list[str], *, log: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``words`` running with stdout and stderr in ``log``; killed on the way out if still running."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(words, stdout=out, stderr=subprocess.STDOUT, cwd=str(cwd), env=user_env(env))
        try:
            yield proc
        finally:
            stop(proc, signal.SIGKILL, timeout=10)


def wait_in_log(proc: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float = 30) -> re.Match[str]:
    """Wait until ``log`` holds a match of ``pattern``; fails early if the process ended without one."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        m = re.search(pattern, text)
        if m:
            return m
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} before {pattern!r}:\n{text[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {pattern!r}:\n{text[-3000:]}")
        time.sleep(0.05)


@contextmanager
def emulator(extra: list[str], *, tmp: Path, name: str = "emulator") -> Iterator[tuple[str, Path]]:
    """``qsyncd emulator --root DIR --port 0 EXTRA`` through the console script; yields (url, its log).

    Port 0 instead of the default 9000: helpers and CI jobs share this machine; the URL is taken from
    the ``emulator_listening`` line, as a user reads it.
    """
    log = tmp / f"{name}.log"
    words = [qsyncd_bin(), "emulator", "--root", str(tmp / name), "--port", "0", *extra]
    with started(words, log=log, cwd=tmp) as proc:
        url = wait_in_log(proc, log, r"emulator_listening url=(\S+)").group(1)
        yield url, log
        assert 0 == stop(proc), log.read_text(errors="replace")
        assert "emulator_stopped" in log.read_text(errors="replace")
