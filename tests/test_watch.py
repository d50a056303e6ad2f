"""qsyncd.watch: notifications become hints. The handler is fed watchdog events by hand; the Watcher runs
real inotify on a tmp dir (it waits on its hint queue, it never sleeps)."""

from __future__ import annotations

import errno
import logging
import os
import queue
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
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
)

from qsyncd.watch import (
    INSTANCE_LIMIT_HINT,
    WATCH_LIMIT_HINT,
    Hint,
    Watcher,
    WatchError,
    _Handler,
    _OverflowWatch,
    explain_os_error,
)

R = "/r"


def hints_of(event: object) -> list[tuple[str, str, str]]:
    got: list[Hint] = []
    _Handler(R, got.append).on_any_event(event)  # type: ignore[arg-type]
    assert all(h.root == R for h in got)
    return [(h.kind, h.path, h.reason) for h in got]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (DirCreatedEvent("/r/d"), [("rescan", "/r/d", "directory_created")]),
        (
            DirMovedEvent("/r/old", "/r/new"),
            [("rescan", "/r/new", "directory_moved_in"), ("deleted", "/r/old", "directory_moved_away")],
        ),
        (DirDeletedEvent("/r/d"), [("deleted", "/r/d", "directory_deleted")]),
        (FileMovedEvent("/r/a.tmp", "/r/a"), [("deleted", "/r/a.tmp", "moved_away"), ("closed", "/r/a", "moved_in")]),
        (FileClosedEvent("/r/a"), [("closed", "/r/a", "closed_after_write")]),
        (FileCreatedEvent("/r/a"), [("closed", "/r/a", "created")]),
        (FileModifiedEvent("/r/a"), [("write", "/r/a", "modified")]),
        (FileOpenedEvent("/r/a"), []),
        (FileDeletedEvent("/r/a"), [("deleted", "/r/a", "deleted")]),
        (FileCreatedEvent(b"/r/caf\xe9"), [("closed", os.fsdecode(b"/r/caf\xe9"), "created")]),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, list) else "",
)
def test_each_event_becomes_its_hints(event: object, expected: list[tuple[str, str, str]]) -> None:
    assert expected == hints_of(event)


def test_os_errors_are_explained_with_what_to_do() -> None:
    def msg(code: int) -> str:
        return explain_os_error(OSError(code, os.strerror(code)), "/srv/x")

    assert msg(errno.ENOSPC) == f"cannot watch /srv/x: {WATCH_LIMIT_HINT}"
    assert msg(errno.EMFILE) == f"cannot watch /srv/x: {INSTANCE_LIMIT_HINT}"
    assert "does not exist (qsyncd waits for it to appear)" in msg(errno.ENOENT)
    assert "permission denied" in msg(errno.EACCES)
    assert msg(errno.EIO) == f"cannot watch /srv/x: {os.strerror(errno.EIO)}"


def test_only_an_overflow_log_line_triggers_the_callback() -> None:
    calls: list[int] = []
    handler = _OverflowWatch(lambda: calls.append(1))
    logger = logging.getLogger("test_watch.overflow")
    logger.addHandler(handler)
    try:
        logger.warning("inotify event queue overflowed")
        logger.warning("something else")
        logger.info("overflow but only info")  # below the handler's level
    finally:
        logger.removeHandler(handler)
    assert [1] == calls


@pytest.fixture
def watcher() -> Iterator[Watcher]:
    w = Watcher(queue.Queue())
    yield w
    w.stop()


def next_hint(w: Watcher, pred: Callable[[Hint], bool], timeout: float = 10.0) -> Hint:
    """The first hint on the queue matching ``pred`` (blocks on the queue; raises queue.Empty in time)."""
    while True:
        h = w.hints.get(timeout=timeout)
        if pred(h):
            return h


def test_a_real_write_and_a_new_directory_give_hints(tmp_path: Path, watcher: Watcher) -> None:
    watcher.watch(str(tmp_path), recursive=True)
    assert [str(tmp_path)] == watcher.roots() and watcher.alive()
    (tmp_path / "a.txt").write_bytes(b"x")
    h = next_hint(watcher, lambda h: h.kind == "closed" and h.reason == "closed_after_write")
    assert (str(tmp_path / "a.txt"), str(tmp_path)) == (h.path, h.root)
    (tmp_path / "sub").mkdir()
    assert next_hint(watcher, lambda h: h.kind == "rescan").path == str(tmp_path / "sub")


def test_an_inotify_overflow_asks_for_a_rescan_of_every_root(tmp_path: Path, watcher: Watcher) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    watcher.watch(str(a), recursive=True)
    watcher.watch(str(b), recursive=False)
    logging.getLogger("watchdog.observers.inotify").warning("Inotify event queue overflowed")
    got = {watcher.hints.get(timeout=5) for _ in range(2)}
    assert {Hint("rescan", str(r), str(r), "inotify_overflow") for r in (a, b)} == got


def test_unwatch_stops_hints_for_that_root(tmp_path: Path, watcher: Watcher) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    watcher.watch(str(a), recursive=True)
    watcher.watch(str(b), recursive=True)
    watcher.unwatch(str(a))
    watcher.unwatch(str(a))  # twice is harmless
    (a / "quiet.txt").write_bytes(b"x")
    (b / "loud.txt").write_bytes(b"x")
    h = next_hint(watcher, lambda h: h.kind == "closed")
    assert h.path == str(b / "loud.txt")  # the write in a (before b's) produced no hint
    assert [str(b)] == watcher.roots()


def test_a_missing_root_is_a_watch_error_saying_qsyncd_waits(tmp_path: Path, watcher: Watcher) -> None:
    with pytest.raises(WatchError, match="does not exist"):
        watcher.watch(str(tmp_path / "nope"), recursive=True)
    assert [] == watcher.roots()
