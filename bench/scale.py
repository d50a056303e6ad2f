"""Scenario 8 (``--only scale``): a tree of many small files, as issue 21 measures it.

One invocation, one emulator, one tree of ``--files`` N files of 1 KiB, 1,000 per directory:

1. ``qsyncd sync`` of the fresh tree (fresh state dir): wall time, peak RSS, and the requests it sent
   by operation from the emulator's request log (HEADs especially: a listing should answer them).
2. ``qsyncd run`` restarted on the uploaded tree: spawn -> ``daemon_ready``, spawn -> start-up scan
   done, peak RSS during it, requests sent.
3. The same daemon, rescanning every second: CPU seconds per periodic rescan (from /proc/PID/stat
   between consecutive ``rescan_finished`` events) and RSS after each.
4. A plain ``os.scandir`` + ``lstat`` walk of the same tree in a fresh Python process: the floor a
   rescan is compared with.
5. ``rclone copy`` over the same bucket prefix, run once to settle, then the no-op re-run measured.

Plus the state DB's size per file. Figures are printed, never judged against a time.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import data
from bench.harness import (
    BUCKET,
    PYTHON,
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
    rclone_argv,
    rclone_config,
    read_events,
    run_measured,
)

PER_DIR = 1000
PREFIX = "scale/"
WALKS = 3  # plain walks measured (median): one is as noisy as one rescan

# The floor: what any rescan has to do at least (Python, one scandir per directory, one lstat per entry).
_WALK = """
import os, sys, time
t0, c0 = time.perf_counter(), time.process_time()
n, stack = 0, [sys.argv[1]]
while stack:
    with os.scandir(stack.pop()) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            else:
                e.stat(follow_symlinks=False)
                n += 1
print(n, time.perf_counter() - t0, time.process_time() - c0)
"""


def proc_rss_kib(pid: int) -> int:
    """VmRSS (resident now) of a live process in KiB, 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def operations(reqs: list[dict[str, Any]]) -> dict[str, int]:
    ops: dict[str, int] = {}
    for r in reqs:
        op = str(r.get("operation", "?"))
        if op == "HeadObject":
            op += f" {r.get('status')}"
        ops[op] = ops.get(op, 0) + 1
    return dict(sorted(ops.items()))


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(emu: EmulatorProc, work: Path, *, files: int, rescans: int, log: Callable[[str], None]) -> list[Row]:
    dirs = max(1, files // PER_DIR)
    src = work / "scale-src"
    t0 = time.monotonic()
    data.small_tree(src, files, dirs, 1024)
    log(f"scale: wrote {files} files of 1 KiB in {dirs} directories in {time.monotonic() - t0:.0f} s")
    label = f"8. scale, {files:,} files x 1 KiB, {PER_DIR} per directory"
    rows: list[Row] = []
    state = work / "state-scale"
    try:
        # 1. the first sync
        cfg = qsyncd_config(work / "scale-sync.toml", emu, watch=src, state=state, prefix=PREFIX)
        emu.clear_requests()
        m = run_measured(
            [QSYNCD, "sync", "-c", str(cfg), "--no-progress", "--log-format", "json"],
            work / "qsyncd-scale-sync.log",
            emulator=emu,
            timeout=7200,
        ).check("qsyncd sync")
        done = len(read_events(m.log, "upload_finished"))
        if done != files:
            raise BenchError(f"scale: qsyncd sync uploaded {done} of {files} files")
        ops = operations(emu.requests())
        total = sum(ops.values())
        heads = sum(n for op, n in ops.items() if op.startswith("HeadObject"))
        db = _dir_bytes(state)
        log(f"scale: sync {m.seconds:.1f} s, cpu {m.cpu:.1f} s, rss {m.maxrss_kib // 1024} MiB, {ops}")
        rows += [
            Row(
                label,
                "qsyncd sync (fresh tree): requests per file",
                fmt(total / files, 3),
                target="~1 + 1 listing per dir",
                verdict="met" if heads == 0 else "MISSED",
                note=f"{ops}; {dirs} directories",
                raw={"ops": ops, "seconds": m.seconds, "cpu": m.cpu},
            ),
            Row(label, "qsyncd sync: HEADs", f"{heads:,}", target="0", verdict="met" if heads == 0 else "MISSED"),
            Row(
                label,
                "qsyncd sync: wall, CPU, peak RSS",
                f"{fmt(m.seconds, 1)} s, {fmt(m.cpu, 1)} CPU s, {m.maxrss_kib // 1024} MiB",
                target="<= 128 MiB",
                verdict="met" if m.maxrss_kib <= 128 * 1024 else "MISSED",
                note=f"{files / m.seconds:,.0f} files/s; emulator cpu {fmt(m.emu_cpu, 1)} s",
            ),
            Row(label, "state DB size per file", f"{db / files:,.0f} bytes", note=f"{db / 2**20:,.1f} MiB in all"),
        ]

        # 4. the floor (before the daemon, so its page cache is as warm as the daemon's)
        walks = []
        for i in range(WALKS):
            w = run_measured([PYTHON, "-c", _WALK, str(src)], work / f"walk-{i}.out").check("plain walk")
            n_walk, wall_s, cpu_s = w.log.read_text().split()
            walks.append((float(wall_s), float(cpu_s)))
        walk_wall, walk_cpu_s = median([x[0] for x in walks]), median([x[1] for x in walks])
        log(f"scale: plain walk of {n_walk} files (median of {WALKS}): {walk_wall:.2f} s, cpu {walk_cpu_s:.2f} s")

        # 2 + 3. restart, then rescans every second
        rcfg = qsyncd_config(
            work / "scale-run.toml",
            emu,
            watch=src,
            state=state,
            prefix=PREFIX,
            settle={"rescan_interval_seconds": 1.0},
        )
        emu.clear_requests()
        d = DaemonProc(rcfg, work / "qsyncd-scale-run.log").start()
        try:
            d.wait_event("daemon_ready", 120)
            t_ready = time.monotonic() - d.started
            d.wait_event("rescan_finished", 1800, pred=lambda e: e.get("reason") == "startup")
            t_scan = time.monotonic() - d.started
            hwm_start = proc_hwm_kib(d.pid)
            cpu_prev = proc_cpu_seconds(d.pid)
            startup_reqs = operations(emu.requests())
            log(
                f"scale: restart ready {t_ready:.2f} s, reconciled {t_scan:.2f} s, "
                f"peak rss {hwm_start // 1024} MiB, requests {startup_reqs}"
            )
            cpus: list[float] = []
            rss: list[int] = []
            seen = len(d.events("rescan_finished"))  # the start-up scan's
            deadline = time.monotonic() + 60 + rescans * max(5.0, 20 * walk_cpu_s)
            while len(cpus) < rescans:
                n = len(d.events("rescan_finished"))
                if n > seen + 1:
                    raise BenchError("scale: two rescans ended between polls (the poll is too slow)")
                if n == seen + 1:
                    cpu = proc_cpu_seconds(d.pid)
                    cpus.append(cpu - cpu_prev)
                    rss.append(proc_rss_kib(d.pid))
                    cpu_prev, seen = cpu, n
                if time.monotonic() > deadline:
                    raise BenchError(f"scale: only {len(cpus)} of {rescans} rescans in time")
                time.sleep(0.01)
            hwm_all = proc_hwm_kib(d.pid)
            scan_reqs = operations(emu.requests())
        finally:
            d.stop()
        cpu_med = median(cpus)
        log(
            f"scale: {len(cpus)} rescans, cpu per rescan median {cpu_med:.2f} s (min {min(cpus):.2f}, "
            f"max {max(cpus):.2f}); rss after each {rss[0] // 1024} -> {rss[-1] // 1024} MiB "
            f"(max {max(rss) // 1024}); peak {hwm_all // 1024} MiB"
        )
        rows += [
            Row(
                label,
                "qsyncd run restart: spawn -> ready / start-up reconcile done",
                f"{fmt(t_ready, 2)} / {fmt(t_scan, 2)} s",
                target="ready <= 2 s",
                verdict="met" if t_ready <= 2 else "MISSED",
                note=f"reconcile = {fmt((t_scan - t_ready) / walk_wall, 1)}x the plain walk's wall time",
            ),
            Row(
                label,
                "qsyncd run restart: peak RSS during the reconcile",
                f"{hwm_start // 1024} MiB",
                target="<= 128 MiB",
                verdict="met" if hwm_start <= 128 * 1024 else "MISSED",
            ),
            Row(
                label,
                f"periodic rescan: CPU s per rescan (median of {len(cpus)})",
                f"{fmt(cpu_med, 2)} s",
                ratio=f"{fmt(cpu_med / walk_cpu_s, 1)}x the plain walk",
                target="<= 2.5x",
                verdict="met" if cpu_med <= 2.5 * walk_cpu_s else "MISSED",
                note=f"min {fmt(min(cpus), 2)}, max {fmt(max(cpus), 2)}; {fmt(1e6 * cpu_med / files, 1)} us per file",
                raw={"cpus": cpus, "rss_kib": rss},
            ),
            Row(
                label,
                "RSS after each rescan (first -> last, max); peak of the daemon",
                f"{rss[0] // 1024} -> {rss[-1] // 1024} MiB (max {max(rss) // 1024}); peak {hwm_all // 1024} MiB",
                target="<= 128 MiB, flat",
                verdict="met" if hwm_all <= 128 * 1024 else "MISSED",
            ),
            Row(
                label,
                "requests from spawn to the last rescan",
                f"{sum(scan_reqs.values())}",
                target="0",
                verdict="met" if not scan_reqs else "MISSED",
                note=str(scan_reqs) if scan_reqs else "",
            ),
            Row(
                label,
                f"plain os.scandir + lstat walk (a fresh Python, median of {WALKS})",
                f"{fmt(walk_cpu_s, 2)} CPU s, {fmt(walk_wall, 2)} s",
                note=f"{fmt(1e6 * walk_cpu_s / files, 1)} us per file",
            ),
        ]

        # 5. rclone's no-op re-run over the same bucket prefix
        rconf = rclone_config(work / "rclone.conf", emu)
        argv = rclone_argv(rconf, emu, "copy", str(src), f"emu:{BUCKET}/{PREFIX}", "--transfers", "16")
        first = run_measured(argv, work / "rclone-scale-0.log", emulator=emu, timeout=7200).check("rclone copy")
        log(f"scale: rclone copy (first, over qsyncd's objects) {first.seconds:.1f} s")
        emu.clear_requests()
        r = run_measured(argv, work / "rclone-scale-1.log", emulator=emu, timeout=7200).check("rclone copy")
        rops = operations(emu.requests())
        log(f"scale: rclone no-op re-run {r.seconds:.1f} s, rss {r.maxrss_kib // 1024} MiB, {rops}")
        rows.append(
            Row(
                label,
                "rclone copy --transfers 16: no-op re-run",
                f"{fmt(r.seconds, 1)} s, {fmt(r.cpu, 1)} CPU s, {r.maxrss_kib // 1024} MiB",
                note=f"{rops}; its first run over qsyncd's objects took {fmt(first.seconds, 1)} s",
            )
        )
    finally:
        shutil.rmtree(src, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    return rows


__all__ = ["proc_rss_kib", "run"]
