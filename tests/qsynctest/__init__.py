"""Shared test support, one package for every test folder. Its modules:

- ``constants``: the test credentials, ``BUCKET``, ``REPO``;
- ``config``: ``write_config`` (a qsyncd.toml and its 0600 secret file);
- ``daemon``: ``DaemonProc`` (``qsyncd run`` as a subprocess), ``json_events``, the ``daemon_factory`` fixture;
- ``emulators``: the emulator in-process (``start_emulator``, fixtures ``emulator``, ``fast_emulator``) or as
  the ``qsyncd emulator`` subprocess (``EmulatorProc``, fixture ``emulator_proc``);
- ``notify``: ``NotifySocket``, a $NOTIFY_SOCKET listener, and its fixture ``notify_socket``;
- ``clock``: ``FakeClock`` for unit tests of the stages (time moved by hand, no sleeps);
- ``digests``: ``md5_hex``, ``md5_b64``, ``md5_file``;
- ``waiting``: ``wait_for`` (poll a predicate), ``wait_record(s)`` (the emulator's request log);
- ``processes``: ``stop_process`` (a child we started, by its PID).

Import from here or its modules (``from qsynctest import ...``), never from ``conftest``: every test folder
has a conftest.py, and they all share that module name. ``tests/conftest.py`` re-exports the fixtures.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qsynctest.clock import FakeClock
from qsynctest.config import write_config
from qsynctest.constants import ACCESS_KEY, BUCKET, REPO, SECRET
from qsynctest.daemon import DaemonProc, daemon_factory, json_events
from qsynctest.digests import md5_b64, md5_file, md5_hex
from qsynctest.emulators import (
    EmulatorProc,
    emulator,
    emulator_proc,
    emulator_seed,
    fast_emulator,
    qsyncd_command,
    start_emulator,
)
from qsynctest.notify import NotifySocket, notify_socket
from qsynctest.processes import stop_process
from qsynctest.waiting import WaitTimeout, wait_for, wait_record, wait_records

__all__ = [
    "ACCESS_KEY",
    "BUCKET",
    "REPO",
    "SECRET",
    "DaemonProc",
    "EmulatorProc",
    "FakeClock",
    "NotifySocket",
    "WaitTimeout",
    "daemon_factory",
    "emulator",
    "emulator_proc",
    "emulator_seed",
    "fast_emulator",
    "json_events",
    "ledger",
    "md5_b64",
    "md5_file",
    "md5_hex",
    "notify_socket",
    "qsyncd_command",
    "remote",
    "require_in_ci",
    "shared",
    "start_emulator",
    "stop_process",
    "wait_for",
    "wait_record",
    "wait_records",
    "write_config",
]


def require_in_ci(reason: str) -> None:
    """Skip on a laptop, fail in CI (``QSYNCD_REQUIRE_SYSTEMD=1`` / ``QSYNCD_CI=1``)."""
    if os.environ.get("QSYNCD_REQUIRE_SYSTEMD") == "1" or os.environ.get("QSYNCD_CI") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> types.ModuleType:
    """This package as a fixture, for suites that reach the helpers as ``shared.write_config`` etc."""
    return sys.modules[__name__]


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
