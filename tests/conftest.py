"""Fixtures for every test: see ``qsynctest`` (import helpers from there, not from conftest)."""

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
