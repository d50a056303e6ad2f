"""Fixtures for the emulator tests: a running Emulator on a temp root."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The package is not installed into the venv; make the checkout importable (see the report).
_REPO = Path(__file__).resolve().parents[2]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from qsyncd.emulator import Emulator  # noqa: E402

BUCKET = "test-bucket"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of the emulator memory test (it runs by default, CI included)."""
    config.addinivalue_line("markers", "memory: measures peak RSS of an emulator subprocess (runs in CI)")


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    """A started emulator with the bucket ``test-bucket``; stopped after the test."""
    e = Emulator(tmp_path / "root", buckets=[BUCKET], seed=1234)
    e.start()
    try:
        yield e
    finally:
        e.stop()
