"""The settle stage: take every hint, run the ``Settler``, and queue each finished file for upload.

One thread owns the ``Settler`` (a pure state machine, ``qsyncd.settle``) and the set of paths found by a
scan (queued after files seen by events). Hints come from the watchers, the scans and the upload workers
(a file that changed while it was sent); a rescan hint (a new directory, lost events) becomes a scan request.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from typing import Any

from qsyncd.identity import FileIdentity
from qsyncd.pipeline import PRIORITY_EVENT, PRIORITY_SCAN, CountingQueue, Pipeline
from qsyncd.scan import relpath
from qsyncd.service.roots import LIMITED_ACTION, Roots
from qsyncd.settle import Settler
from qsyncd.watch import WATCH_LIMIT_HINT, Hint, watch_limit_reached

POLL_SECONDS = 0.5  # the settle thread looks at its queue and beats at least this often
HINTS_PER_ROUND = 5000  # hints taken in one go before due files are checked again


class SettleStage:
    """Owns the settler; ``loop()`` is the settle thread."""

    def __init__(
        self,
        roots: Roots,
        settler: Settler,
        pipeline: Pipeline,
        hints: CountingQueue,
        *,
        request_scan: Callable[[str, str, str], bool],
        clock: Callable[[], float],
        beat: Callable[[], None],
        stopping: Callable[[], bool],
        log: Any,
    ) -> None:
        self.roots = roots
        self.settler = settler
        self.pipeline = pipeline
        self.hints = hints  # of Hint; each is task_done() once its file is in the settler (or dropped)
        self.request_scan = request_scan
        self.clock = clock
        self.beat = beat
        self.stopping = stopping
        self.log = log
        self.handing_over = False  # due files are being checked and queued (see Daemon.drained)
        self._from_scan: set[str] = set()

    def loop(self) -> None:
        while not self.stopping():
            self.beat()
            nd = self.settler.next_deadline()
            timeout = POLL_SECONDS if nd is None else min(POLL_SECONDS, max(0.0, nd - self.clock()))
            try:
                self.take(self.hints.get(timeout=timeout))
                for _ in range(HINTS_PER_ROUND):
                    self.take(self.hints.get_nowait())
            except queue.Empty:
                pass
            self.hand_over_due(self.clock())

    def take(self, hint: Hint) -> None:
        """One hint from the queue into the settler (or a scan request); the hint is done only then."""
        try:
            self._on_hint(hint)
        finally:
            self.hints.task_done()

    def hand_over_due(self, now: float) -> None:
        """Look at every file whose check is due; queue the finished ones for upload."""
        self.handing_over = True
        try:
            for path in self.settler.due(now):
                try:
                    ident: FileIdentity | None = FileIdentity.of(os.lstat(path))
                except OSError:
                    ident = None
                verdict = self.settler.check(path, now, ident)
                if verdict == "ready":
                    self._queue(path)
                elif verdict == "gone":
                    self._from_scan.discard(path)
        finally:
            self.handing_over = False

    def _on_hint(self, hint: Hint) -> None:
        now = self.clock()
        if hint.kind == "rescan":
            self._on_rescan(hint, now)
            return
        if hint.kind == "deleted":
            self.settler.forget(hint.path)
            self.pipeline.discard(hint.path)
            self._from_scan.discard(hint.path)
            return
        root = self.roots.get(hint.root)
        if root is None:
            return
        rel = relpath(root.path, hint.path)
        if rel.startswith("../") or not root.filt.wanted(rel):
            return
        if hint.kind == "scan":
            if hint.path not in self.settler:
                self._from_scan.add(hint.path)
        else:
            self._from_scan.discard(hint.path)
        self.settler.event(hint.path, now, hint.kind, idle_for=hint.idle_for)

    def _on_rescan(self, hint: Hint, now: float) -> None:
        root = self.roots.get(hint.root)
        if root is None:
            return
        if (
            hint.reason == "directory_created"
            and not root.limited
            and root.cfg.watcher == "inotify"
            and root.cfg.recursive
            and watch_limit_reached(root.path)
        ):
            self.roots.mark_limited(root, now)  # watchdog skipped the new directory silently
            self.log.error(
                "watch_failed",
                root=root.path,
                error=f"cannot watch new directories under {root.path}: {WATCH_LIMIT_HINT}",
                action=LIMITED_ACTION,
            )
        queued = self.request_scan(root.path, hint.path, hint.reason)
        if hint.reason == "inotify_overflow" and queued:  # once per rescan, not once per overflow
            self.log.warning("events_lost", root=root.path, reason=hint.reason, action="rescan")

    def _queue(self, path: str) -> None:
        prio = PRIORITY_SCAN if path in self._from_scan else PRIORITY_EVENT
        self._from_scan.discard(path)
        if self.roots.root_for(path) is None:
            return
        # What the file is (FIFO, symlink, unreadable...) is decided once, by the worker that takes it.
        self.log.debug("file_settled", path=path)
        self.pipeline.submit(path, prio)
