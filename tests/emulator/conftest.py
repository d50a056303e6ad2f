"""Fixtures for the emulator tests: a running Emulator on a temp root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qsynctest import start_emulator

BUCKET = "test-bucket"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of the emulator memory test (it runs by default, CI included)."""
    config.addinivalue_line("markers", "memory: measures peak RSS of an emulator subprocess (runs in CI)")


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Any]:
    """A started emulator (built-in credentials, with fsync) with the bucket ``test-bucket``; stopped after."""
    with start_emulator(tmp_path / "root", credentials=None, buckets=[BUCKET], fsync=True, seed=1234) as e:
        yield e
