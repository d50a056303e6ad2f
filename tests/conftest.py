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
    ledger,
    remote,
    require_in_ci,
    wait_for,
    write_config,
)
from sdharness import journald, notify_socket  # noqa: F401  (fixtures for tests outside tests/systemd)
