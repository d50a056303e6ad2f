"""The daemon: build the stages, run their threads, keep them alive, stop them cleanly.

watch -> settle -> upload -> remote, each stage in a module of its own (``qsyncd.service.*``) owning
its state, talking through queues:

- watchdog observers (``qsyncd.watch``) put ``Hint``s on the hint queue, nothing else;
- ``scan`` (``Scanner``): walks roots at start-up, on a timer, for new directories and after lost
  events, and puts ``scan`` hints on the same queue;
- ``settle`` (``SettleStage``): runs the ``Settler`` on the hints and submits finished files to the
  ``Pipeline`` (the upload queue, which also pauses every upload while the remote is down);
- ``upload-N`` (``UploadWorker``): takes files from the pipeline and uploads them;
- ``maintenance``: aborts multipart uploads that can never be completed;
- ``verify`` (``PeriodicVerify``, the service only): every ``[verify] interval_seconds`` compares one
  listing per watch prefix with the ledger and sends again what was deleted or replaced in the bucket.

The main thread keeps house: SIGHUP reloads, periodic rescans, roots that appear or vanish, the
status (ledger, systemd ``STATUS=``) and, for ``qsyncd sync``, noticing that everything is done. Every
stage thread beats the ``Liveness`` monitor, so a wedged stage stops the systemd watchdog pings and
systemd restarts qsyncd. ``Daemon.run()`` is the service, ``Daemon.run_once()`` one pass.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qsyncd import md5pair
from qsyncd.config import Config, load_config
from qsyncd.errors import QsyncdError
from qsyncd.events import get_logger
from qsyncd.notify import Liveness, Notifier, WatchdogPinger
from qsyncd.remote.base import Remote
from qsyncd.service.mode import RUN, SYNC, Mode
from qsyncd.service.roots import ROOT_CHECK_SECONDS
from qsyncd.service.store import make_remote
from qsyncd.service.wiring import build_stages
from qsyncd.stats import Status
from qsyncd.upload import Outcome
from qsyncd.watch import Hint, Watcher

STATUS_EVERY = 2.0  # the status (ledger, systemd STATUS=) is published this often
HOUSEKEEPING_EVERY = 0.5  # the main thread looks at reloads, rescans and roots this often
STOP_TIMEOUT = 45.0  # threads get this long to finish on stop (the unit's TimeoutStopSec=60s)
CRASH_PAUSE = 1.0  # a stage whose thread crashed (a bug) is restarted after this long
SYNC_POLL = 0.005  # `qsyncd sync` looks this often whether everything is done while nothing uploads


@dataclass
class SyncReport:
    """What ``qsyncd sync`` could not do: files not uploaded, and problems that are not one file's."""

    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, why), sorted
    problems: list[str] = field(default_factory=list)  # a missing watch root, a refusing store, the timeout

    def __bool__(self) -> bool:
        return bool(self.failures or self.problems)


class Daemon:
    """One configured daemon: ``run()`` (the service) or ``run_once()`` (``sync`` / a dry run), once."""

    def __init__(
        self,
        cfg: Config,
        *,
        mode: Mode = RUN,
        remote: Remote | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        config_path: Path | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.cfg, self.mode, self.config_path = cfg, mode, config_path
        self.clock, self.wall = clock, wall
        self.log = get_logger()
        self.notifier = notifier or Notifier.from_env()
        self.liveness = Liveness(clock=clock)
        self.stall_seconds = cfg.watchdog.stall_seconds
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.stages = s = build_stages(
            cfg,
            mode,
            remote if remote is not None else make_remote(cfg),
            remote_from_config=remote is None,
            notifier=self.notifier,
            liveness=self.liveness,
            stop_event=self.stop_event,
            clock=clock,
            wall=wall,
            log=self.log,
            on_outcome=on_outcome,
        )
        # the stages the lifecycle below drives
        self.roots, self.hints, self.pipeline, self.scanner = s.roots, s.hints, s.pipeline, s.scanner
        self.watcher: Watcher | None = None
        self.pinger: WatchdogPinger | None = None
        self.metrics: Any = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ the two ways to run
    def run(self) -> int:
        """Run as the service until SIGTERM/SIGINT. Returns the exit code."""
        self._install_signals()
        self.log.info(
            "daemon_starting",
            pid=os.getpid(),
            roots=self.roots.paths(),
            store=self.cfg.store_name,
            bucket=self.cfg.store.bucket,
            endpoint=self.cfg.store.endpoint,
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
        for root in self.roots:
            self.roots.arm(root, self.watcher)
        self._start_threads()
        armed = sum(self.roots.watched().values())
        self.notifier.ready(status=f"watching {armed} of {len(self.roots)} roots")
        self.log.info("daemon_ready", roots_watched=armed, roots=len(self.roots))
        for root in self.roots:
            self.scanner.request(root.path, root.path, "startup")
        self.pinger = WatchdogPinger(self.notifier, self.liveness)
        self.pinger.start()
        now = self.clock()
        self.roots.schedule_rescans(now, self.cfg.settle)
        next_roots, next_status = now + ROOT_CHECK_SECONDS, now
        try:
            while not self.stop_event.wait(HOUSEKEEPING_EVERY):
                now = self.clock()
                if self.reload_event.is_set():
                    self.reload_event.clear()
                    self.reload()
                if self.watcher is not None and not self.watcher.alive():
                    self.log.error("watcher_died", hint="restarting watches and rescanning")
                    self._rearm_all()
                for root in self.roots.due_for_rescan(now, self.cfg.settle):
                    self.scanner.request(root.path, root.path, "periodic")
                if now >= next_roots and self.watcher is not None:
                    next_roots = now + ROOT_CHECK_SECONDS
                    for root in self.roots.supervise(self.watcher):
                        self.scanner.request(root.path, root.path, "root_appeared")
                if now >= next_status:
                    next_status = now + STATUS_EVERY
                    self.publish_status()
        finally:
            self.shutdown()
        return 0

    def run_once(self, *, timeout: float | None = None) -> SyncReport:
        """One pass (``qsyncd sync``, or a dry run): reconcile, upload what is pending, say what failed."""
        self._install_signals()
        self._start_threads()
        problems = self.stages.worker.report.problems
        for root in self.roots:
            if os.path.isdir(root.path):
                self.scanner.request(root.path, root.path, "sync")
            else:
                problems.append(f"watch root {root.path} does not exist")
        deadline = None if timeout is None else self.clock() + timeout
        next_status = self.clock()
        try:
            while not self.drained():
                if self.pipeline.idle():  # scanning or settling: look again shortly
                    if self.stop_event.wait(SYNC_POLL):
                        break
                else:  # uploading: woken as soon as the pipeline has nothing queued or in flight
                    self.pipeline.wait_idle(0.1)
                    if self.stop_event.is_set():
                        break
                now = self.clock()
                if now >= next_status:
                    next_status = now + STATUS_EVERY
                    self.publish_status()
                if deadline is not None and now > deadline:
                    problems.append(f"not finished after {timeout:g} s (--timeout)")
                    break
        finally:
            self.shutdown()
        return SyncReport(sorted(self.stages.worker.report.gave_up.items()), problems)

    def drained(self) -> bool:
        """Nothing left anywhere: no scan queued or running, no hint queued or in hand, nothing settling,
        queued or uploading, and nothing entered a stage while the stages were looked at one by one (a
        file re-queued by a worker goes back upstream; every hand-over is covered: hints and scans count
        until task_done(), the settle stage's hand-over by ``handing_over``, a worker's re-queue happens
        while its file is still in flight)."""
        before = self._moves()
        idle = (
            not self.scanner.busy()
            and self.hints.unfinished_tasks == 0
            and len(self.stages.settler) == 0
            and not self.stages.settle.handing_over
            and self.pipeline.idle()
        )
        return idle and self._moves() == before

    def _moves(self) -> tuple[int, int, int]:
        return self.scanner.requests.puts, self.hints.puts, self.pipeline.submitted

    # ------------------------------------------------------------------ threads and signals
    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum: int, frame: Any) -> None:
            self.log.info("signal_received", signal=signal.Signals(signum).name)
            self.notifier.stopping(status="stopping: checkpointing in-flight uploads")
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        if self.mode.service:
            signal.signal(signal.SIGHUP, lambda signum, frame: self.reload_event.set())

    def _start_threads(self) -> None:
        specs: list[tuple[str, Callable[[], None]]] = [("settle", self.stages.settle.loop), ("scan", self.scanner.loop)]
        for i in range(max(1, self.cfg.upload.concurrency)):
            # one liveness name per worker: a single wedged worker must stop the watchdog pings
            specs.append((f"upload-{i}", self._upload_thread(f"upload-{i}")))
        for name, _ in specs:
            self.liveness.register(name, self.stall_seconds)
        if self.mode.runs_maintenance:
            specs.append(("maintenance", self.stages.maintenance.loop))
        if self.mode.verifies_periodically and self.cfg.verify.interval_seconds > 0:
            specs.append(("verify", self.stages.verify.loop))
        for name, target in specs:
            t = threading.Thread(target=self._guard(name, target), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if self.cfg.metrics.listen and self.mode.service:
            from qsyncd.metrics import start_metrics

            self.metrics = start_metrics(self.cfg.metrics.listen, self.status, self.stages.counters, self.log)

    def _upload_thread(self, name: str) -> Callable[[], None]:
        def beat(_n: int = 0) -> None:
            self.liveness.beat(name)

        return lambda: self.stages.worker.loop(beat)

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self.stop_event.is_set():
                try:
                    target()
                    return
                except Exception as err:  # a bug must not silently kill a stage: log and restart it
                    self.log.exception("thread_crashed", thread=name, error=repr(err))
                    time.sleep(CRASH_PAUSE)

        return run

    def shutdown(self) -> None:
        self.stop_event.set()
        self.pipeline.close()
        self.scanner.close()
        self.hints.put(Hint("rescan", "", "", "shutdown"))  # wake the settle stage now, not after its poll
        if self.pinger is not None:
            self.pinger.stop()
        if self.watcher is not None:
            self.watcher.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for t in self._threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        self.stages.uploader.close()
        try:
            self.publish_status(final=True)
        except Exception:
            pass
        close = getattr(self.stages.remote, "close", None)
        if close is not None:
            close()
        self.stages.ledger.close()
        self.stages.lock.release()
        if self.metrics is not None:
            self.metrics.stop()
        c = self.stages.counters
        self.log.info(
            "daemon_stopped", uploaded=c.uploaded, reuploaded=c.reuploaded, skipped=c.skipped, failed=c.failed
        )

    # ------------------------------------------------------------------ reload
    def _rearm_all(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.watcher = Watcher(self.hints)
        for root in self.roots:
            root.watched = False
            self.roots.arm(root, self.watcher)
            self.scanner.request(root.path, root.path, "watcher_restarted")

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
        assert self.watcher is not None  # reload is the service's, which watches
        added, removed = self.roots.reconfigure(new.watches, self.watcher, self.scanner.request)
        ignored = [
            name
            for name in ("store", "upload", "state", "watchdog", "verify")
            if getattr(new, name) != getattr(self.cfg, name)
        ]
        self.cfg = new
        self.log.info("config_reloaded", added=added, removed=removed, needs_restart=ignored)
        self.notifier.ready_after_reload()

    # ------------------------------------------------------------------ status
    def status(self, *, running: bool = True) -> Status:
        """A snapshot of this daemon: its counts, its queues and the remote's state."""
        return self.stages.publisher.snapshot(running=running)

    def publish_status(self, final: bool = False) -> None:
        self.stages.publisher.publish(final=final)


__all__ = ["SYNC", "Daemon", "SyncReport", "make_remote"]
