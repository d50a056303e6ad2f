"""Build the stages of one daemon and connect them: who gets which queue, clock and callback.

Nothing here runs: ``build_stages`` makes the objects (the ledger and its lock, the remote, the roots,
the queues, the settle, scan and upload stages, maintenance, the periodic verify, the status
publisher) and hands each one only what it uses. ``Daemon`` (daemon.py) runs their threads.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qsyncd.config import Config, QingStorConfig
from qsyncd.notify import Liveness, Notifier
from qsyncd.pipeline import CountingQueue, Pipeline
from qsyncd.remote.base import Remote
from qsyncd.remoteindex import RemoteIndex
from qsyncd.service.maintenance import Maintenance
from qsyncd.service.mode import Mode
from qsyncd.service.publisher import StatusPublisher
from qsyncd.service.reverify import PeriodicVerify
from qsyncd.service.roots import Roots
from qsyncd.service.scanner import Scanner
from qsyncd.service.settling import SettleStage
from qsyncd.service.worker import UploadWorker
from qsyncd.settle import Settler
from qsyncd.source import RateLimiter
from qsyncd.state import Ledger, StateLock
from qsyncd.stats import Counters
from qsyncd.upload import Outcome, Uploader


@dataclass
class Stages:
    """Every part of one daemon, built and connected."""

    lock: StateLock
    ledger: Ledger
    remote: Remote
    roots: Roots
    hints: CountingQueue  # of Hint; the settle stage task_done()s each one
    pipeline: Pipeline
    counters: Counters
    settler: Settler
    uploader: Uploader
    scanner: Scanner
    settle: SettleStage
    worker: UploadWorker
    maintenance: Maintenance
    publisher: StatusPublisher
    verify: PeriodicVerify


def open_ledger(cfg: Config, mode: Mode) -> tuple[StateLock, Ledger]:
    """The state directory's lock (held unless a dry run) and the ledger (read-only in a dry run, which
    may run beside the daemon that holds the lock)."""
    lock = StateLock(cfg.state.dir)
    if mode.takes_lock:
        lock.acquire()
    try:
        if mode.writes_ledger:
            return lock, Ledger(cfg.state.dir)
        return lock, Ledger(cfg.state.dir, readonly=True, missing_ok=True)
    except BaseException:
        lock.release()
        raise


def build_stages(
    cfg: Config,
    mode: Mode,
    remote: Remote,
    *,
    remote_from_config: bool = False,
    notifier: Notifier,
    liveness: Liveness,
    stop_event: threading.Event,
    clock: Callable[[], float],
    wall: Callable[[], float],
    log: Any,
    on_outcome: Callable[[Outcome], None] | None,
) -> Stages:
    lock, ledger = open_ledger(cfg, mode)
    stopping = stop_event.is_set
    roots = Roots(cfg.watches, log)
    hints = CountingQueue()
    pipeline = Pipeline(clock)
    counters = Counters()
    settler = Settler(cfg.settle.quiet_seconds, cfg.settle.max_wait_seconds)
    index = RemoteIndex(clock=clock)  # directory listings made by scans, instead of HEADs
    up = cfg.upload
    uploader = Uploader(
        remote,
        ledger,
        up,
        log=log,
        clock=clock,
        wall=wall,
        index=index,
        limiter=RateLimiter(up.max_bytes_per_second) if up.max_bytes_per_second else None,
        on_part_retry=counters.part_retried,
        should_stop=stopping,
        turns=pipeline.turns,
    )
    scanner = Scanner(
        roots,
        ledger,
        hints.put,
        remote=remote,
        index=index,
        clock=clock,
        wall=wall,
        beat=lambda: liveness.beat("scan"),
        stopping=stopping,
        log=log,
        list_directories=mode.lists_directories,
        backlog=lambda: hints.qsize() + len(settler) + pipeline.queued(),
    )
    settle = SettleStage(
        roots,
        settler,
        pipeline,
        hints,
        request_scan=scanner.request,
        clock=clock,
        beat=lambda: liveness.beat("settle"),
        stopping=stopping,
        log=log,
    )
    s = cfg.store
    where = {"zone": s.zone} if isinstance(s, QingStorConfig) else {"region": s.region}
    worker = UploadWorker(
        roots,
        ledger,
        uploader,
        pipeline,
        hints,
        counters,
        mode=mode,
        rules=dataclasses.replace(uploader.rules, finite=mode.finite),
        store={"bucket": s.bucket, **where, "endpoint": s.endpoint},
        clock=clock,
        wall=wall,
        stop=stop_event.set,
        stopping=stopping,
        log=log,
        on_outcome=on_outcome,
    )
    maintenance = Maintenance(
        remote, ledger, roots, once=mode.finite, clock=clock, wall=wall, wait=stop_event.wait, log=log
    )
    verify = PeriodicVerify(
        remote,
        ledger,
        roots,
        index,
        hints.put,
        counters,
        interval=cfg.verify.interval_seconds,
        clock=clock,
        wall=wall,
        wait=stop_event.wait,
        log=log,
        cfg=cfg if remote_from_config else None,  # a child can build the same remote itself
    )
    publisher = StatusPublisher(
        roots=roots,
        pipeline=pipeline,
        settler=settler,
        counters=counters,
        in_flight_bytes=lambda: worker.in_flight_bytes,
        ledger=ledger,
        notifier=notifier,
        mode=mode,
        started_wall=worker.started_wall,
        wall=wall,
        log=log,
    )
    return Stages(
        lock, ledger, remote, roots, hints, pipeline, counters, settler, uploader, scanner, settle, worker,
        maintenance, publisher, verify,
    )  # fmt: skip
