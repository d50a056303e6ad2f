"""Scenario 9 (``--only verify``): what one round of the service's periodic verify costs.

One tree of ``--files`` N files of 1 KiB, 1,000 per directory (``bench.data.small_tree``, as ``scale``),
uploaded by ``qsyncd sync``; then ``qsyncd run`` with ``[verify] interval_seconds = 2`` (and no periodic
rescan in the way) until ``ROUNDS`` rounds have compared every record. Per round: the requests the
emulator logged by operation (a round is one listing per watch prefix: ListObjects, 1,000 keys a page),
its wall seconds and the CPU seconds of the round, its child process included (both from
``verify_finished``), the daemon's whole CPU between two rounds and its RSS from /proc, and the round's
child process's peak RSS (its VmHWM at the end of the round, ``verify_finished``'s ``child_peak_rss_kib``).
Figures are printed, never judged against a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bench import data
from bench.harness import (
    QSYNCD,
    BenchError,
    DaemonProc,
    EmulatorProc,
    Row,
    fmt,
    median,
    proc_cpu_seconds,
    proc_hwm_kib,
    qsyncd_config,
    read_events,
    run_measured,
)
from bench.scale import PER_DIR, operations, proc_rss_kib

PREFIX = "verify/"
ROUNDS = 3
INTERVAL = 5.0  # longer than a round of 100,000 records: RSS after a round is read between rounds


def run(emu: EmulatorProc, work: Path, *, files: int, log: Callable[[str], None]) -> list[Row]:
    dirs = max(1, files // PER_DIR)
    src = work / "verify-src"
    data.small_tree(src, files, dirs, 1024)
    state = work / "state-verify"
    cfg = qsyncd_config(work / "verify-sync.toml", emu, watch=src, state=state, prefix=PREFIX)
    m = run_measured(
        [QSYNCD, "sync", "-c", str(cfg), "--no-progress", "--log-format", "json"],
        work / "qsyncd-verify-sync.log",
        emulator=emu,
        timeout=7200,
    ).check("qsyncd sync")
    done = len(read_events(m.log, "upload_finished"))
    if done != files:
        raise BenchError(f"verify: qsyncd sync uploaded {done} of {files} files")
    log(f"verify: {files} files uploaded in {m.seconds:.0f} s")

    rcfg = qsyncd_config(
        work / "verify-run.toml",
        emu,
        watch=src,
        state=state,
        prefix=PREFIX,
        settle={"rescan_interval_seconds": 86400.0},
        extra=f"[verify]\ninterval_seconds = {INTERVAL}\n",
    )
    d = DaemonProc(rcfg, work / "qsyncd-verify-run.log").start()
    try:
        d.wait_event("rescan_finished", 1800, pred=lambda e: e.get("reason") == "startup")
        hwm_scan, rss_scan = proc_hwm_kib(d.pid), proc_rss_kib(d.pid)  # before the first round (one interval in)
        d.wait_event("verify_finished", 600, pred=lambda e: e.get("checked") == files)  # records all old enough
        emu.clear_requests()
        cpu0, seen = proc_cpu_seconds(d.pid), len(d.events("verify_finished"))
        rss_after: list[int] = []
        for n in range(1, ROUNDS + 1):
            d.wait_event("verify_finished", 600, count=seen + n)
            time.sleep(INTERVAL / 2)  # between two rounds: what the daemon keeps, not what the round held
            rss_after.append(proc_rss_kib(d.pid))
        rounds = d.events("verify_finished")[seen : seen + ROUNDS]
        cpu1, hwm = proc_cpu_seconds(d.pid), proc_hwm_kib(d.pid)
        ops = operations(emu.requests())
    finally:
        d.stop()
    if any(r.get("checked") != files or r.get("missing") or r.get("changed") for r in rounds):
        raise BenchError(f"verify: a round did not check {files} records cleanly: {rounds}")
    per_round = {op: n / ROUNDS for op, n in ops.items()}
    wall = median([float(r["seconds"]) for r in rounds])
    cpu = median([float(r["cpu_seconds"]) for r in rounds])
    child_peaks = [int(r.get("child_peak_rss_kib") or 0) // 1024 for r in rounds]
    idle = INTERVAL * ROUNDS  # the waits between rounds, in the daemon's CPU too (idle: ~0)
    log(
        f"verify: {files} records, per round {per_round}, wall {wall:.2f} s, round cpu {cpu:.2f} s (child included), "
        f"child peak RSS {'/'.join(map(str, child_peaks))} MiB"
    )
    label = f"9. periodic verify, {files:,} ledger records, {PER_DIR} per directory"
    return [
        Row(label, "requests per round", f"{sum(per_round.values()):,.0f}", note=f"{per_round}"),
        Row(
            label,
            "wall, CPU per round",
            f"{fmt(wall, 2)} s, {fmt(cpu, 2)} CPU s",
            note=f"the round, its child process included (median of {ROUNDS}); the service "
            f"{fmt((cpu1 - cpu0) / ROUNDS, 2)} CPU s per round incl. {idle:g} s idle between rounds",
        ),
        Row(
            label,
            "daemon RSS: before the first round, after each; peak",
            f"{rss_scan // 1024} MiB, {'/'.join(str(r // 1024) for r in rss_after)} MiB; {hwm // 1024} MiB",
            note=f"peak before the first round (start-up scan) {hwm_scan // 1024} MiB",
        ),
        Row(
            label,
            "the round's child process: peak RSS",
            f"{'/'.join(map(str, child_peaks))} MiB",
            note="VmHWM of each round's spawned child at the end of its round (ru_maxrss)",
        ),
    ]


__all__ = ["run"]
