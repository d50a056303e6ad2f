"""The watch roots at run time: which path belongs to which root, which roots are watched, when each is rescanned.

One ``Roots`` object owns this state. The settle and upload stages only ask ``root_for(path)``; the
daemon's housekeeping arms roots (``arm``), notices roots that appear or vanish (``supervise``) and asks
which are due for a periodic rescan (``due_for_rescan``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from qsyncd.config import SettleConfig, WatchConfig
from qsyncd.keys import PathFilter
from qsyncd.watch import Watcher, WatchError

ROOT_CHECK_SECONDS = 10.0  # a missing root is looked for this often; so is a small half-watched root
# A half-watched root is rescanned as often as this share of one core allows (its last full rescan's CPU
# seconds / share), never more often than ROOT_CHECK_SECONDS and never less than the configured interval:
# a tree of 1,000 files is rescanned every 10 s, one of 1,000,000 (~6 CPU s a rescan) every ~5 minutes.
LIMITED_SCAN_SHARE = 0.02
LIMITED_ACTION = (
    f"rescanning it every {ROOT_CHECK_SECONDS:g} s, or less often for a tree whose rescans would take more than "
    f"{LIMITED_SCAN_SHARE:.0%} of a core"
)
LIMIT_ERROR_MARK = "max_user_watches"  # in a WatchError when the kernel's watch limit was hit


@dataclass
class Root:
    """One watch root: its config, its path filter, whether it is watched and when it is rescanned next."""

    cfg: WatchConfig
    path: str
    filt: PathFilter
    watched: bool = False
    next_rescan: float = 0.0
    limited: bool = False  # the inotify watch limit left directories unwatched: rescan often
    scan_cpu: float = 0.0  # CPU seconds of the root's last full rescan (how often a limited root may be rescanned)


class Roots:
    """The registry of roots (replaced as a whole on reload; reads are safe from any thread)."""

    def __init__(self, watches: tuple[WatchConfig, ...], log: Any) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._roots: dict[str, Root] = {}
        self.configure(watches)

    def configure(self, watches: tuple[WatchConfig, ...]) -> tuple[list[str], list[str]]:
        """Take a (re-read) config's roots; returns (added, removed) paths. Kept roots keep their state."""
        new: dict[str, Root] = {}
        for w in watches:
            path = str(w.path)
            root = self._roots.get(path) or Root(w, path, PathFilter(w.include, w.exclude))
            root.cfg, root.filt = w, PathFilter(w.include, w.exclude)
            new[path] = root
        with self._lock:
            old, self._roots = self._roots, new
        return sorted(set(new) - set(old)), sorted(set(old) - set(new))

    def __iter__(self) -> Iterator[Root]:
        return iter(list(self._roots.values()))

    def __len__(self) -> int:
        return len(self._roots)

    def get(self, path: str) -> Root | None:
        return self._roots.get(path)

    def paths(self) -> list[str]:
        return list(self._roots)

    def watched(self) -> dict[str, bool]:
        return {p: r.watched for p, r in self._roots.items()}

    def root_for(self, path: str) -> Root | None:
        """The root ``path`` is under (the deepest, though roots never overlap), or None."""
        best = None
        for rpath, root in self._roots.items():
            inside = path == rpath or path.startswith(rpath.rstrip("/") + "/")
            if inside and (best is None or len(rpath) > len(best.path)):
                best = root
        return best

    # -- watching -------------------------------------------------------------------------------

    def arm(self, root: Root, watcher: Watcher) -> None:
        """Start watching ``root`` (if it exists); a failure is logged, the root is rescanned instead."""
        if root.watched:
            return
        if not os.path.isdir(root.path):
            self.log.warning(
                "watch_root_missing",
                root=root.path,
                hint=f"qsyncd waits for the directory to appear and checks again every {ROOT_CHECK_SECONDS:g} s",
            )
            return
        try:
            watcher.watch(
                root.path,
                recursive=root.cfg.recursive,
                watcher=root.cfg.watcher,
                poll_interval=root.cfg.poll_interval_seconds,
            )
            root.watched = True
            self.log.info("watch_armed", root=root.path, watcher=root.cfg.watcher, recursive=root.cfg.recursive)
        except WatchError as err:
            root.limited = root.limited or LIMIT_ERROR_MARK in str(err)
            action = {"action": LIMITED_ACTION} if root.limited else {}
            self.log.error("watch_failed", root=root.path, error=str(err), **action)

    def reconfigure(
        self, watches: tuple[WatchConfig, ...], watcher: Watcher, request_scan: Callable[[str, str, str], bool]
    ) -> tuple[list[str], list[str]]:
        """A reloaded config: stop watching removed roots, watch and scan added ones; returns (added, removed)."""
        added, removed = self.configure(watches)
        for path in removed:
            watcher.unwatch(path)
        for path in added:
            root = self._roots[path]
            self.arm(root, watcher)
            request_scan(root.path, root.path, "config_reloaded")
        return added, removed

    def supervise(self, watcher: Watcher) -> list[Root]:
        """Arm roots that appeared (returned: they need a scan); stop watching roots that vanished."""
        appeared = []
        for root in self:
            exists = os.path.isdir(root.path)
            if not root.watched and exists:
                self.arm(root, watcher)
                appeared.append(root)
            elif root.watched and not exists:
                self.log.warning("watch_root_vanished", root=root.path)
                watcher.unwatch(root.path)
                root.watched = False
        return appeared

    # -- rescans --------------------------------------------------------------------------------

    @staticmethod
    def rescan_every(root: Root, settle: SettleConfig) -> float:
        """How long until a root's next periodic rescan: ``limited_rescan_every`` for a half-watched root,
        else ``periodic_rescan_every``."""
        interval = settle.rescan_interval_seconds
        if root.limited:
            return limited_rescan_every(interval, root.scan_cpu)
        return periodic_rescan_every(interval, root.scan_cpu, settle.rescan_cpu_share)

    def schedule_rescans(self, now: float, settle: SettleConfig) -> None:
        for root in self:
            root.next_rescan = now + self.rescan_every(root, settle)

    def due_for_rescan(self, now: float, settle: SettleConfig) -> list[Root]:
        """Roots whose periodic rescan is due (each is rescheduled)."""
        due = []
        for root in self:
            if settle.rescan_interval_seconds > 0 and now >= root.next_rescan:
                root.next_rescan = now + self.rescan_every(root, settle)
                due.append(root)
        return due

    def scanned(self, path: str, cpu_seconds: float) -> None:
        """A full rescan of the root at ``path`` took ``cpu_seconds`` (the scan thread's)."""
        root = self._roots.get(path)
        if root is not None:
            root.scan_cpu = cpu_seconds

    def mark_limited(self, root: Root, now: float) -> None:
        """The watch limit left new directories of ``root`` unwatched: rescan it soon and often."""
        root.limited = True
        root.next_rescan = min(root.next_rescan, now + ROOT_CHECK_SECONDS)


def periodic_rescan_every(interval: float, scan_cpu: float, share: float) -> float:
    """Seconds between periodic rescans of a watched root: ``interval`` ([settle] rescan_interval_seconds),
    stretched so that rescanning takes at most ``share`` of a core ([settle] rescan_cpu_share, 0: never
    stretched) given the root's last full rescan's CPU seconds. At the defaults (600 s, 0.5 %) a tree of
    100,000 files is rescanned every 10 minutes and one of 1,000,000 (~6 CPU s a rescan) about every 20."""
    return max(interval, scan_cpu / share) if share > 0 else interval


def limited_rescan_every(interval: float, scan_cpu: float) -> float:
    """Seconds between rescans of a root the watch limit left half-watched: often enough that files in its
    unwatched directories arrive soon, rarely enough that rescanning costs at most ``LIMITED_SCAN_SHARE`` of
    a core; never less often than the configured ``interval``."""
    return min(interval, max(ROOT_CHECK_SECONDS, scan_cpu / LIMITED_SCAN_SHARE))
