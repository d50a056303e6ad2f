"""List a directory's key prefix before its new files reach the uploader, so that they cost no HEAD each.

``DirLister`` holds back one directory's scan hints while the scan walks it. A prefix is listed
(``list_objects(prefix, "/")``, recorded in the ``RemoteIndex``) when at least ``LIST_MIN_FILES`` of the
directory's files are queued and the expected listing pages (from the files of the directory the ledger
already has) cost at most half as many requests as the HEADs they save. Up to ``LIST_CONCURRENCY``
listings are in flight while the walk goes on (on a link with a round trip of tens of milliseconds, one at
a time would hold every upload back); a directory's hints are released when its listing has returned, and
``close()`` waits for all of them. A failed listing is logged (``listing_failed``) and turns listing off
for the rest of the scan: the uploader then HEADs as before.

``list_tree`` is a first sync's shortcut: when a scan of a root the ledger holds nothing of is about to
list its first directory (``before_first``), the root's whole key prefix is listed instead (no
delimiter), if that takes at most ``TREE_KEYS`` keys; the ``RemoteIndex`` then answers for every
directory below it, and ``DirLister`` lists none of them (a first sync into an empty prefix sends one
listing instead of one per directory) and hands their hints on at once, on the scan's
own thread. A scan that finds no new files lists nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from qsyncd import prefixes
from qsyncd.errors import SkipFile
from qsyncd.keys import object_key
from qsyncd.remote.base import ObjectInfo, Remote
from qsyncd.remoteindex import RemoteIndex, parent_prefix
from qsyncd.scan import relpath
from qsyncd.service.roots import Root
from qsyncd.watch import Hint

LIST_MIN_FILES = 8  # a scan lists a key prefix (instead of one HEAD per file) when it queues this many under it
LIST_CONCURRENCY = 4  # listings a scan keeps in flight while it walks on
LIST_PAGE = 1000  # keys per ListObjects page
TREE_KEYS = 10 * LIST_PAGE  # a root's prefix holding more keys than this is listed directory by directory


class DirLister:
    """Holds back one directory's hints at a time while one scan of ``root`` walks it."""

    def __init__(
        self,
        root: Root,
        *,
        emit: Callable[[Hint], None],
        remote: Remote,
        index: RemoteIndex,
        pool: ThreadPoolExecutor,
        clock: Callable[[], float],
        stopping: Callable[[], bool],
        log: Any,
        enabled: bool,
        before_first: Callable[[], None] | None = None,
    ) -> None:
        self.root = root
        self.emit = emit
        self.remote = remote
        self.index = index
        self.pool = pool
        self.clock = clock
        self.stopping = stopping
        self.log = log
        self.enabled = enabled
        self.dir: str | None = None
        self.known = 0  # files of this directory the ledger already holds (their objects are listed too)
        self.held: list[Hint] = []
        self._slots = threading.BoundedSemaphore(LIST_CONCURRENCY)
        self._before_first = before_first  # run once, by flush, before any directory is listed
        self._pending: list[Future[None]] = []

    def enter(self, directory: str) -> None:
        if directory != self.dir:
            self.flush()
            self.dir = directory

    def add(self, hint: Hint) -> None:
        if self.enabled:
            self.held.append(hint)
        else:
            self.emit(hint)

    def flush(self) -> None:
        held, known = self.held, self.known
        self.held, self.known = [], 0
        if len(held) < LIST_MIN_FILES or not self.enabled:
            self._release(held)
            return
        if self._answered(held):  # the index already answers for this directory: no listing, no hand-off
            self._release(held)
            return
        self._slots.acquire()  # bounds the listings (and the hints held for them) in flight
        try:
            future = self.pool.submit(self._list_then_release, held, known)
        except RuntimeError:  # the pool is shut down: the daemon is stopping
            self._slots.release()
            self._release(held)
            return
        self._pending = [f for f in self._pending if not f.done()] + [future]

    def close(self) -> None:
        """Flush the last directory and wait until every listing has returned and released its hints."""
        self.flush()
        wait(self._pending)
        self._pending = []

    def _list_then_release(self, held: list[Hint], known: int) -> None:
        try:
            self._list(held, known)
        except Exception as err:
            self.log.warning("listing_failed", error=repr(err), action="head_each_file")
        finally:
            self._release(held)
            self._slots.release()

    def _answered(self, held: list[Hint]) -> bool:
        """Whether the ``RemoteIndex`` is fresh for the key prefix of ``held`` (one directory's files, so one
        prefix unless the root's prefix is dated). Runs ``before_first`` (the tree listing) first, on the
        scan's thread: every listing waits for it anyway."""
        run, self._before_first = self._before_first, None
        if run is not None:
            run()
        if prefixes.is_template(self.root.cfg.prefix):
            return False
        try:
            prefix = self._prefix(held[0], dated=False)
        except (SkipFile, OSError):
            return False  # the pool's _list groups the others
        return self.index.fresh(prefix, self.clock())

    def _prefix(self, hint: Hint, *, dated: bool) -> str:
        """The key prefix ``hint``'s file goes under (a dated root's key needs the file's mtime)."""
        mtime = os.stat(hint.path).st_mtime if dated else None
        return parent_prefix(object_key(self.root.cfg.prefix, os.fsencode(relpath(self.root.path, hint.path)), mtime))

    def _release(self, held: list[Hint]) -> None:
        """Hand a directory's held hints on to the settle stage."""
        for hint in held:
            self.emit(hint)

    def _list(self, held: list[Hint], known: int) -> None:
        groups: dict[str, int] = {}
        dated = prefixes.is_template(self.root.cfg.prefix)  # the key depends on the file's mtime: stat it
        for hint in held:
            try:
                prefix = self._prefix(hint, dated=dated)
            except (SkipFile, OSError):
                continue
            groups[prefix] = groups.get(prefix, 0) + 1
        for prefix, n in groups.items():
            pages = 1 + (known + n) // LIST_PAGE
            if not self.enabled or n < LIST_MIN_FILES or 2 * pages > n or self.stopping():
                continue
            if self.index.fresh(prefix, self.clock()):  # a tree listing (or a recent one) already answers
                continue
            started = self.clock()
            try:
                objects = self.remote.list_objects(prefix, "/")
            except Exception as err:  # RemoteError, or a Remote without listings: HEAD as before
                self.enabled = False
                if not self.stopping():  # a listing cut short by shutdown is not news
                    self.log.warning(
                        "listing_failed",
                        prefix=prefix,
                        error=str(err),
                        code=getattr(err, "code", ""),
                        action="head_each_file",
                    )
                return
            kept = self.index.record_listing(prefix, objects, self.clock(), started=started)
            self.log.debug("prefix_listed", prefix=prefix, objects=len(objects), queued=n, kept=kept)


def list_tree(
    root: Root, *, remote: Remote, index: RemoteIndex, clock: Callable[[], float], log: Any, limit: int | None = None
) -> bool:
    """List everything under ``root``'s key prefix into ``index`` (``RemoteIndex.record_tree``) if it holds at
    most ``limit`` keys; True if the index now answers for the whole prefix. A templated prefix (the key
    depends on each file's mtime) is not listed; a failed listing is logged and changes nothing."""
    prefix = root.cfg.prefix
    if prefixes.is_template(prefix):
        return False
    limit = TREE_KEYS if limit is None else limit
    started = clock()
    found: list[ObjectInfo] = []
    try:
        for info in remote.iter_objects(prefix, page_size=LIST_PAGE):
            if len(found) >= limit:
                log.debug("prefix_listed", prefix=prefix, objects=len(found), kept=False, reason="too_many_keys")
                return False
            found.append(info)
    except Exception as err:  # RemoteError, or a Remote without listings: each directory is listed as before
        log.warning(
            "listing_failed", prefix=prefix, error=str(err), code=getattr(err, "code", ""), action="list_each_directory"
        )
        return False
    kept = index.record_tree(prefix, found, clock(), started=started)
    log.debug("prefix_listed", prefix=prefix, objects=len(found), kept=kept, tree=True)
    return kept
