"""Decide when a file is finished: a pure state machine with an injected clock.

No I/O, no threads, no clock of its own: the caller feeds events (``event``), asks which paths are
due for a look (``due``), stats them and reports what it saw (``check``). Time is whatever
monotonic seconds the caller passes as ``now``, so tests drive it with a fake clock.

A file is READY when its identity (``FileIdentity``: size, mtime, inode, ctime) was the same at two checks at least
``quiet_seconds`` apart (a scan may vouch for time it was already unchanged), no event arrived in the
last ``quiet_seconds``, and it is not open for writing. A file opened for writing and never closed
(a log) is READY once ``max_wait_seconds`` have passed since it was first seen and it then held
still for ``quiet_seconds``. A file that keeps changing is never READY while it changes.

When the caller checks: a ``closed`` event asks for a check at once (the baseline signature), so a
file closed at t is READY at t + quiet. A ``write`` event asks for a check quiet_seconds later; an
open file's baseline is taken then, so after max_wait it is READY about 2 x quiet_seconds after its
last write. A ``scan`` asks for a check at once and vouches for ``idle_for`` seconds of stillness
(the caller should check soon after the scan, as the schedule asks). ``due`` removes a path from the
schedule only; a path that is due but never checked stays pending until its next event or scan.

Scheduling is a heap with lazy invalidation: an event that pushes a path's check later only
updates the entry; the old heap item is re-pushed when it surfaces. ``due`` costs O(k log n) for k
due paths, however many are pending.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Literal

from qsyncd.identity import FileIdentity

EventKind = Literal["write", "closed", "scan"]
CheckResult = Literal["ready", "wait", "gone"]


class _Entry:
    """One pending path."""

    __slots__ = (
        "first_seen",
        "heap_seq",
        "heap_time",
        "last_event",
        "open",
        "sched",
        "sig",
        "sig_since",
        "stable_hint",
    )

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.last_event: float | None = None  # time of the last write/closed event
        self.open = False  # a write event arrived and no closed event since
        self.sig: FileIdentity | None = None  # sig at the last check
        self.sig_since = 0.0  # time since which ``sig`` is known unchanged
        self.stable_hint: float | None = None  # from a scan: unchanged since this time (voided by events)
        self.sched: float | None = None  # when the caller should check next (None: not scheduled)
        self.heap_seq: int | None = None  # seq of the one live heap item for this entry
        self.heap_time = 0.0  # time of that item


class Settler:
    """Tracks pending paths and tells when each one is finished."""

    def __init__(self, quiet_seconds: float, max_wait_seconds: float) -> None:
        if quiet_seconds < 0 or max_wait_seconds < 0:
            raise ValueError("quiet_seconds and max_wait_seconds must not be negative")
        self.quiet = float(quiet_seconds)
        self.max_wait = float(max_wait_seconds)
        self._table: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    # -- public API ---------------------------------------------------------------------------

    def event(self, path: str, now: float, kind: EventKind, *, idle_for: float = 0.0) -> None:
        """Record that ``path`` was written (``write``), closed/moved into place (``closed``) or found by a scan.

        ``idle_for`` (scan only) is how long the file is already known unchanged, e.g. the age of its mtime.
        A scan of a path that is already pending changes nothing but makes sure it is scheduled.
        """
        entry = self._table.get(path)
        if kind == "scan":
            if entry is None:
                entry = self._table[path] = _Entry(now)
                entry.stable_hint = now - max(0.0, idle_for)
                self._schedule(path, entry, now)  # take the baseline signature right away
            elif entry.sched is None:
                self._schedule(path, entry, now)
            return
        if kind not in ("write", "closed"):
            raise ValueError(f"unknown event kind {kind!r}")
        if entry is None:
            entry = self._table[path] = _Entry(now)
        entry.last_event = now
        entry.stable_hint = None
        if kind == "write":
            entry.open = True
            self._schedule(path, entry, now + self.quiet)
        else:
            entry.open = False
            # look now: the baseline taken right after close lets the file be ready at close + quiet
            self._schedule(path, entry, now)

    def forget(self, path: str) -> None:
        """Drop ``path`` (deleted or moved away); its heap items die lazily."""
        self._table.pop(path, None)

    def due(self, now: float) -> list[str]:
        """Paths whose check time has come; they leave the schedule (not the table) until checked or touched."""
        out: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, path = heapq.heappop(heap)
            entry = self._table.get(path)
            if entry is None or entry.heap_seq != seq:
                continue  # stale item
            entry.heap_seq = None
            if entry.sched is None:
                continue
            if entry.sched > now:  # pushed later by an event: re-queue at the new time
                self._push(path, entry, entry.sched)
                continue
            entry.sched = None
            out.append(path)
        return out

    def check(self, path: str, now: float, sig: FileIdentity | None) -> CheckResult:
        """Judge ``path`` from its current signature (``None``: it no longer exists).

        "ready" and "gone" drop the entry; "wait" reschedules it at the earliest time it could be
        ready. An unknown path answers "gone".
        """
        entry = self._table.get(path)
        if entry is None:
            return "gone"
        if sig is None:
            del self._table[path]
            return "gone"
        if entry.sig is None:
            entry.sig = sig
            entry.sig_since = now if entry.stable_hint is None else min(now, entry.stable_hint)
        elif sig != entry.sig:
            entry.sig = sig
            entry.sig_since = now
        entry.stable_hint = None
        ready_at = self._ready_at(entry)
        if ready_at <= now:
            del self._table[path]
            return "ready"
        self._schedule(path, entry, ready_at)
        return "wait"

    def next_deadline(self) -> float | None:
        """The earliest time ``due()`` could return something, or ``None`` when nothing is scheduled."""
        heap = self._heap
        while heap:
            t, seq, path = heap[0]
            entry = self._table.get(path)
            if entry is None or entry.heap_seq != seq or entry.sched is None:
                heapq.heappop(heap)
                if entry is not None and entry.heap_seq == seq:
                    entry.heap_seq = None
                continue
            if entry.sched > t:
                heapq.heappop(heap)
                entry.heap_seq = None
                self._push(path, entry, entry.sched)
                continue
            return t
        return None

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, path: object) -> bool:
        return path in self._table

    # -- internals ----------------------------------------------------------------------------

    def _ready_at(self, entry: _Entry) -> float:
        t = entry.sig_since + self.quiet
        if entry.last_event is not None:
            t = max(t, entry.last_event + self.quiet)
        if entry.open:
            t = max(t, entry.first_seen + self.max_wait)
        return t

    def _schedule(self, path: str, entry: _Entry, when: float) -> None:
        """Ask for a check at ``when`` (not from inside due()/next_deadline(): it may compact the heap)."""
        entry.sched = when
        self._maybe_compact()
        # with a live item due no later than ``when``, keep it: due() re-pushes it at ``sched``
        if entry.heap_seq is None or when < entry.heap_time:
            self._push(path, entry, when)

    def _push(self, path: str, entry: _Entry, when: float) -> None:
        seq = next(self._seq)
        heapq.heappush(self._heap, (when, seq, path))
        entry.heap_seq = seq
        entry.heap_time = when

    def _maybe_compact(self) -> None:
        if len(self._heap) > 4 * len(self._table) + 1024:
            self._compact()

    def _compact(self) -> None:
        """Drop stale heap items (they pile up when many events pull checks earlier)."""
        live = []
        for path, entry in self._table.items():
            if entry.sched is not None:
                seq = next(self._seq)
                entry.heap_seq = seq
                entry.heap_time = entry.sched
                live.append((entry.sched, seq, path))
            else:
                entry.heap_seq = None
        heapq.heapify(live)
        self._heap = live
