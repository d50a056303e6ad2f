"""A fake monotonic clock for unit tests of the stages: the test moves time by hand, nothing sleeps."""

from __future__ import annotations


class FakeClock:
    """A callable clock (``clock()`` returns ``now``) that only moves when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new time."""
        self.now += seconds
        return self.now
