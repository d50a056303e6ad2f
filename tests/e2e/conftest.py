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
from e2e_support import BUCKET, REPO, Setup


@pytest.fixture(scope="session")
def shared(request: pytest.FixtureRequest) -> types.ModuleType:
    """tests/conftest.py as pytest loaded it (one SECRET per session; a plain import would make a second)."""
    mod = request.config.pluginmanager.get_plugin(str(REPO / "tests" / "conftest.py"))
    assert mod is not None, "tests/conftest.py is not loaded"
    assert mod.BUCKET == BUCKET
    return mod


@pytest.fixture
def fast_emulator(tmp_path: Path, shared: types.ModuleType) -> Iterator[Any]:
    """The emulator without fsync (the e2e suite writes thousands of objects on a small machine)."""
    from qsyncd.emulator import Emulator

    emu = Emulator(tmp_path / "emu", credentials={shared.ACCESS_KEY: shared.SECRET}, buckets=[BUCKET], fsync=False,
                   seed=1234)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def setup(tmp_path: Path, fast_emulator: Any, daemon_factory: Callable[..., Any], shared: types.ModuleType) -> Setup:
    """A fresh watch root, state dir and emulator for one test."""
    root = tmp_path / "outbox"
    root.mkdir()
    return Setup(shared=shared, tmp=tmp_path, root=root, state=tmp_path / "state", emu=fast_emulator,
                 factory=daemon_factory)

