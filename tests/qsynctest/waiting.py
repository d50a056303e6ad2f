"""Waiting for something a real process or thread does: poll a predicate until it holds or time runs out.

For real processes only; unit tests with a ``FakeClock`` never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError, TimeoutError):
    """The condition did not hold in time (an AssertionError for pytest, a TimeoutError for callers)."""


def wait_for(pred: Callable[[], T], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``pred()`` until it returns something truthy and return that; ``WaitTimeout`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what or pred}")
        time.sleep(interval)


def wait_records(emu: Any, pred: Callable[[Any], bool] | str, count: int = 1, timeout: float = 5.0) -> list[Any]:
    """The emulator's request records matching ``pred`` (or of that operation) once ``count`` exist.

    The emulator appends a record after the response is sent, so a client can see the response before
    the record exists. Returns what there is when the timeout passes (the caller asserts on it)."""
    match = (lambda r: r.operation == pred) if isinstance(pred, str) else pred
    deadline = time.monotonic() + timeout
    while True:
        records = [r for r in emu.requests if match(r)]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.01)


def wait_record(emu: Any, pred: Callable[[Any], bool], timeout: float = 15.0) -> Any:
    """The first of the emulator's request records matching ``pred``; ``WaitTimeout`` if none comes."""
    return wait_for(
        lambda: next((r for r in emu.requests if pred(r)), None), timeout, 0.02, f"a matching record in {emu.requests}"
    )
