"""qsyncd.progress: the one-line progress of ``qsyncd sync`` counts outcomes, shows a rate from its clock,
draws only on a terminal, and ends with a newline. Time comes from a FakeClock; nothing sleeps."""

from __future__ import annotations

import io
import types
from typing import Any

import pytest
from qsynctest import FakeClock

from qsyncd.progress import Progress, _human


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def outcome(action: str, nbytes: int = 0) -> Any:
    return types.SimpleNamespace(action=action, bytes=nbytes)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_human_sizes() -> None:
    assert ["0 B", "1023 B", "1.0 KiB", "1.5 MiB", "2.0 GiB", "2048.0 TiB"] == [
        _human(n) for n in (0, 1023, 1024, 1.5 * 1024**2, 2 * 1024**3, 2 * 1024**5)
    ]


def test_line_counts_uploads_and_skips_with_rate_and_waiting(clock: FakeClock) -> None:
    """Two uploads of 1 MiB in 2 s: 2 files, 2.0 MiB at 1.0 MiB/s; a skip counts as skipped, not bytes."""
    p = Progress(None, clock=clock)
    p.on_outcome(outcome("uploaded", 1024**2))
    p.on_outcome(outcome("uploaded", 1024**2))
    p.on_outcome(outcome("skipped"))
    p.on_outcome(outcome("unchanged", 999))
    p.attach(lambda: 7)
    clock.advance(2.0)
    assert "uploaded 2 files, 2.0 MiB (1.0 MiB/s) · skipped 2 · waiting 7" == p.line()


def test_off_a_terminal_nothing_is_drawn(clock: FakeClock) -> None:
    """A pipe or a file gets no progress line (and no thread); ``enabled=False`` turns it off on a tty."""
    pipe = io.StringIO()
    p = Progress.for_stream(pipe, clock=clock)
    p.attach(lambda: 0)
    p.on_outcome(outcome("uploaded", 10))
    p.finish()
    assert ("", None) == (pipe.getvalue(), p._thread)
    assert Progress.for_stream(Tty(), enabled=False).stream is None


def test_on_a_terminal_the_line_is_redrawn_and_ends_with_a_newline(clock: FakeClock) -> None:
    """``finish`` draws the last state over the line (erase-to-end first) and leaves the cursor below it."""
    tty = Tty()
    p = Progress.for_stream(tty, clock=clock)
    p._draw_loop = lambda: None  # type: ignore[method-assign]  # the periodic redraw is a timer: not under test
    p.attach(lambda: 0)
    p.on_outcome(outcome("uploaded", 10))
    clock.advance(1.0)
    p.finish()
    assert "\r\x1b[Kuploaded 1 files, 10 B (10 B/s) · skipped 0 · waiting 0\n" == tty.getvalue()
