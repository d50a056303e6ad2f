"""End-to-end fixtures: a watch tree, a config, the daemon as a subprocess and byte-exact remote checks.

Everything here is real: inotify on a tmp directory, ``qsyncd run``/``qsyncd sync`` as child
processes, HTTP to the emulator. Helpers only read what the emulator stored and what it logged.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import qsynctest
from e2e_support import BUCKET, Setup


@pytest.fixture(scope="session")
def shared() -> types.ModuleType:
    """The shared test helpers (tests/qsynctest.py): write_config, wait_for, require_in_ci, the credentials."""
    assert qsynctest.BUCKET == BUCKET
    return qsynctest


@pytest.fixture
def fast_emulator(tmp_path: Path, shared: types.ModuleType) -> Iterator[Any]:
    """The emulator without fsync (the e2e suite writes thousands of objects on a small machine)."""
    from qsyncd.emulator import Emulator

    emu = Emulator(
        tmp_path / "emu", credentials={shared.ACCESS_KEY: shared.SECRET}, buckets=[BUCKET], fsync=False, seed=1234
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def setup(
    tmp_path: Path, fast_emulator: Any, daemon_factory: Callable[..., Any], shared: types.ModuleType
) -> Iterator[Setup]:
    """A fresh watch root, state dir and emulator for one test; afterwards no daemon log may hold the secret."""
    root = tmp_path / "outbox"
    root.mkdir()
    world = Setup(
        shared=shared, tmp=tmp_path, root=root, state=tmp_path / "state", emu=fast_emulator, factory=daemon_factory
    )
    yield world
    for log in tmp_path.glob("daemon-*.log"):
        assert shared.SECRET not in log.read_text(errors="replace"), f"the secret key leaked into {log.name}"
