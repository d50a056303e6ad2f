"""Shared test support: a real emulator on 127.0.0.1, config files, the daemon as a real subprocess.

Import from here (``from qsynctest import ...``), never from ``conftest``: every test folder has a
conftest.py, and they all share that module name. ``tests/conftest.py`` re-exports the fixtures.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "QSYNCDTESTKEY"
# One secret per test session; tests grep every captured output for it.
SECRET = os.environ.setdefault("QSYNCD_TEST_SECRET", "sk-" + secrets.token_hex(16))
BUCKET = "qsyncd-test"
REPO = Path(__file__).resolve().parents[2]


def require_in_ci(reason: str) -> None:
    """Skip on a laptop, fail in CI (``QSYNCD_REQUIRE_SYSTEMD=1`` / ``QSYNCD_CI=1``)."""
    if os.environ.get("QSYNCD_REQUIRE_SYSTEMD") == "1" or os.environ.get("QSYNCD_CI") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    from qsyncd.emulator import Emulator

    with Emulator(tmp_path / "emu", credentials={ACCESS_KEY: SECRET}, buckets=[BUCKET]) as emu:
        yield emu


def write_config(
    path: Path,
    *,
    endpoint: str,
    watch: Path | list[dict[str, Any]],
    state: Path,
    secret: str = SECRET,
    access_key: str = ACCESS_KEY,
    bucket: str = BUCKET,
    settle: dict[str, Any] | None = None,
    upload: dict[str, Any] | None = None,
    extra: str = "",
    prefix: str = "",
    watch_opts: dict[str, Any] | None = None,
) -> Path:
    """Write a qsyncd.toml; the secret goes into a 0600 file next to it."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return json.dumps(str(v))

    secret_file = path.parent / (path.name + ".secret")
    secret_file.write_text(secret)
    os.chmod(secret_file, 0o600)
    lines = [
        "[qingstor]",
        f"endpoint = {val(endpoint)}",
        'zone = ""',
        f"bucket = {val(bucket)}",
        f"access_key_id = {val(access_key)}",
        f"secret_access_key_file = {val(secret_file)}",
        "connect_timeout_seconds = 2",
        "read_timeout_seconds = 10",
        "",
    ]
    watches = watch if isinstance(watch, list) else [{"path": str(watch), "prefix": prefix, **(watch_opts or {})}]
    for w in watches:
        lines.append("[[watch]]")
        lines += [f"{k} = {val(v)}" for k, v in w.items()]
        lines.append("")
    lines += ["[settle]"] + [f"{k} = {val(v)}" for k, v in {"quiet_seconds": 0.5, **(settle or {})}.items()] + [""]
    up = {"retry_initial_seconds": 0.2, "retry_max_seconds": 2, **(upload or {})}
    lines += ["[upload]"] + [f"{k} = {val(v)}" for k, v in up.items()] + [""]
    lines += ["[state]", f"dir = {val(state)}", ""]
    lines += [extra]
    path.write_text("\n".join(lines))
    os.chmod(path, 0o600)
    return path


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


@pytest.fixture
def remote(emulator: Any) -> Iterator[Any]:
    """A QingStorRemote on the ``emulator`` fixture, closed afterwards."""
    from qsyncd.remote.qingstor import QingStorRemote

    r = QingStorRemote(
        endpoint=emulator.url,
        zone="",
        bucket=BUCKET,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET,
        connect_timeout=2,
        read_timeout=10,
    )
    yield r
    r.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Any]:
    """A fresh ledger in tmp_path/state, closed afterwards."""
    from qsyncd.state import Ledger

    led = Ledger(tmp_path / "state")
    try:
        yield led
    finally:
        led.close()


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
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None
        return self.proc.returncode

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


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        time.sleep(interval)
