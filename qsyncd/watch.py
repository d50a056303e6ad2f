"""Turn filesystem notifications into hints for the settle stage.

Events are hints, never the truth: watchdog drops nothing it can see, but the kernel can
(inotify queue overflow), files created inside a new directory get no close event, and a
watch limit can stop a subtree being watched. So every handler only enqueues a small
``Hint``; the daemon reacts to ``rescan`` hints with a directory scan, and a periodic
reconciliation scan covers whatever is still missed.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

HintKind = Literal["write", "closed", "scan", "deleted", "rescan"]

WATCH_LIMIT_HINT = (
    "the inotify watch limit is reached: raise it with "
    "`sysctl fs.inotify.max_user_watches=524288` (and persist it in /etc/sysctl.d/), "
    'or set watcher = "polling" for this root'
)
INSTANCE_LIMIT_HINT = (
    "the inotify instance limit is reached: raise `fs.inotify.max_user_instances`, "
    'or set watcher = "polling" for this root'
)


@dataclass(frozen=True)
class Hint:
    """Something may have happened at ``path`` (a file, or a directory for ``rescan``)."""

    kind: HintKind
    path: str
    root: str
    reason: str = ""
    idle_for: float = 0.0  # scans: how long the file is already known unchanged (age of its mtime)


def _fs(path: str | bytes) -> str:
    return os.fsdecode(path)


# What the handler uses. Leaving out opens and read-only closes keeps our own reads of a file (every
# upload opens it) out of the kernel queue, so they cannot overflow it and cost a rescan.
EVENT_FILTER: list[type[FileSystemEvent]] = [
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
]


class _Handler(FileSystemEventHandler):
    """Enqueue-only handler: watchdog's dispatcher holds a lock while calling us."""

    def __init__(self, root: str, emit: Callable[[Hint], None]) -> None:
        self.root = root
        self.emit = emit

    def on_any_event(self, event: FileSystemEvent) -> None:
        root, emit = self.root, self.emit
        src = _fs(event.src_path)
        if isinstance(event, (DirCreatedEvent,)):
            emit(Hint("rescan", src, root, "directory_created"))
        elif isinstance(event, DirMovedEvent):
            emit(Hint("rescan", _fs(event.dest_path), root, "directory_moved_in"))
            emit(Hint("deleted", src, root, "directory_moved_away"))
        elif isinstance(event, DirDeletedEvent):
            emit(Hint("deleted", src, root, "directory_deleted"))
        elif isinstance(event, FileMovedEvent):
            emit(Hint("deleted", src, root, "moved_away"))
            emit(Hint("closed", _fs(event.dest_path), root, "moved_in"))
        elif isinstance(event, FileClosedEvent):
            emit(Hint("closed", src, root, "closed_after_write"))
        elif isinstance(event, FileCreatedEvent):
            # Not "write": a file moved in from outside the tree (unpaired IN_MOVED_TO) and the files
            # watchdog synthesizes for a new directory arrive as created and never get a close event;
            # a real writer's first write (IN_MODIFY) marks the file open again right after this.
            emit(Hint("closed", src, root, "created"))
        elif isinstance(event, (FileModifiedEvent, FileOpenedEvent)):
            if isinstance(event, FileOpenedEvent):
                return  # opening for read is not a change; writes show up as modified
            emit(Hint("write", src, root, event.event_type))
        elif isinstance(event, FileDeletedEvent):
            emit(Hint("deleted", src, root, "deleted"))


class _OverflowWatch(logging.Handler):
    """watchdog only *logs* an inotify queue overflow; turn that log line into rescan hints."""

    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.on_overflow()


class WatchError(Exception):
    """A root could not be watched; ``str()`` says why and what to do."""


def explain_os_error(err: OSError, root: str) -> str:
    if err.errno == errno.ENOSPC:
        return f"cannot watch {root}: {WATCH_LIMIT_HINT}"
    if err.errno == errno.EMFILE:
        return f"cannot watch {root}: {INSTANCE_LIMIT_HINT}"
    if err.errno == errno.ENOENT:
        return f"cannot watch {root}: it does not exist (qsyncd waits for it to appear)"
    if err.errno == errno.EACCES:
        return f"cannot watch {root}: permission denied (the service user must be able to read it)"
    return f"cannot watch {root}: {err.strerror or err}"


def watch_limit_reached(path: str) -> bool:
    """True when this user cannot add one more inotify watch (probed with a throw-away instance)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        return False
    try:
        wd = libc.inotify_add_watch(fd, os.fsencode(path), 0x2)  # IN_MODIFY
        return wd < 0 and ctypes.get_errno() == errno.ENOSPC
    finally:
        os.close(fd)


class Watcher:
    """Owns the watchdog observers (one inotify observer, one polling observer if any root polls).

    ``hints`` is the queue the settle stage drains. ``watch()``/``unwatch()`` may be called at
    any time (config reload).
    """

    def __init__(self, hints: queue.Queue[Hint] | queue.SimpleQueue[Hint]) -> None:
        self.hints = hints
        self._lock = threading.Lock()
        self._observers: dict[str, BaseObserver] = {}
        self._watches: dict[str, tuple[str, ObservedWatch]] = {}
        self._overflow = _OverflowWatch(self._on_overflow)
        for name in ("watchdog.observers.inotify", "watchdog.observers.inotify_c"):
            logging.getLogger(name).addHandler(self._overflow)

    def _on_overflow(self) -> None:
        with self._lock:
            roots = list(self._watches)
        for root in roots:
            self.hints.put(Hint("rescan", root, root, "inotify_overflow"))

    def _observer(self, kind: str, poll_interval: float) -> BaseObserver:
        name = kind if kind == "inotify" else f"polling:{poll_interval}"
        obs = self._observers.get(name)
        if obs is None:
            obs = Observer() if kind == "inotify" else PollingObserver(timeout=poll_interval)
            obs.daemon = True
            obs.start()
            self._observers[name] = obs
        return obs

    def watch(self, root: str, *, recursive: bool, watcher: str = "inotify", poll_interval: float = 5.0) -> None:
        """Start watching ``root``; raises ``WatchError`` with an actionable message."""
        with self._lock:
            if root in self._watches:
                return
            obs = self._observer(watcher, poll_interval)
            try:
                w = obs.schedule(_Handler(root, self.hints.put), root, recursive=recursive, event_filter=EVENT_FILTER)
            except OSError as err:
                raise WatchError(explain_os_error(err, root)) from err
            self._watches[root] = (watcher if watcher == "inotify" else f"polling:{poll_interval}", w)
            if watcher == "inotify" and recursive and watch_limit_reached(root):
                # watchdog silently skips subdirectories it cannot watch: say so (files there are only
                # found by rescans until the limit is raised)
                raise WatchError(f"cannot watch every directory under {root}: {WATCH_LIMIT_HINT}")

    def unwatch(self, root: str) -> None:
        with self._lock:
            entry = self._watches.pop(root, None)
            if entry is None:
                return
            name, w = entry
            try:
                self._observers[name].unschedule(w)
            except (KeyError, OSError):
                pass

    def roots(self) -> list[str]:
        with self._lock:
            return list(self._watches)

    def alive(self) -> bool:
        """True while every observer thread (and its emitters) still runs."""
        with self._lock:
            for obs in self._observers.values():
                if not obs.is_alive():
                    return False
                for em in obs.emitters:
                    if not em.is_alive():
                        return False
            return True

    def stop(self) -> None:
        for name in ("watchdog.observers.inotify", "watchdog.observers.inotify_c"):
            logging.getLogger(name).removeHandler(self._overflow)
        with self._lock:
            observers = list(self._observers.values())
            self._observers.clear()
            self._watches.clear()
        for obs in observers:
            obs.stop()
        for obs in observers:
            obs.join(timeout=5)
