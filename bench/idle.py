"""Scenarios 5 and 6: what a daemon costs when there is nothing to do.

Idle (5): a tree of 20,000 files in 1,000 directories is uploaded with ``qsyncd sync``; then
``qsyncd run`` starts on it, and once it is ready and its start-up scan is finished, its CPU
seconds (/proc/PID/stat) and the emulator's request log are measured over 60 s.

Restart (6): a tree of 50,000 uploaded files; ``qsyncd run`` is started on it (repeatedly,
stopped with SIGTERM in between). Measured: time from spawn to ``daemon_ready``, to the end of
the start-up scan (the tree reconciled against the ledger), peak RSS, and the requests sent from
spawn until 5 s after the scan (the first maintenance pass runs 1 s after start).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _uploaded_tree(
    emu: EmulatorProc, work: Path, name: str, files: int, dirs: int, log: Callable[[str], None]
) -> tuple[Path, Path, dict[str, Any]]:
    src = work / f"{name}-src"
    data.small_tree(src, files, dirs, 1024)
    cfg = qsyncd_config(work / f"{name}.toml", emu, watch=src, state=work / f"state-{name}", prefix=f"{name}/")
    m = run_measured(
        [QSYNCD, "sync", "-c", str(cfg), "--no-progress", "--log-format", "json"],
        work / f"qsyncd-{name}-sync.log",
        emulator=emu,
        timeout=7200,
    ).check("qsyncd sync")
    done = len(read_events(m.log, "upload_finished"))
    if done != files:
        raise BenchError(f"{name}: qsyncd sync uploaded {done} of {files} files")
    log(
        f"{name}: uploaded {files} files of 1 KiB in {dirs} dirs with qsyncd sync in {m.seconds:.1f} s "
        f"({files / m.seconds:.0f} files/s)"
    )
    return src, cfg, {"sync_seconds": m.seconds, "sync_files_per_s": files / m.seconds}


def _startup(emu: EmulatorProc, cfg: Path, log_path: Path) -> tuple[DaemonProc, dict[str, float]]:
    emu.clear_requests()
    d = DaemonProc(cfg, log_path).start()
    d.wait_event("daemon_ready", 120)
    t_ready = time.monotonic() - d.started
    d.wait_event("rescan_finished", 600, pred=lambda e: e.get("reason") == "startup")
    t_scan = time.monotonic() - d.started
    return d, {"ready": t_ready, "scanned": t_scan}


def run_idle(
    emu: EmulatorProc, work: Path, *, files: int, dirs: int, seconds: float, log: Callable[[str], None]
) -> list[Row]:
    src, cfg, setup = _uploaded_tree(emu, work, "idle", files, dirs, log)
    d, t = _startup(emu, cfg, work / "qsyncd-idle-run.log")
    try:
        time.sleep(5)  # let the first maintenance pass (1 s after start) happen outside the window
        startup_requests = len(emu.requests())
        emu.clear_requests()
        c0, w0 = proc_cpu_seconds(d.pid), time.monotonic()
        time.sleep(seconds)
        c1, w1 = proc_cpu_seconds(d.pid), time.monotonic()
        reqs = emu.requests()
        hwm = proc_hwm_kib(d.pid)
    finally:
        d.stop()
        shutil.rmtree(src, ignore_errors=True)
    cpu = c1 - c0
    pct = 100.0 * cpu / (w1 - w0)
    ops: dict[str, int] = {}
    for r in reqs:
        ops[r.get("operation", "?")] = ops.get(r.get("operation", "?"), 0) + 1
    log(
        f"idle: {cpu:.2f} CPU s over {w1 - w0:.0f} s ({pct:.2f}% of one core), {len(reqs)} requests {ops}; "
        f"startup {t['scanned']:.1f} s, {startup_requests} requests"
    )
    label = f"5. idle, {files} files in {dirs} dirs, {w1 - w0:.0f} s"
    return [
        Row(
            label,
            "qsyncd run: CPU",
            f"{fmt(cpu, 2)} CPU s = {fmt(pct, 2)}% of one core",
            target="< 1%",
            verdict="met" if pct < 1.0 else "MISSED",
            note=f"peak RSS {hwm // 1024} MiB",
            raw={"cpu": cpu, "pct": pct, **setup},
        ),
        Row(
            label,
            "qsyncd run: requests",
            f"{len(reqs)}",
            target="0",
            verdict="met" if not reqs else "MISSED",
            note=(f"{ops}; " if ops else "") + f"{startup_requests} requests during start-up + 5 s",
            raw={"ops": ops, "startup_requests": startup_requests},
        ),
    ]


def run_restart(
    emu: EmulatorProc, work: Path, *, files: int, dirs: int, repeats: int, log: Callable[[str], None]
) -> list[Row]:
    src, cfg, setup = _uploaded_tree(emu, work, "restart", files, dirs, log)
    samples: list[dict[str, Any]] = []
    try:
        for i in range(repeats):
            d, t = _startup(emu, cfg, work / f"qsyncd-restart-{i}.log")
            try:
                time.sleep(max(0.0, 5.0 - (time.monotonic() - d.started - t["scanned"])))
                reqs = emu.requests()
                hwm = proc_hwm_kib(d.pid)
                scan = next(e for e in d.events("rescan_finished") if e.get("reason") == "startup")
            finally:
                d.stop()
            ops: dict[str, int] = {}
            for r in reqs:
                ops[r.get("operation", "?")] = ops.get(r.get("operation", "?"), 0) + 1
            samples.append(
                {
                    **t,
                    "requests": len(reqs),
                    "ops": ops,
                    "hwm_kib": hwm,
                    "scan_files": scan.get("files"),
                    "scan_queued": scan.get("queued"),
                }
            )
            log(
                f"restart {i + 1}/{repeats}: ready {t['ready']:.2f} s, scan done {t['scanned']:.2f} s "
                f"({scan.get('files')} files, {scan.get('queued')} queued), {len(reqs)} requests {ops}, "
                f"rss {hwm // 1024} MiB"
            )
    finally:
        shutil.rmtree(src, ignore_errors=True)
    ready = median([s["ready"] for s in samples])
    scanned = median([s["scanned"] for s in samples])
    reqs_n = max(s["requests"] for s in samples)
    queued = max(s["scan_queued"] or 0 for s in samples)
    label = f"6. restart over {files} uploaded files"
    return [
        Row(
            label,
            "qsyncd run: spawn -> daemon_ready",
            f"{fmt(ready, 2)} s",
            target="< 10 s",
            verdict="met" if ready < 10 else "MISSED",
            raw={"samples": samples, **setup},
        ),
        Row(
            label,
            "qsyncd run: spawn -> start-up scan done",
            f"{fmt(scanned, 2)} s",
            target="< 10 s",
            verdict="met" if scanned < 10 else "MISSED",
            note=f"{queued} files re-queued; peak RSS {max(s['hwm_kib'] for s in samples) // 1024} MiB",
        ),
        Row(
            label,
            "qsyncd run: requests (spawn .. scan + 5 s)",
            f"{reqs_n}",
            target="0",
            verdict="met" if reqs_n == 0 else "MISSED",
            note=str(samples[-1]["ops"]) if reqs_n else "",
        ),
    ]
