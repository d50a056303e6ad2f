"""End-to-end fixtures: a watch tree, a config, the daemon as a subprocess and byte-exact remote checks.

Everything here is real: inotify on a tmp directory, ``qsyncd run``/``qsyncd sync`` as child
processes, HTTP to the emulator (``fast_emulator``, ``qsynctest``'s). Helpers only read what the emulator
stored and what it logged.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Setup


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
