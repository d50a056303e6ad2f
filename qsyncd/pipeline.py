"""The upload queue between settle and the upload workers.

Holds each settled path once (O(1) dedupe), hands the freshest work out first (files seen by
events before files found by a scan), delays retries, and pauses every worker while the remote
is unreachable or rejects our credentials, so an outage costs one probe per backoff step, not a
hot loop. Memory is one small entry per waiting path: the directory itself is the durable queue.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRIORITY_EVENT = 0
PRIORITY_SCAN = 1


class CountingQueue(queue.Queue):  # type: ignore[type-arg]
    """A ``queue.Queue`` that counts every ``put`` (``puts``). Its consumer calls ``task_done()``
    once an item is handed on, so ``unfinished_tasks`` covers items in the queue *and* in hand; with
    ``puts`` a caller can tell that nothing entered it while it looked at the stages one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def _put(self, item: Any) -> None:  # called with the queue's lock held
        self.puts += 1
        super()._put(item)


@dataclass
class Item:
    path: str
    priority: int
    attempts: int = 0
    not_before: float = 0.0
    turn: int = -1  # the order it was taken in (Turns), while a worker holds it


class Turns:
    """The order in which the upload workers took their files, for the one step that needs it.

    A file about to replace an object waits until every file taken before it has said which object it
    copies its bytes from (``qsyncd.reuse``: renames), so in a rename chain (logrotate's ``.13 -> .14``,
    then ``.12 -> .13``) each object is copied before it is replaced, whichever thread runs first.
    ``take`` opens a turn (under the pipeline's lock, so the order is the order of ``Pipeline.take``),
    ``resolve`` marks it as having said, ``wait_older`` waits for the older ones (with a time limit).
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._open: set[int] = set()
        self._next = itertools.count()

    def take(self) -> int:
        with self._cv:
            turn = next(self._next)
            self._open.add(turn)
            return turn

    def resolve(self, turn: int) -> None:
        with self._cv:
            if turn in self._open:
                self._open.discard(turn)
                self._cv.notify_all()

    def wait_older(self, turn: int, timeout: float) -> bool:
        """Wait until no turn older than ``turn`` is open; False if ``timeout`` passed first."""
        with self._cv:
            return self._cv.wait_for(lambda: not any(t < turn for t in self._open), timeout)


class Gate:
    """Closed while the remote is down (or refuses us); workers wait instead of failing files."""

    def __init__(self) -> None:
        self.until = 0.0
        self.since: float | None = None  # wall time the trouble started
        self.reason = ""
        self.problem = ""  # "unreachable" or "refused" (credentials, bucket) while closed
        self.failures = 0


class Pipeline:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        lock = threading.RLock()
        self._cv = threading.Condition(lock)  # takers wait on it: notified when an item may be due
        self._idle_cv = threading.Condition(lock)  # wait_idle waits on it: notified when nothing is left
        self._items: dict[str, Item] = {}
        self._ready: list[tuple[int, int, str]] = []  # (priority, seq, path)
        self._delayed: list[tuple[float, int, str]] = []  # (not_before, seq, path)
        self._seq = itertools.count()
        self._inflight: set[str] = set()
        self._dirty: set[str] = set()  # changed again while in flight
        self._closed = False
        self.submitted = 0  # paths ever queued by submit(): lets a caller see that work moved meanwhile
        self.gate = Gate()
        self.turns = Turns()  # the order workers took their files in (renames: qsyncd.reuse)

    # -- producers
    def submit(self, path: str, priority: int) -> bool:
        """Queue ``path``; returns False if it was already queued or in flight."""
        with self._cv:
            if path in self._inflight:
                self._dirty.add(path)
                return False
            item = self._items.get(path)
            if item is not None:
                if priority < item.priority and item.not_before <= self.clock():
                    item.priority = priority
                    heapq.heappush(self._ready, (priority, next(self._seq), path))
                return False
            self._items[path] = Item(path, priority)
            heapq.heappush(self._ready, (priority, next(self._seq), path))
            self.submitted += 1
            self._cv.notify()
            return True

    def retry_later(self, item: Item, delay: float) -> None:
        """Put a taken item back, due after ``delay`` seconds."""
        with self._cv:
            self._inflight.discard(item.path)
            self._dirty.discard(item.path)
            item.not_before = self.clock() + delay
            self._items[item.path] = item
            heapq.heappush(self._delayed, (item.not_before, next(self._seq), item.path))
            self._cv.notify_all()

    def discard(self, path: str) -> None:
        with self._cv:
            self._items.pop(path, None)
            self._notify_if_idle()

    # -- the remote gate
    def close_gate(self, delay: float, reason: str, wall: float, *, problem: str = "unreachable") -> bool:
        """Pause all workers for ``delay`` seconds; True when this starts a new outage.

        One step of the outage per round of probes: a failure reported while the gate is already
        closed came from an upload started before it closed (up to ``concurrency`` of them fail in one
        burst), so it neither counts as another failure nor moves the end of the pause."""
        with self._cv:
            now = self.clock()
            new = self.gate.since is None
            if new:
                self.gate.since = wall
            self.gate.reason = reason
            self.gate.problem = problem
            if self.gate.until <= now:
                self.gate.failures += 1
                self.gate.until = now + delay
            return new

    def open_gate(self) -> float | None:
        """The remote answered: resume. Returns the outage start (wall time) if there was one."""
        with self._cv:
            since = self.gate.since
            if since is not None or self.gate.until:
                self.gate = Gate()
                self._cv.notify_all()
            return since

    # -- consumers
    def take(self, timeout: float) -> Item | None:
        """The next item whose time has come, or None after ``timeout`` (so callers can beat)."""
        deadline = self.clock() + timeout
        with self._cv:
            while not self._closed:
                now = self.clock()
                wait = deadline - now
                if self.gate.until > now:
                    wait = min(wait, self.gate.until - now)
                else:
                    while self._delayed and self._delayed[0][0] <= now:
                        _, seq, path = heapq.heappop(self._delayed)
                        item = self._items.get(path)
                        if item is not None:
                            heapq.heappush(self._ready, (item.priority, seq, path))
                    while self._ready:
                        prio, _, path = heapq.heappop(self._ready)
                        item = self._items.get(path)
                        if item is None or item.priority != prio or item.not_before > now:
                            continue  # stale entry
                        del self._items[path]
                        self._inflight.add(path)
                        item.turn = self.turns.take()
                        return item
                    if self._delayed:
                        wait = min(wait, self._delayed[0][0] - now)
                if wait <= 0:
                    return None
                self._cv.wait(wait)
            return None

    def done(self, item: Item, on_dirty: Callable[[str], None] | None = None) -> bool:
        """The worker finished with ``item``; True if the file changed meanwhile (re-settle it).

        ``on_dirty(path)`` is called for such a file while it still counts as in flight, so that
        whoever waits for the pipeline to go idle never sees a moment when it is nowhere."""
        self.turns.resolve(item.turn)
        with self._cv:
            dirty = item.path in self._dirty
            if dirty and on_dirty is not None:
                on_dirty(item.path)
            self._inflight.discard(item.path)
            self._dirty.discard(item.path)
            self._notify_if_idle()  # no taker waits for a file to be done: waking them all cost a lot
            return dirty

    def _notify_if_idle(self) -> None:  # called with the lock held
        if not self._items and not self._inflight:
            self._idle_cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            self._idle_cv.notify_all()

    # -- figures
    def queued(self) -> int:
        with self._cv:
            return len(self._items)

    def inflight(self) -> int:
        with self._cv:
            return len(self._inflight)

    def idle(self) -> bool:
        with self._cv:
            return not self._items and not self._inflight

    def wait_idle(self, timeout: float) -> bool:
        with self._cv:
            return self._idle_cv.wait_for(lambda: not self._items and not self._inflight, timeout)
