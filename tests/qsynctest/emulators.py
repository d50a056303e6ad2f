"""The emulator for tests, started one of two ways: in-process (``start_emulator``, the ``emulator`` and
``fast_emulator`` fixtures) or as the subprocess a user starts (``EmulatorProc``: the venv's
``bin/qsyncd emulator``, the ``emulator_proc`` fixture). Both are stopped afterwards, even on failure.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from qsyncd.weed import free_ports
from qsynctest.constants import ACCESS_KEY, BUCKET, REPO, SECRET
from qsynctest.processes import stop_process

TEST_CREDENTIALS: dict[str, str] = {ACCESS_KEY: SECRET}
DEFAULT_SEED = 1234


@contextmanager
def start_emulator(
    root: Path,
    *,
    credentials: dict[str, str] | None = TEST_CREDENTIALS,
    buckets: Sequence[str] = (BUCKET,),
    fsync: bool = False,
    seed: int | None = DEFAULT_SEED,
    log_file: Path | None = None,
    **kw: Any,
) -> Iterator[Any]:
    """An in-process ``Emulator`` on 127.0.0.1 (a free port), stopped when the block ends.

    ``credentials=None`` keeps the emulator's built-in pair; ``fsync`` is off by default (crash safety of
    the emulator is not what most tests check); ``log_file`` receives its request log (for secret greps).
    """
    from qsyncd.emulator import Emulator

    handler: logging.Handler | None = None
    logger = logging.getLogger("qsyncd.emulator")
    old_level = logger.level
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        emu = Emulator(root, credentials=credentials, buckets=list(buckets), fsync=fsync, seed=seed, **kw)
        emu.start()
        try:
            yield emu
        finally:
            emu.stop()
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            handler.close()


@pytest.fixture
def emulator_seed() -> int:
    """The seed of the emulators a test starts (its probabilistic faults); folders may override it."""
    return DEFAULT_SEED


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    """An in-process emulator with fsync, the test credentials and ``BUCKET``."""
    with start_emulator(tmp_path / "emu", fsync=True, seed=None) as emu:
        yield emu


@pytest.fixture
def fast_emulator(tmp_path: Path, emulator_seed: int) -> Iterator[Any]:
    """An in-process emulator without fsync (suites write thousands of objects on a small machine); its
    request log goes to ``emulator-inprocess.log`` like every other output a test captures."""
    with start_emulator(tmp_path / "emu", seed=emulator_seed, log_file=tmp_path / "emulator-inprocess.log") as emu:
        yield emu


def qsyncd_command() -> list[str]:
    """The ``qsyncd`` command a user types: the console script beside this interpreter (the venv's bin/)."""
    script = Path(sys.executable).parent / "qsyncd"
    if not script.exists():
        raise AssertionError(f"no {script}: run ./scripts/setup (it installs qsyncd into .venv)")
    return [str(script)]


class EmulatorProc:
    """``qsyncd emulator`` as a subprocess, restartable on the same port and root; stopped by its PID.

    Output (stdout and stderr) is appended to ``log``; the bound port is read from a port file beside it.
    ``credentials=None`` starts it with its built-in pair (printed on stderr, as for a user).
    """

    def __init__(
        self,
        root: Path,
        log: Path,
        *,
        credentials: dict[str, str] | None = TEST_CREDENTIALS,
        buckets: Sequence[str] = (BUCKET,),
        port: int = 0,
        seed: int | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.log = log
        self.credentials = credentials
        self.buckets = list(buckets)
        # below the ephemeral range (qsyncd.weed.PORT_RANGE), so no client connection takes it while the
        # emulator is stopped for an outage and started again on the same port
        self.port = port or free_ports(1)[0]
        self.seed = seed
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self, port_file: Path) -> list[str]:
        """The command line (the secret is on it, as a user would pass it; tests never log argv)."""
        args = [*qsyncd_command(), "emulator", "--root", str(self.root), "--port", str(self.port)]
        args += ["--port-file", str(port_file)]
        for akid, secret in (self.credentials or {}).items():
            args += ["--access-key-id", akid, "--secret-access-key", secret]
        for bucket in self.buckets:
            args += ["--bucket", bucket]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        return args + self.extra

    def start(self, timeout: float = 20.0) -> EmulatorProc:
        """Start it and wait until it listens (its port file appears)."""
        port_file = self.log.with_name(self.log.name + ".port")
        port_file.unlink(missing_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv(port_file), stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"emulator did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Send ``sig`` to our PID and wait (SIGKILL if it does not go); the exit code."""
        if self.proc is None:
            return None
        return stop_process(self.proc, sig, timeout)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """A call to the emulator's ``/_emulator/...`` admin API; its JSON answer."""
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def __enter__(self) -> EmulatorProc:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop(signal.SIGKILL, timeout=10)


@pytest.fixture
def emulator_proc(tmp_path: Path, emulator_seed: int) -> Iterator[EmulatorProc]:
    """``qsyncd emulator`` as a subprocess on ``tmp_path/emu`` (stopped by PID afterwards, even on failure)."""
    e = EmulatorProc(tmp_path / "emu", tmp_path / "emulator.log", seed=emulator_seed)
    e.start()
    try:
        yield e
    finally:
        e.stop()
