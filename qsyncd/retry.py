"""Backoff schedules: how long to wait before trying again. Pure functions, table-tested."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int,
    initial: float,
    maximum: float,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with jitter for the ``attempt``-th retry (1-based).

    The base doubles each attempt (``initial``, ``2*initial``, ...) up to ``maximum``; the
    result is drawn uniformly from [base/2, base] so that many files failing together do not
    retry in lock-step.
    """
    if attempt < 1:
        attempt = 1
    base = min(maximum, initial * float(2 ** min(attempt - 1, 62)))
    return base / 2 + (base / 2) * rand()
