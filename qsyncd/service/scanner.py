"""The scan stage: walk a root, compare it with the ledger, and hint every file that may need an upload.

Watchers are hints; the scan is the truth. A scan runs at start-up, on a timer, for a new directory,
after lost events (inotify overflow) and when a root appears. Its thread owns the queue of scan requests
(the same root and start queued twice cost one walk), and hands what it finds to the settle stage as
``scan`` hints, holding a directory's hints back while ``DirLister`` lists its key prefix.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qsyncd.pipeline import CountingQueue
from qsyncd.remote.base import Remote
from qsyncd.remoteindex import RemoteIndex
from qsyncd.scan import relpath, walk_dirs
from qsyncd.service.listing import LIST_CONCURRENCY, DirLister, list_tree
from qsyncd.service.roots import Root, Roots
from qsyncd.state import Ledger
from qsyncd.watch import Hint

ScanRequest = tuple[str, str, str]  # (root, start directory, reason)
POLL_SECONDS = 1.0  # the scan thread beats at least this often while it waits for requests
# A scan waits before its next directory while this many files are already waiting downstream (hints,
# settling, queued): a first sync of a big tree then holds about this many files in memory, not the whole
# tree (each waiting file costs about 0.5 KiB), and each directory is listed just before its files go up.
MAX_BACKLOG = 5_000
BACKLOG_POLL_SECONDS = 0.05


class Scanner:
    """Owns the scan requests and the walk; ``loop()`` is the scan thread."""

    def __init__(
        self,
        roots: Roots,
        ledger: Ledger,
        emit: Callable[[Hint], None],
        *,
        remote: Remote,
        index: RemoteIndex,
        clock: Callable[[], float],
        wall: Callable[[], float],
        beat: Callable[[], None],
        stopping: Callable[[], bool],
        log: Any,
        list_directories: bool,
        backlog: Callable[[], int] = lambda: 0,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self.roots = roots
        self.ledger = ledger
        self.emit = emit
        self.remote = remote
        self.index = index
        self.clock = clock
        self.wall = wall
        self.beat = beat
        self.stopping = stopping
        self.log = log
        self.list_directories = list_directories
        self._crowded: set[str] = set()  # roots whose prefix list_tree gave up on
        self.backlog = backlog  # files waiting downstream of the scan (MAX_BACKLOG)
        self.wait = wait
        self.requests: CountingQueue = CountingQueue()  # of ScanRequest, or None to stop
        self._lock = threading.Lock()
        self._pending: set[tuple[str, str]] = set()  # queued, not yet started
        self._scanning = 0
        # directories are listed on these threads (long-lived: each thread keeps its own connection)
        self._pool = ThreadPoolExecutor(max_workers=LIST_CONCURRENCY, thread_name_prefix="scan-list")

    def request(self, root: str, start: str, reason: str) -> bool:
        """Queue a scan; False if the same scan is already queued (an overflow storm costs one walk)."""
        with self._lock:
            if (root, start) in self._pending:
                return False
            self._pending.add((root, start))
        self.requests.put((root, start, reason))
        return True

    def busy(self) -> bool:
        """A scan is queued or running (for ``sync``'s "is everything done?")."""
        with self._lock:
            scanning = self._scanning
        return scanning > 0 or self.requests.unfinished_tasks > 0

    def close(self) -> None:
        """Stop the loop after the scan in progress and drop pending listings."""
        self.requests.put(None)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def loop(self) -> None:
        while not self.stopping():
            self.beat()
            try:
                req = self.requests.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            try:
                if req is None:
                    return
                with self._lock:
                    self._scanning += 1
                    self._pending.discard((req[0], req[1]))  # changes from now on need a new scan
                try:
                    self.scan(*req)
                finally:
                    with self._lock:
                        self._scanning -= 1
            finally:
                self.requests.task_done()

    def scan(self, root_path: str, start: str, reason: str) -> None:
        """Walk ``start`` below the root ``root_path``; hint every file the ledger does not hold as it is."""
        root = self.roots.get(root_path)
        if root is None or not os.path.isdir(start):
            return
        t0, cpu0 = self.clock(), time.thread_time()
        delete_mode = root.cfg.after_upload == "delete"  # an uploaded file still here was not deleted yet
        files = queued = 0
        now_wall = self.wall()

        def on_error(path: str, err: OSError) -> None:
            self.log.warning("scan_error", path=path, error=err.strerror or str(err), root=root.path)

        # A directory's hints are held back until it is done, so that a directory with many new files is listed
        # (one ListObjects per 1,000 keys, recorded in the RemoteIndex) before the uploader sees any of them and
        # HEADs each. The ledger is read one directory at a time too, as the walk enters it: the scan holds one
        # directory's records, never the whole root's.
        lister = DirLister(
            root,
            emit=self.emit,
            remote=self.remote,
            index=self.index,
            pool=self._pool,
            clock=self.clock,
            stopping=self.stopping,
            log=self.log,
            enabled=self.list_directories,
            before_first=(lambda: self._list_tree(root)) if start == root.path else None,
        )
        walked = walk_dirs(
            root.path,
            start,
            recursive=root.cfg.recursive,
            follow_symlinks=root.cfg.follow_symlinks,
            filt=root.filt,
            beat=self.beat,
            on_error=on_error,
        )
        # the walk only enters directories below start that dir_wanted lets through; start itself is checked here
        wanted: Callable[[str, str], bool] = root.filt.file_wanted
        if start != root.path and not root.filt.dir_wanted(relpath(root.path, start)):
            wanted = _nothing  # an excluded directory: nothing below it is wanted
        for directory, entries in walked:
            while self.backlog() > MAX_BACKLOG and not self.stopping():  # let the uploads catch up
                self.beat()
                self.wait(BACKLOG_POLL_SECONDS)
            known = self.ledger.versions_in(directory)  # name -> (size, mtime_ns, ino)
            lister.enter(directory)
            for name, rel, st in entries:
                if self.stopping():
                    return
                files += 1
                if not wanted(name, rel):
                    continue
                rec = known.get(name)
                # the version FileIdentity.same_version compares (size, mtime, inode), without building one per file
                if rec is not None and not delete_mode and rec == (st.st_size, st.st_mtime_ns, st.st_ino):
                    lister.known += 1
                    continue
                queued += 1
                idle = max(0.0, now_wall - st.st_mtime)
                lister.add(Hint("scan", os.path.join(directory, name), root.path, reason, idle_for=idle))
        lister.close()
        cpu = time.thread_time() - cpu0
        if start == root.path:
            self.roots.scanned(root.path, cpu)
        self.log.info(
            "rescan_finished",
            root=root.path,
            start=start,
            reason=reason,
            files=files,
            queued=queued,
            seconds=round(self.clock() - t0, 3),
            cpu_seconds=round(cpu, 3),
        )

    def _list_tree(self, root: Root) -> None:
        """A first sync's one listing of the root's whole prefix (``listing.list_tree``), instead of one per
        directory; a prefix found too crowded (or that failed) is not tried again by this process."""
        if root.path in self._crowded or self.ledger.holds_any_under(root.path):
            return
        if not list_tree(root, remote=self.remote, index=self.index, clock=self.clock, log=self.log):
            self._crowded.add(root.path)


def _nothing(name: str, rel: str) -> bool:
    return False
