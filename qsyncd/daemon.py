"""Wire the stages together and keep them alive: watch -> settle -> upload -> remote.

Threads (each does one thing and beats the ``Liveness`` monitor, so a wedged pipeline stops
the systemd watchdog pings and gets us restarted):

- watchdog observers: enqueue ``Hint``s only;
- ``settle``: drains hints, runs the ``Settler`` state machine, stats due files, hands finished
  files to the ``Pipeline``; also schedules rescans and publishes status;
- ``scan``: walks roots (at start-up, on a timer, for new directories, after lost events);
- ``upload-N``: take files from the pipeline and run ``Uploader.upload``;
- ``maintenance``: aborts multipart uploads whose file is gone or changed, and orphans.

``Daemon.run()`` is the service (``qsyncd run``); ``Daemon.run_once()`` is ``qsyncd sync``.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qsyncd import md5pair
from qsyncd.config import Config, WatchConfig, load_config
from qsyncd.errors import (
    BucketMissing,
    FileChanged,
    PermanentError,
    QsyncdError,
    RemoteError,
    SkipFile,
    StoreRefused,
    Unreachable,
)
from qsyncd.events import get_logger
from qsyncd.keys import PathFilter, classify, object_key
from qsyncd.notify import Liveness, Notifier, WatchdogPinger
from qsyncd.pipeline import PRIORITY_EVENT, PRIORITY_SCAN, CountingQueue, Item, Pipeline
from qsyncd.remote.base import Remote
from qsyncd.remoteindex import RemoteIndex, parent_prefix
from qsyncd.retry import backoff_delay
from qsyncd.scan import relpath, walk
from qsyncd.settle import FileSig, Settler
from qsyncd.source import RateLimiter
from qsyncd.state import FileRecord, Ledger, StateLock
from qsyncd.upload import Interrupted, Outcome, Uploader, UploadSettings, _same_identity
from qsyncd.watch import WATCH_LIMIT_HINT, Hint, Watcher, WatchError, watch_limit_reached

STATUS_EVERY = 2.0
MAINTENANCE_EVERY = 6 * 3600.0
ORPHAN_MIN_AGE = 3600.0
ONCE_MAX_ATTEMPTS = 4
MISSING_ROOT_RETRY = 10.0
LIST_MIN_FILES = 8  # a scan lists a key prefix (instead of one HEAD per file) when it queues this many under it
LIST_CONCURRENCY = 4  # listings a scan keeps in flight while it walks on


def make_remote(cfg: Config) -> Remote:
    from qsyncd.remote.qingstor import QingStorRemote

    q = cfg.qingstor
    return QingStorRemote(
        endpoint=q.endpoint,
        zone=q.zone,
        bucket=q.bucket,
        access_key_id=q.access_key_id,
        secret_access_key=q.secret_access_key,
        connect_timeout=q.connect_timeout_seconds,
        read_timeout=q.read_timeout_seconds,
    )


@dataclass
class Root:
    """A watch root at run time."""

    cfg: WatchConfig
    path: str
    filt: PathFilter
    watched: bool = False
    next_rescan: float = 0.0
    limited: bool = False  # the inotify watch limit left directories unwatched: rescan often


@dataclass
class SyncReport:
    """What ``qsyncd sync`` could not do: files not uploaded, and problems that are not one file's."""

    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, why), sorted
    problems: list[str] = field(default_factory=list)  # a missing watch root, a refusing store, the timeout

    def __bool__(self) -> bool:
        return bool(self.failures or self.problems)


@dataclass
class Counters:
    """What this run did, counted in files (a file counts once however often it was tried or sent)."""

    uploaded: int = 0  # files uploaded (a file whose content changed and went up again counts once)
    uploaded_bytes: int = 0  # bytes of every upload, re-uploads included
    reuploaded: int = 0  # further uploads of a file already uploaded in this run (its content changed)
    skipped: int = 0  # files not uploaded: already in the bucket, or not uploadable (FIFO, symlink, ...)
    retries: int = 0  # failed attempts that were scheduled again
    part_retries: int = 0
    last_upload_wall: float | None = None
    remote_errors: dict[str, int] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # files whose last attempt failed

    @property
    def failed(self) -> int:
        """Files whose last attempt failed (not attempts: retries counts those)."""
        return len(self.failing)


class Daemon:
    def __init__(
        self,
        cfg: Config,
        *,
        remote: Remote | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        config_path: Path | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.log = get_logger()
        self.clock = clock
        self.wall = wall
        self.notifier = notifier or Notifier.from_env()
        self.liveness = Liveness(clock=clock)
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.hints: CountingQueue = CountingQueue()  # of Hint; the settle loop task_done()s each one
        self.scan_requests: CountingQueue = CountingQueue()  # of (root, start, reason) or None
        self.pipeline = Pipeline(clock)
        self.counters = Counters()
        self.failures: dict[str, str] = {}  # sync: files given up on
        self.problems: list[str] = []  # sync: what failed that is not one file
        self.started_wall = wall()
        self._skip_memo: dict[str, tuple[str, tuple[int, int, int]]] = {}
        self._from_scan: set[str] = set()
        self._scanning = 0
        self._scan_lock = threading.Lock()
        self._scan_pending: set[tuple[str, str]] = set()  # queued, not yet started
        self._settling = False  # the settle loop is handing due files on (see _drained)
        self._threads: list[threading.Thread] = []
        self.once = False
        self.dry_run = dry_run
        self.on_outcome = on_outcome
        self.lock = StateLock(cfg.state.dir)
        if dry_run:  # reads the ledger only: works beside a running daemon, which holds the lock
            self.ledger = Ledger(cfg.state.dir, readonly=True, missing_ok=True)
        else:
            self.lock.acquire()
            try:
                self.ledger = Ledger(cfg.state.dir)
            except BaseException:
                self.lock.release()
                raise
        self.remote = remote if remote is not None else make_remote(cfg)
        self.roots: dict[str, Root] = {}
        self._set_roots(cfg.watches)
        self.settler = Settler(cfg.settle.quiet_seconds, cfg.settle.max_wait_seconds)
        up = cfg.upload
        limiter = RateLimiter(up.max_bytes_per_second) if up.max_bytes_per_second else None
        self.remote_index = RemoteIndex(clock=clock)  # directory listings made by _scan, instead of HEADs
        # scans list directories on these threads (long-lived: each thread keeps its own connection)
        self._list_pool = ThreadPoolExecutor(max_workers=LIST_CONCURRENCY, thread_name_prefix="scan-list")
        self.uploader = Uploader(
            self.remote,
            self.ledger,
            UploadSettings(
                multipart_threshold=up.multipart_threshold,
                part_size=up.part_size,
                part_concurrency=up.part_concurrency,
                storage_class=up.storage_class,
                part_retries=up.part_retries,
                retry_initial_seconds=up.retry_initial_seconds,
                retry_max_seconds=min(up.retry_max_seconds, 30.0),
                store_metadata=up.store_metadata,
            ),
            log=self.log,
            limiter=limiter,
            on_part_retry=self._on_part_retry,
            should_stop=self.stop_event.is_set,
            index=self.remote_index,
        )
        self.watcher: Watcher | None = None
        self.pinger: WatchdogPinger | None = None
        self._inflight_bytes = 0
        self._status_text = ""
        self._wedge_file = os.environ.get("QSYNCD_TEST_WEDGE_FILE")
        self._stall_seconds = float(os.environ.get("QSYNCD_STALL_SECONDS", "0") or 0) or (
            cfg.qingstor.read_timeout_seconds + 120.0
        )
        self.metrics = None

    # ------------------------------------------------------------------ roots
    def _set_roots(self, watches: tuple[WatchConfig, ...]) -> None:
        new = {}
        for w in watches:
            path = str(w.path)
            new[path] = self.roots.get(path) or Root(w, path, PathFilter(w.include, w.exclude))
            new[path].cfg = w
            new[path].filt = PathFilter(w.include, w.exclude)
        self.roots = new

    def root_for(self, path: str) -> Root | None:
        best = None
        for rpath, root in self.roots.items():
            inside = path == rpath or path.startswith(rpath.rstrip("/") + "/")
            if inside and (best is None or len(rpath) > len(best.path)):
                best = root
        return best

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        """Run as a service until SIGTERM/SIGINT. Returns the exit code."""
        self._install_signals()
        self.log.info(
            "daemon_starting",
            pid=os.getpid(),
            roots=list(self.roots),
            bucket=self.cfg.qingstor.bucket,
            endpoint=self.cfg.qingstor.endpoint,
            md5_paired=md5pair.NATIVE,
        )
        for w in self.cfg.warnings:
            self.log.warning("config_warning", message=w)
        if md5pair.BUILT and not md5pair.NATIVE:
            self.log.warning(
                "md5_pair_rejected",
                message="qsyncd._md5pair disagreed with hashlib at import; "
                "large uploads use hashlib (correct, more CPU): rebuild with pip install -e .",
            )
        self.watcher = Watcher(self.hints)
        for root in self.roots.values():
            self._arm(root)
        self._start_threads()
        armed = sum(1 for r in self.roots.values() if r.watched)
        self.notifier.ready(status=f"watching {armed} of {len(self.roots)} roots")
        self.log.info("daemon_ready", roots_watched=armed, roots=len(self.roots))
        for root in self.roots.values():
            self.request_scan(root.path, root.path, "startup")
        self.pinger = WatchdogPinger(self.notifier, self.liveness)
        self.pinger.start()
        try:
            while not self.stop_event.wait(0.5):
                if self.reload_event.is_set():
                    self.reload_event.clear()
                    self.reload()
                if self.watcher is not None and not self.watcher.alive():
                    self.log.error("watcher_died", hint="restarting watches and rescanning")
                    self._rearm_all()
        finally:
            self.shutdown()
        return 0

    def run_once(self, *, timeout: float | None = None) -> SyncReport:
        """One pass (``qsyncd sync``): reconcile, upload what is pending, say what failed."""
        self.once = True
        self._install_signals()
        self._start_threads()
        for root in self.roots.values():
            if os.path.isdir(root.path):
                self.request_scan(root.path, root.path, "sync")
            else:
                self.problems.append(f"watch root {root.path} does not exist")
        deadline = None if timeout is None else self.clock() + timeout
        try:
            while not self._drained():
                if self.pipeline.idle():  # scanning or settling: look again shortly
                    if self.stop_event.wait(0.005):
                        break
                else:  # uploading: woken as soon as the pipeline has nothing queued or in flight
                    self.pipeline.wait_idle(0.1)
                    if self.stop_event.is_set():
                        break
                if deadline is not None and self.clock() > deadline:
                    self.problems.append(f"not finished after {timeout:g} s (--timeout)")
                    break
        finally:
            self.shutdown()
        return SyncReport(sorted(self.failures.items()), self.problems)

    def _moves(self) -> tuple[int, int, int]:
        return self.scan_requests.puts, self.hints.puts, self.pipeline.submitted

    def _drained(self) -> bool:
        """Nothing left anywhere: no scan queued or running, no hint queued or in hand, nothing
        settling, queued or uploading, and nothing entered a stage while the stages were looked at
        one by one (a file re-queued by a worker goes back upstream; every hand-over is covered:
        hints and scans count until task_done(), the settle loop's hand-over by ``_settling``, a
        worker's re-queue happens while its file is still in flight)."""
        before = self._moves()
        with self._scan_lock:
            scanning = self._scanning
        idle = (
            scanning == 0
            and self.scan_requests.unfinished_tasks == 0
            and self.hints.unfinished_tasks == 0
            and len(self.settler) == 0
            and not self._settling
            and self.pipeline.idle()
        )
        return idle and self._moves() == before

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum: int, frame: Any) -> None:
            self.log.info("signal_received", signal=signal.Signals(signum).name)
            self.notifier.stopping(status="stopping: checkpointing in-flight uploads")
            self.stop_event.set()

        def on_hup(signum: int, frame: Any) -> None:
            self.reload_event.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        if not self.once:
            signal.signal(signal.SIGHUP, on_hup)

    def _start_threads(self) -> None:
        self.liveness.register("settle", self._stall_seconds)
        self.liveness.register("scan", self._stall_seconds)  # beats per directory walked and while idle
        specs: list[tuple[str, Callable[[], None]]] = [("settle", self._settle_loop), ("scan", self._scan_loop)]
        for i in range(max(1, self.cfg.upload.concurrency)):
            # one liveness name per worker: a single wedged worker must stop the watchdog pings
            self.liveness.register(f"upload-{i}", self._stall_seconds)
            specs.append((f"upload-{i}", self._upload_loop))
        if not self.dry_run:
            specs.append(("maintenance", self._maintenance_loop))
        for name, target in specs:
            t = threading.Thread(target=self._guard(name, target), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if self.cfg.metrics.listen and not self.once:
            from qsyncd.metrics import start_metrics

            self.metrics = start_metrics(self.cfg.metrics.listen, self)

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self.stop_event.is_set():
                try:
                    target()
                    return
                except Exception as err:  # a bug must not silently kill a stage: log and restart it
                    self.log.exception("thread_crashed", thread=name, error=repr(err))
                    time.sleep(1.0)

        return run

    def shutdown(self) -> None:
        self.stop_event.set()
        self.pipeline.close()
        self.scan_requests.put(None)
        self.hints.put(Hint("rescan", "", "", "shutdown"))  # wake the settle loop now, not after 0.5 s
        if self.pinger is not None:
            self.pinger.stop()
        if self.watcher is not None:
            self.watcher.stop()
        deadline = time.monotonic() + 45.0  # within the unit's TimeoutStopSec=60s
        for t in self._threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        self.uploader.close()
        self._list_pool.shutdown(wait=False, cancel_futures=True)
        try:
            self._publish_status(final=True)
        except Exception:
            pass
        close = getattr(self.remote, "close", None)
        if close is not None:
            close()
        self.ledger.close()
        self.lock.release()
        if self.metrics is not None:
            self.metrics.stop()
        c = self.counters
        self.log.info(
            "daemon_stopped", uploaded=c.uploaded, reuploaded=c.reuploaded, skipped=c.skipped, failed=c.failed
        )

    # ------------------------------------------------------------------ watching
    def _arm(self, root: Root) -> None:
        if self.watcher is None or root.watched:
            return
        if not os.path.isdir(root.path):
            self.log.warning(
                "watch_root_missing",
                root=root.path,
                hint="qsyncd waits for the directory to appear and checks again every 10 s",
            )
            root.watched = False
            return
        try:
            self.watcher.watch(
                root.path,
                recursive=root.cfg.recursive,
                watcher=root.cfg.watcher,
                poll_interval=root.cfg.poll_interval_seconds,
            )
            root.watched = True
            self.log.info("watch_armed", root=root.path, watcher=root.cfg.watcher, recursive=root.cfg.recursive)
        except WatchError as err:
            root.watched = False
            root.limited = root.limited or "max_user_watches" in str(err)
            self.log.error("watch_failed", root=root.path, error=str(err))

    def _rearm_all(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.watcher = Watcher(self.hints)
        for root in self.roots.values():
            root.watched = False
            self._arm(root)
            self.request_scan(root.path, root.path, "watcher_restarted")

    def reload(self) -> None:
        """SIGHUP: re-read the config; add and remove watch roots without a restart."""
        self.notifier.reloading()
        try:
            if self.config_path is None:
                raise QsyncdError("no configuration file to reload")
            new = load_config(self.config_path)
        except QsyncdError as err:
            self.log.error("config_reload_failed", error=str(err), hint="keeping the previous configuration")
            self.notifier.ready_after_reload()
            return
        old_paths = set(self.roots)
        new_paths = {str(w.path) for w in new.watches}
        for path in old_paths - new_paths:
            if self.watcher is not None:
                self.watcher.unwatch(path)
        self._set_roots(new.watches)
        for path in new_paths - old_paths:
            root = self.roots[path]
            self._arm(root)
            self.request_scan(root.path, root.path, "config_reloaded")
        ignored = [name for name in ("qingstor", "upload", "state") if getattr(new, name) != getattr(self.cfg, name)]
        self.cfg = new
        self.log.info(
            "config_reloaded",
            added=sorted(new_paths - old_paths),
            removed=sorted(old_paths - new_paths),
            needs_restart=ignored,
        )
        self.notifier.ready_after_reload()

    # ------------------------------------------------------------------ scanning
    def request_scan(self, root: str, start: str, reason: str) -> bool:
        """Queue a scan; False if the same scan is already queued (an overflow storm costs one walk)."""
        with self._scan_lock:
            if (root, start) in self._scan_pending:
                return False
            self._scan_pending.add((root, start))
        self.scan_requests.put((root, start, reason))
        return True

    def _scan_loop(self) -> None:
        while not self.stop_event.is_set():
            self._beat_scan()
            try:
                req = self.scan_requests.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                if req is None:
                    return
                with self._scan_lock:
                    self._scanning += 1
                    self._scan_pending.discard((req[0], req[1]))  # changes from now on need a new scan
                try:
                    self._scan(*req)
                finally:
                    with self._scan_lock:
                        self._scanning -= 1
            finally:
                self.scan_requests.task_done()

    def _scan(self, root_path: str, start: str, reason: str) -> None:
        root = self.roots.get(root_path)
        if root is None or not os.path.isdir(start):
            return
        t0 = self.clock()
        known = self.ledger.uploaded_under(root.path)
        delete_mode = root.cfg.after_upload == "delete"  # an uploaded file still here was not deleted yet
        files = queued = 0
        now_wall = self.wall()

        def on_error(path: str, err: OSError) -> None:
            self.log.warning("scan_error", path=path, error=err.strerror or str(err), root=root.path)

        # walk() yields the files of one directory one after another: the hints of a directory are held
        # back until it is done, so that a directory with many new files is listed (one ListObjects per
        # 1,000 keys, recorded in the RemoteIndex) before the uploader sees any of them and HEADs each.
        lister = _DirLister(self, root, enabled=not self.dry_run)
        for path, st in walk(
            root.path,
            start,
            recursive=root.cfg.recursive,
            follow_symlinks=root.cfg.follow_symlinks,
            filt=root.filt,
            beat=self._beat_scan,
            on_error=on_error,
        ):
            if self.stop_event.is_set():
                return
            files += 1
            lister.enter(os.path.dirname(path))
            if not root.filt.wanted(relpath(root.path, path)):
                continue
            rec = known.get(path)
            if (
                rec is not None
                and not delete_mode
                and rec.size == st.st_size
                and rec.mtime_ns == st.st_mtime_ns
                and rec.ino == st.st_ino
            ):
                lister.known += 1
                continue
            queued += 1
            idle = max(0.0, now_wall - st.st_mtime)
            lister.add(Hint("scan", path, root.path, reason, idle_for=idle))
        lister.close()
        self.log.info(
            "rescan_finished",
            root=root.path,
            start=start,
            reason=reason,
            files=files,
            queued=queued,
            seconds=round(self.clock() - t0, 3),
        )

    def _beat_scan(self) -> None:
        self.liveness.beat("scan")

    # ------------------------------------------------------------------ settling
    def _settle_loop(self) -> None:
        next_status = 0.0
        next_missing = self.clock() + MISSING_ROOT_RETRY
        interval = self.cfg.settle.rescan_interval_seconds
        for root in self.roots.values():
            root.next_rescan = self.clock() + (min(interval, MISSING_ROOT_RETRY) if root.limited else interval)
        while not self.stop_event.is_set():
            self.liveness.beat("settle")
            now = self.clock()
            nd = self.settler.next_deadline()
            timeout = 0.5 if nd is None else min(0.5, max(0.0, nd - now))
            try:
                self._take_hint(self.hints.get(timeout=timeout))
                for _ in range(5000):
                    self._take_hint(self.hints.get_nowait())
            except queue.Empty:
                pass
            now = self.clock()
            self._settling = True
            try:
                for path in self.settler.due(now):
                    try:
                        sig: FileSig | None = FileSig.from_stat(os.lstat(path))
                    except OSError:
                        sig = None
                    verdict = self.settler.check(path, now, sig)
                    if verdict == "ready":
                        self._on_settled(path)
                    elif verdict == "gone":
                        self._from_scan.discard(path)
            finally:
                self._settling = False
            if not self.once:
                interval = self.cfg.settle.rescan_interval_seconds
                for root in self.roots.values():
                    if interval > 0 and now >= root.next_rescan:
                        root.next_rescan = now + (min(interval, MISSING_ROOT_RETRY) if root.limited else interval)
                        self.request_scan(root.path, root.path, "periodic")
                if now >= next_missing:
                    next_missing = now + MISSING_ROOT_RETRY
                    for root in self.roots.values():
                        if not root.watched and os.path.isdir(root.path):
                            self._arm(root)
                            self.request_scan(root.path, root.path, "root_appeared")
                        elif root.watched and not os.path.isdir(root.path):
                            self.log.warning("watch_root_vanished", root=root.path)
                            if self.watcher is not None:
                                self.watcher.unwatch(root.path)
                            root.watched = False
            if now >= next_status:
                next_status = now + STATUS_EVERY
                self._publish_status()

    def _take_hint(self, hint: Hint) -> None:
        try:
            self._on_hint(hint)
        finally:
            self.hints.task_done()  # only now is the hint's file in the settler (or dropped)

    def _on_hint(self, hint: Hint) -> None:
        now = self.clock()
        if hint.kind == "rescan":
            root = self.roots.get(hint.root)
            if root is not None:
                if (
                    hint.reason == "directory_created"
                    and not root.limited
                    and root.cfg.watcher == "inotify"
                    and root.cfg.recursive
                    and watch_limit_reached(root.path)
                ):
                    root.limited = True  # watchdog skipped the new directory silently
                    root.next_rescan = min(root.next_rescan, now + MISSING_ROOT_RETRY)
                    self.log.error(
                        "watch_failed",
                        root=root.path,
                        error=f"cannot watch new directories under {root.path}: {WATCH_LIMIT_HINT}",
                        action=f"rescanning every {MISSING_ROOT_RETRY:g} s",
                    )
                queued = self.request_scan(root.path, hint.path, hint.reason)
                if hint.reason == "inotify_overflow" and queued:  # once per rescan, not once per overflow
                    self.log.warning("events_lost", root=root.path, reason=hint.reason, action="rescan")
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
        self.settler.event(hint.path, now, hint.kind, idle_for=hint.idle_for)  # type: ignore[arg-type]

    def _on_settled(self, path: str) -> None:
        prio = PRIORITY_SCAN if path in self._from_scan else PRIORITY_EVENT
        self._from_scan.discard(path)
        if self.root_for(path) is None:
            return
        # What the file is (FIFO, symlink, unreadable...) is decided once, by the worker that takes it.
        self.log.debug("file_settled", path=path)
        self.pipeline.submit(path, prio)

    def _report_skip(self, path: str, skip: SkipFile) -> None:
        try:
            st = os.lstat(path)
            ident = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            ident = (0, 0, 0)
        if self._skip_memo.get(path) == (skip.reason, ident):
            return
        self._skip_memo[path] = (skip.reason, ident)
        self.counters.skipped += 1
        self.log.warning("file_skipped", path=path, reason=skip.reason, error=str(skip))
        if self.once and skip.reason == "unreadable":  # sync must not exit 0 over a file it could not read
            self.failures.setdefault(path, f"skipped: {skip}")

    # ------------------------------------------------------------------ uploading
    def _upload_loop(self) -> None:
        name = threading.current_thread().name
        beat = lambda n=0: self.liveness.beat(name)  # noqa: E731
        while not self.stop_event.is_set():
            beat()
            self._wedge_if_asked()
            item = self.pipeline.take(1.0)
            if item is None:
                continue
            try:
                self._process(item, beat)
            finally:
                self.pipeline.done(item, on_dirty=self._resettle)

    def _resettle(self, path: str) -> None:
        """A file that changed while it was uploading goes back to settle."""
        root = self.root_for(path)
        if root is not None:
            # "closed", not "write": the writer may be done already and no close event follows
            self.hints.put(Hint("closed", path, root.path, "changed_while_uploading"))

    def _wedge_if_asked(self) -> None:
        """Test hook: with $QSYNCD_TEST_WEDGE_FILE present, block this worker forever (no beats)."""
        if self._wedge_file and os.path.exists(self._wedge_file):
            self.log.warning("pipeline_wedged", hint="test hook QSYNCD_TEST_WEDGE_FILE exists")
            while True:
                time.sleep(3600)

    def _on_part_retry(self) -> None:
        self.counters.part_retries += 1

    def _process(self, item: Item, beat: Callable[[int], None] | None = None) -> None:
        path = item.path
        root = self.root_for(path)
        if root is None:
            return
        try:
            st = classify(Path(path), Path(root.path), root.cfg.follow_symlinks)
            key = object_key(root.cfg.prefix, os.fsencode(relpath(root.path, path)))
        except SkipFile as skip:
            self._report_skip(path, skip)
            return
        except FileNotFoundError:
            self.log.info("file_vanished", path=path)
            return
        delete_after = root.cfg.after_upload == "delete"
        rec = self.ledger.get(path)
        if not delete_after and rec is not None and _same_identity(rec, key, st):
            return  # quietly: the ledger says this exact file is in the bucket (upload() need not ask again)
        if self.dry_run:
            self._dry_run(path, key, st, rec)
            return
        again = rec is not None and rec.uploaded_at >= self.started_wall  # its earlier version went up in this run
        self.log.info("upload_started", path=path, key=key, bytes=st.st_size, attempt=item.attempts + 1)
        self._inflight_bytes += st.st_size
        try:
            # a followed symlink (classify checked that its target is inside the root) is read through
            # its resolved path: the uploader opens with O_NOFOLLOW
            source = os.path.realpath(path) if root.cfg.follow_symlinks else None
            out = self.uploader.upload(
                path, key, delete_after=delete_after, source=source, progress=beat, ledger_checked=not delete_after
            )
        except FileChanged as err:
            self.log.info("file_changed", path=path, key=key, error=str(err), action="settle_again")
            self.hints.put(Hint("closed", path, root.path, "changed_during_upload"))  # settle again, no close awaited
            return
        except FileNotFoundError:
            self.log.info("file_vanished", path=path, key=key)
            return
        except Interrupted as err:
            self.log.info("upload_interrupted", path=path, key=key, reason=str(err))
            return
        except PermissionError as err:
            self._report_skip(
                path, SkipFile("unreadable", f"cannot read {path}: {err.strerror}; give the service user read access")
            )
            return
        except OSError as err:
            self._fail(item, key, f"local error: {err.strerror or err}", permanent=False, exc=err)
            return
        except RemoteError as err:
            self._remote_failure(item, key, err)
            return
        except Exception as err:
            self.log.exception("upload_failed", path=path, key=key, error=repr(err), reason="internal_error")
            self._fail(item, key, repr(err), permanent=False, exc=err, logged=True)
            return
        finally:
            self._inflight_bytes -= st.st_size
        since = self.pipeline.open_gate()
        if since is not None:
            self.log.info("remote_recovered", down_seconds=round(self.wall() - since, 1))
        self.failures.pop(path, None)
        self.counters.failing.discard(path)
        self._skip_memo.pop(path, None)
        if out.action == "uploaded":
            if again:
                self.counters.reuploaded += 1
            else:
                self.counters.uploaded += 1
            self.counters.uploaded_bytes += out.bytes
            self.counters.last_upload_wall = self.wall()
            self.log.info(
                "upload_finished",
                path=path,
                key=key,
                bytes=out.bytes,
                bytes_sent=out.bytes_sent,
                parts=out.parts,
                parts_resumed=out.parts_resumed,
                md5=out.md5,
                seconds=round(out.seconds, 3),
                deleted=out.deleted,
            )
        else:
            self.counters.skipped += 1
            self.log.info("upload_skipped", path=path, key=key, bytes=out.bytes, reason=out.reason, deleted=out.deleted)
        if self.on_outcome is not None:
            self.on_outcome(out)

    def _remote_failure(self, item: Item, key: str, err: RemoteError) -> None:
        code = err.code or type(err).__name__
        self.counters.remote_errors[code] = self.counters.remote_errors.get(code, 0) + 1
        if isinstance(err, Unreachable) and not self.once:
            delay = backoff_delay(self.pipeline.gate.failures + 1, 1.0, 60.0)
            if self.pipeline.close_gate(delay, str(err), self.wall()):
                self.log.error(
                    "remote_unreachable",
                    endpoint=self.cfg.qingstor.endpoint,
                    error=str(err),
                    waiting=self.pipeline.queued() + 1,
                )
            self.pipeline.retry_later(item, delay)
            return
        # Pause everything only when the store refuses every request (our credentials, the clock, a
        # missing bucket); a 403 on one key (a bucket policy denying a prefix) fails that file alone
        # and must not stop every other upload.
        if isinstance(err, StoreRefused):
            q = self.cfg.qingstor
            if self.once:  # every other file would fail the same way: say it once and stop
                with self._scan_lock:
                    if not self.stop_event.is_set():
                        self.problems.append(str(err))
                    self.stop_event.set()
                return
            delay = self.cfg.upload.permanent_retry_seconds
            if self.pipeline.close_gate(delay, str(err), self.wall()):
                what = (
                    "create the bucket or fix bucket and zone"
                    if isinstance(err, BucketMissing)
                    else ("fix the credentials in the config (or the system clock)")
                )
                self.log.error(
                    "remote_rejected",
                    error=str(err),
                    code=err.code,
                    bucket=q.bucket,
                    zone=q.zone,
                    endpoint=q.endpoint,
                    retry_in=delay,
                    waiting=self.pipeline.queued() + 1,
                    hint=f"{what}; files stay queued and qsyncd retries every {delay:g} s until then",
                )
            self.pipeline.retry_later(item, delay)
            return
        self._fail(item, key, str(err), permanent=isinstance(err, PermanentError), exc=err)

    def _fail(
        self, item: Item, key: str, error: str, *, permanent: bool, exc: BaseException, logged: bool = False
    ) -> None:
        item.attempts += 1
        self.counters.failing.add(item.path)
        if not self.dry_run:  # a dry run never writes the ledger (it may run beside the daemon)
            self.ledger.record_failure(item.path, key, error, permanent)
        if self.once and (permanent or item.attempts >= ONCE_MAX_ATTEMPTS):
            self.failures[item.path] = error
            if not logged:
                self.log.error(
                    "upload_failed",
                    path=item.path,
                    key=key,
                    error=error,
                    permanent=permanent,
                    attempts=item.attempts,
                    code=getattr(exc, "code", ""),
                    gave_up=True,
                )
            return
        if permanent:
            delay = self.cfg.upload.permanent_retry_seconds
        else:
            cap = 8.0 if self.once else self.cfg.upload.retry_max_seconds
            delay = backoff_delay(item.attempts, self.cfg.upload.retry_initial_seconds, cap)
        self.counters.retries += 1
        if not logged:
            self.log.warning(
                "upload_failed",
                path=item.path,
                key=key,
                error=error,
                permanent=permanent,
                attempts=item.attempts,
                code=getattr(exc, "code", ""),
                retry_in=round(delay, 2),
            )
        self.pipeline.retry_later(item, delay)

    def _dry_run(self, path: str, key: str, st: os.stat_result, rec: FileRecord | None) -> None:
        info = self.remote.head(key)
        if info is None:
            reason = "not in the bucket"
        elif info.size != st.st_size:
            reason = f"size differs (remote {info.size}, local {st.st_size})"
        else:
            from qsyncd.source import md5_section

            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                md5 = md5_section(fd, 0, st.st_size).hexdigest()
            finally:
                os.close(fd)
            if info.etag == md5:
                self.log.info("dry_run_skip", path=path, key=key, reason="remote_match")
                return
            reason = "content differs (ETag != MD5)"
        if rec is not None:
            reason += "; changed since it was uploaded"
        self.log.info("dry_run_upload", path=path, key=key, bytes=st.st_size, reason=reason)
        if self.on_outcome is not None:
            self.on_outcome(Outcome("would_upload", key, path, bytes=st.st_size, reason=reason))

    # ------------------------------------------------------------------ maintenance
    def _maintenance_loop(self) -> None:
        delay = 1.0
        # A (re)started daemon sends no housekeeping request: orphans (uploads the ledger does not
        # know, never aborted before they are ORPHAN_MIN_AGE old anyway) are listed only once the
        # daemon has run that long; `qsyncd sync` still sweeps at once.
        orphans_due = self.clock() + (0.0 if self.once else ORPHAN_MIN_AGE)
        while not self.stop_event.is_set():
            try:
                sweep = self.clock() >= orphans_due
                self._maintenance(orphans=sweep)
                delay = MAINTENANCE_EVERY if sweep else max(1.0, orphans_due - self.clock())
            except RemoteError as err:
                self.log.warning("maintenance_failed", error=str(err), retry_in=60)
                delay = 60.0
            if self.once or self.stop_event.wait(delay):
                return

    def _maintenance(self, orphans: bool = True) -> None:
        known = {m.upload_id: m for m in self.ledger.multiparts()}
        for mp in known.values():
            try:
                st = os.lstat(mp.path)
                same = (st.st_size, st.st_mtime_ns, st.st_ino) == (mp.size, mp.mtime_ns, mp.ino)
            except OSError:
                same = False
            if not same:
                self.remote.abort(mp.key, mp.upload_id)
                self.ledger.finish_multipart(mp.upload_id)
                self.log.info("multipart_aborted", key=mp.key, upload_id=mp.upload_id, reason="file_gone_or_changed")
        prefixes = {r.cfg.prefix for r in self.roots.values()} if orphans else set()
        now = self.wall()
        for prefix in sorted(prefixes):
            for up in self.remote.list_uploads(prefix):
                if up.upload_id in known:
                    continue
                age = _age_seconds(up.created, now)
                if age is not None and age < ORPHAN_MIN_AGE:
                    continue
                self.remote.abort(up.key, up.upload_id)
                self.log.info(
                    "multipart_aborted",
                    key=up.key,
                    upload_id=up.upload_id,
                    reason="orphaned",
                    age_seconds=None if age is None else round(age),
                )

    # ------------------------------------------------------------------ status
    def status_snapshot(self) -> dict[str, Any]:
        gate = self.pipeline.gate
        return {
            "pid": os.getpid(),
            "roots": {p: r.watched for p, r in self.roots.items()},
            "queued": self.pipeline.queued(),
            "settling": len(self.settler),
            "uploading": self.pipeline.inflight(),
            "in_flight_bytes": max(0, self._inflight_bytes),
            "started_at": self.started_wall,
            "uploaded": self.counters.uploaded,
            "reuploaded": self.counters.reuploaded,
            "uploaded_bytes": self.counters.uploaded_bytes,
            "skipped": self.counters.skipped,
            "failed": self.counters.failed,
            "retries": self.counters.retries,
            "last_upload_at": self.counters.last_upload_wall,
            "remote_down_since": gate.since,
            "remote_error": gate.reason if gate.since else "",
            "updated_at": self.wall(),
        }

    def status_line(self, snap: dict[str, Any]) -> str:
        waiting = snap["queued"] + snap["settling"] + snap["uploading"]
        if snap["remote_down_since"]:
            since = time.strftime("%H:%M", time.localtime(snap["remote_down_since"]))
            what = (
                "remote rejects our credentials"
                if "credential" in snap["remote_error"] or "secret" in snap["remote_error"]
                else "remote unreachable"
            )
            return f"{what} since {since}, {waiting} files waiting"
        watched = sum(1 for v in snap["roots"].values() if v)
        parts = [
            f"watching {watched} roots"
            if watched == len(snap["roots"])
            else f"watching {watched} of {len(snap['roots'])} roots"
        ]
        parts.append(f"{snap['uploading']} uploading")
        parts.append(f"{snap['queued'] + snap['settling']} queued")
        if snap["last_upload_at"]:
            parts.append(f"last upload {int(self.wall() - snap['last_upload_at'])} s ago")
        return " · ".join(parts)

    def _publish_status(self, final: bool = False) -> None:
        if self.dry_run:  # the status in the ledger belongs to the daemon (a dry run may run beside it)
            return
        snap = self.status_snapshot()
        snap["running"] = not final
        try:
            self.ledger.set_daemon_status(snap)
        except QsyncdError as err:
            self.log.error("state_write_failed", error=str(err))
        if not self.once and not final:
            text = self.status_line(snap)
            if text != self._status_text:
                self._status_text = text
                self.notifier.status(text)


def _age_seconds(created: str, now: float) -> float | None:
    from datetime import datetime

    try:
        ts = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None
    return now - ts


class _DirLister:
    """Holds back one directory's scan hints; lists a key prefix with many new files before releasing them.

    A prefix is listed (``list_objects(prefix, "/")``, recorded in ``daemon.remote_index``) when at least
    ``LIST_MIN_FILES`` of the directory's files are queued and the expected listing pages (from the
    files of the directory the ledger already has) cost at most half as many requests as the HEADs they
    save. Up to ``LIST_CONCURRENCY`` listings are in flight while the walk goes on (on a link with a
    round trip of tens of milliseconds, one at a time would hold every upload back); a directory's hints
    are released when its listing has returned, and ``close()`` waits for all of them. A failed listing
    is logged (``listing_failed``) and turns listing off for the rest of the scan: the uploader then
    HEADs as before.
    """

    def __init__(self, daemon: Daemon, root: Root, *, enabled: bool) -> None:
        self.d = daemon
        self.root = root
        self.enabled = enabled
        self.dir: str | None = None
        self.known = 0  # files of this directory the ledger already holds (their objects are listed too)
        self.held: list[Hint] = []
        self._slots = threading.BoundedSemaphore(LIST_CONCURRENCY)
        self._pending: list[Future[None]] = []

    def enter(self, directory: str) -> None:
        if directory != self.dir:
            self.flush()
            self.dir = directory

    def add(self, hint: Hint) -> None:
        if self.enabled:
            self.held.append(hint)
        else:
            self.d.hints.put(hint)

    def flush(self) -> None:
        held, known = self.held, self.known
        self.held, self.known = [], 0
        if len(held) < LIST_MIN_FILES or not self.enabled:
            self._release(held)
            return
        self._slots.acquire()  # bounds the listings (and the hints held for them) in flight
        try:
            future = self.d._list_pool.submit(self._list_then_release, held, known)
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
            self.d.log.warning("listing_failed", error=repr(err), action="head_each_file")
        finally:
            self._release(held)
            self._slots.release()

    def _release(self, held: list[Hint]) -> None:
        """Hand a directory's held hints on to the settle stage."""
        for hint in held:
            self.d.hints.put(hint)

    def _list(self, held: list[Hint], known: int) -> None:
        groups: dict[str, int] = {}
        for hint in held:
            try:
                key = object_key(self.root.cfg.prefix, os.fsencode(relpath(self.root.path, hint.path)))
            except SkipFile:
                continue
            prefix = parent_prefix(key)
            groups[prefix] = groups.get(prefix, 0) + 1
        for prefix, n in groups.items():
            pages = 1 + (known + n) // 1000
            if not self.enabled or n < LIST_MIN_FILES or 2 * pages > n or self.d.stop_event.is_set():
                continue
            started = self.d.clock()
            try:
                objects = self.d.remote.list_objects(prefix, "/")
            except Exception as err:  # RemoteError, or a Remote without listings: HEAD as before
                self.enabled = False
                if not self.d.stop_event.is_set():  # a listing cut short by shutdown is not news
                    self.d.log.warning(
                        "listing_failed",
                        prefix=prefix,
                        error=str(err),
                        code=getattr(err, "code", ""),
                        action="head_each_file",
                    )
                return
            kept = self.d.remote_index.record_listing(prefix, objects, self.d.clock(), started=started)
            self.d.log.debug("prefix_listed", prefix=prefix, objects=len(objects), queued=n, kept=kept)
