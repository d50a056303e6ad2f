"""Fixtures for every test: see ``qsynctest`` (import helpers from there, not from conftest)."""

import sys
from pathlib import Path

# tests/systemd is deliberately not a package (see sdharness.py): put it on sys.path for its fixtures
sys.path.insert(0, str(Path(__file__).parent / "systemd"))

from qsynctest import (  # noqa: F401  (fixtures and names re-exported for pytest and older imports)
    ACCESS_KEY,
    BUCKET,
    SECRET,
    DaemonProc,
    daemon_factory,
    emulator,
    emulator_proc,
    emulator_seed,
    fast_emulator,
    ledger,
    notify_socket,
    remote,
    require_in_ci,
    shared,
    wait_for,
    write_config,
)
from sdharness import journald  # noqa: F401  (a fixture for tests outside tests/systemd)
