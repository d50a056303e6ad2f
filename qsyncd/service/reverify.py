"""The periodic verify: notice objects deleted or replaced behind the service's back, and send them again.

The ledger says "uploaded", so nothing else ever looks at such a file again. Every
``[verify] interval_seconds`` (never at start-up: the first round comes one interval after start, so a
restart sends no request), one round lists each watch prefix once (``verify.list_prefixes``) and
merges the listing with the ledger's records, both in key order (``compare``, ``verify.audit``): no
walk, no hashing, no HEAD per file, and a page of the listing and a chunk of records in memory. Each
record whose object is missing, or listed with another size or ETag, is dropped from the ledger and
its file handed to the settle stage as a ``scan`` hint, the path a rescan takes, so the uploader
looks at the bucket again (its listing shortcut for the key forgotten) and uploads it. A file that
is gone from disk only loses its record: there is nothing to send.

Each object found logs ``object_missing`` or ``object_changed`` (path, key, reason) and counts in
``Counters.objects_lost``; each round ends with ``verify_finished`` (what it listed and what it cost)
or, on a remote error, ``verify_failed`` and another try after ``RETRY_AFTER_ERROR``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from qsyncd.config import Config, WatchConfig
from qsyncd.errors import RemoteError, StateError, TransientError
from qsyncd.remote.base import LIST_PAGE, ObjectInfo, Remote
from qsyncd.remoteindex import RemoteIndex
from qsyncd.service.roots import Roots
from qsyncd.service.store import make_remote
from qsyncd.state import FileRecord, Ledger
from qsyncd.state.ledger import BY_KEY_CHUNK
from qsyncd.stats import Counters
from qsyncd.verify import Finding, audit, list_prefixes
from qsyncd.watch import Hint

RETRY_AFTER_ERROR = 60.0  # a round that failed on a remote error is tried again after this long (at most)
UPLOAD_MARGIN = 1.0  # records written this close before the listing started (or after) wait for the next round


class PeriodicVerify:
    """``loop()`` is the verify thread; ``round()`` one comparison of ledger and bucket."""

    def __init__(
        self,
        remote: Remote,
        ledger: Ledger,
        roots: Roots,
        index: RemoteIndex,
        emit: Callable[[Hint], None],
        counters: Counters,
        *,
        interval: float,
        clock: Callable[[], float],
        wall: Callable[[], float],
        wait: Callable[[float], bool],
        log: Any,
        cfg: Config | None = None,
    ) -> None:
        self.remote = remote
        self.cfg = cfg  # given: each round runs in a child process built from it (audit_in_child)
        self.ledger = ledger
        self.roots = roots
        self.index = index
        self.emit = emit  # the hint queue's put: the settle stage takes it from there
        self.counters = counters
        self.interval = interval
        self.clock = clock
        self.wall = wall
        self.wait = wait  # waits up to N seconds; True when the daemon is stopping
        self.log = log

    def loop(self) -> None:
        delay = self.interval
        while not self.wait(delay):
            try:
                self.round()
                delay = self.interval
            except RemoteError as err:
                delay = min(self.interval, RETRY_AFTER_ERROR)
                self.log.warning("verify_failed", error=str(err), retry_in=delay)

    def round(self) -> list[Finding]:
        """List, compare, send again what is missing or changed; returns what was found."""
        t0, cpu0 = self.clock(), time.thread_time()
        before = self.wall() - UPLOAD_MARGIN
        roots = list(self.roots)
        watches = tuple(r.cfg for r in roots)
        child_cpu, child_peak = 0.0, 0
        if self.cfg is not None:  # in a child process: the round's memory goes back when it exits
            (lost, (records, checked, objects, prefixes)), child_cpu, child_peak = audit_in_child(
                self.cfg, watches, before
            )
        else:
            lost, (records, checked, objects, prefixes) = compare(self.remote, self.ledger, watches, before)
        acted = [f for f, rec, root in lost if self._send_again(f, rec, root)]
        self.counters.verified()
        self.log.info(
            "verify_finished",
            prefixes=prefixes,
            records=records,
            checked=checked,
            objects=objects,
            missing=sum(f.kind == "missing" for f in acted),
            changed=sum(f.kind == "changed" for f in acted),
            seconds=round(self.clock() - t0, 3),
            cpu_seconds=round(time.thread_time() - cpu0 + child_cpu, 3),  # the child's whole CPU, start-up included
            child_peak_rss_kib=child_peak,  # the child's VmHWM (0: the round ran in this process)
        )
        return acted

    def _send_again(self, found: Finding, compared: FileRecord, root: str) -> bool:
        """Drop the record and hint the file, unless the record changed since it was read (a new upload)."""
        path = compared.path
        if self.ledger.get(path) != compared:
            return False
        self.ledger.forget(path)
        self.index.forget(found.key)  # a listing the scan made earlier must not vouch for the old object
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if st is not None:
            self.emit(Hint("scan", path, root, "verify", idle_for=max(0.0, self.wall() - st.st_mtime)))
        self.counters.object_lost(found.kind)
        self.log.warning(
            "object_missing" if found.kind == "missing" else "object_changed",
            path=path,
            key=found.key,
            reason=found.reason,
            detail=found.detail,
            on_disk=st is not None,
            action="upload_again" if st is not None else "record_dropped",
        )
        return True


Lost = list[tuple[Finding, FileRecord, str]]  # what a round found: the finding, the record compared, its root
Figures = tuple[int, int, int, list[str]]  # records, records checked, objects listed, prefixes listed


def compare(
    remote: Remote,
    ledger: Ledger,
    watches: tuple[WatchConfig, ...],
    before: float,
    *,
    page_size: int = LIST_PAGE,
    chunk: int = BY_KEY_CHUNK,
) -> tuple[Lost, Figures]:
    """One round's listing (one per watch prefix) merged with the ledger's records of the watch roots.

    Both are read in key order (``Remote.iter_objects`` page by page, ``Ledger.uploaded_by_key`` a chunk
    at a time) and merged by ``verify.audit``, so the round holds a page and a chunk, not the bucket and
    the ledger. The prefixes of ``list_prefixes`` are sorted and none starts another, so their listings
    one after the other are one listing in key order. Records of paths under no watch root are left out;
    a record whose key is under no listed prefix is missing, as it is from the bucket's listings.
    Returns what was lost, by watch and path (as ``audit`` per root did), and the figures."""
    prefixes = list_prefixes(watches)
    roots = [(str(w.path), str(w.path).rstrip("/") + "/") for w in watches]
    bases = tuple(base for _, base in roots)
    listing = _Listing(remote, prefixes, page_size)
    tally = [0, 0]  # records under a watch root, of which uploaded before ``before``

    def watched() -> Iterator[FileRecord]:
        for rec in ledger.uploaded_by_key(chunk):
            if rec.path.startswith(bases):
                tally[0] += 1
                tally[1] += rec.uploaded_at < before
                yield rec

    lost: Lost = []
    for found, rec in audit(watched(), listing, before=before):
        lost.append((found, rec, next(root for root, base in roots if rec.path.startswith(base))))
    order = {root: i for i, (root, _) in enumerate(roots)}
    lost.sort(key=lambda x: (order[x[2]], x[1].path))
    return lost, (tally[0], tally[1], listing.count, prefixes)


class _Listing:
    """The listings of ``prefixes`` one after the other, counted, checked to come in strictly ascending
    key order (the merge relies on it: a store that broke it would make listed objects look missing)."""

    def __init__(self, remote: Remote, prefixes: list[str], page_size: int) -> None:
        self.remote = remote
        self.prefixes = prefixes
        self.page_size = page_size
        self.count = 0

    def __iter__(self) -> Iterator[ObjectInfo]:
        last: str | None = None
        for prefix in self.prefixes:
            for obj in self.remote.iter_objects(prefix, page_size=self.page_size):
                if last is not None and obj.key <= last:
                    raise TransientError(
                        f"the listing of {prefix!r} gave {obj.key!r} after {last!r}: not in key order, so the "
                        "verify cannot tell what is missing; nothing was changed",
                        code="listing_out_of_order",
                        operation="ListObjects",
                        key=prefix,
                    )
                last = obj.key
                self.count += 1
                yield obj


def audit_in_child(
    cfg: Config, watches: tuple[WatchConfig, ...], before: float
) -> tuple[tuple[Lost, Figures], float, int]:
    """``compare`` in a fresh interpreter (multiprocessing "spawn", never a fork of the threaded service).

    A round once held the whole listing and a root's records (about 1.3 KiB per record at its peak) and
    CPython kept most of that after it was freed: the service's RSS stayed ~55 MiB higher at 100,000
    files. The merge now holds a page and a chunk; the child stays so that whatever a round allocates
    goes back when it exits and the service's RSS does not depend on the round at all, for ~0.3 CPU s
    (an interpreter's start) per round. The child opens the ledger read-only (WAL: beside the
    service's writes) and its own connection to the store. Returns
    ``compare``'s answer, the CPU seconds the child used, its start-up included, and its peak RSS in KiB
    (its own ``ru_maxrss``, VmHWM on Linux, read at the end of the round: nothing grows after it)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        result, error, cpu, peak = pool.submit(_child_round, cfg, watches, before).result()
    if error:
        raise TransientError(error, code="verify_round_failed", operation="ListObjects")
    assert result is not None
    return result, cpu, peak


def _child_round(
    cfg: Config, watches: tuple[WatchConfig, ...], before: float
) -> tuple[tuple[Lost, Figures] | None, str, float, int]:
    """The child's side: errors come back as text (a RemoteError does not pickle with its fields)."""
    result: tuple[Lost, Figures] | None = None
    error = ""
    try:
        remote = make_remote(cfg)
        ledger = Ledger(cfg.state.dir, readonly=True, missing_ok=True)
        try:
            result = compare(remote, ledger, watches, before)
        finally:
            ledger.close()
            close = getattr(remote, "close", None)
            if close is not None:
                close()
    except (RemoteError, StateError) as err:
        error = str(err)
    return result, error, time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
