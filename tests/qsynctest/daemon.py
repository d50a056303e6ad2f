"""The daemon as a real subprocess (``qsyncd run --log-format json``) and reading its JSON events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qsynctest.constants import REPO
from qsynctest.processes import stop_process


def json_events(text: str, name: str | None = None) -> list[dict[str, Any]]:
    """The JSON events (``--log-format json``) in captured output, optionally only those called ``name``."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if name is None or ev.get("event") == name:
            out.append(ev)
    return out


class DaemonProc:
    """``qsyncd run`` as a subprocess with JSON events captured to a file."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None, args: list[str] | None = None):
        self.config = config
        self.log_path = log
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self._out = None

    def start(self) -> DaemonProc:
        self._out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qsyncd", "run", "-c", str(self.config), "--log-format", "json", *self.args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=str(REPO),
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return json_events(self.log_path.read_text(errors="replace"), name)

    def wait_event(
        self, name: str, timeout: float = 30.0, pred: Callable[[dict[str, Any]], bool] | None = None, count: int = 1
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            evs = [e for e in self.events(name) if pred is None or pred(e)]
            if len(evs) >= count:
                return evs
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode} waiting for {name}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count}x {name}; got {len(evs)}:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, n: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        code = stop_process(self.proc, sig, timeout)
        if self._out is not None:
            self._out.close()
            self._out = None
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProc]]:
    started: list[DaemonProc] = []

    def make(config: Path, **kw: Any) -> DaemonProc:
        d = DaemonProc(config, tmp_path / f"daemon-{len(started)}.log", **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop(signal.SIGKILL, timeout=10)
