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
6. ``qsyncd run`` with the defaults on the uploaded tree: close() -> visible (HEAD) for new files written
   into directories across the tree, then the daemon's CPU while idle (the default rescan interval's
   share added from 3.).
7. ``qsyncd run`` allowed fewer inotify watches than the tree has directories (a private user namespace's
   ``user.max_inotify_watches``, as tests/reliability/test_flood.py does; needs root and ``unshare``):
   ``watch_failed``, how often the half-watched root is rescanned, close() -> visible for new files in
   watched and unwatched directories, and the CPU it costs.

Plus the state DB's size per file. Figures are printed, never judged against a time.

With ``--scale-dir DIR`` the tree, the state and the emulator's bucket are kept in DIR, and a later run
of the same size reuses them: the first sync's figures (and rclone's first run) are read back from
``DIR/scale/cache.json`` instead of being measured again (a first sync of 1,000,000 files takes most of
an hour here), so the later phases can be measured again after a change.
"""

from __future__ import annotations

import dataclasses
import json
import os
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
    make_remote,
    median,
    percentile,
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
NEW_FILES = 20  # phase 6: files written into directories across the tree, 2 per second
IDLE_SECONDS = 60.0  # phase 6: the daemon's CPU measured over this long with nothing to do
LIMITED_FILES = 10  # phase 7: files written into directories across the half-watched tree

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


def _rows_to_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rows]


def _rows_from_json(items: list[dict[str, Any]], when: str) -> list[Row]:
    rows = [Row(**r) for r in items]
    for r in rows:
        r.note = f"{r.note}; measured {when} (--scale-dir)".lstrip("; ")
    return rows


def run(
    emu: EmulatorProc,
    work: Path,
    *,
    files: int,
    rescans: int,
    log: Callable[[str], None],
    keep: bool = False,
) -> list[Row]:
    dirs = max(1, files // PER_DIR)
    src = work / "scale-src"
    state = work / "state-scale"
    cache_path = work / "cache.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if keep and cache_path.exists() else {}
    if cache and cache.get("files") != files:
        raise BenchError(
            f"scale: {work} holds a tree of {cache.get('files')} files, not {files}: use another --scale-dir"
        )
    if not cache and src.exists():
        raise BenchError(f"scale: {src} exists but no finished first sync is recorded: remove {work}")
    label = f"8. scale, {files:,} files x 1 KiB, {PER_DIR} per directory"
    rows: list[Row] = []

    def save() -> None:
        if keep:
            cache_path.write_text(json.dumps(cache, indent=1))

    try:
        if "sync" in cache:
            rows += _rows_from_json(cache["sync"], cache["sync_at"])
            log(f"scale: reusing the tree in {src} and the first sync measured {cache['sync_at']}")
        else:
            t0 = time.monotonic()
            data.small_tree(src, files, dirs, 1024)
            log(f"scale: wrote {files} files of 1 KiB in {dirs} directories in {time.monotonic() - t0:.0f} s")
            sync_rows = _first_sync(emu, work, src, state, files=files, dirs=dirs, label=label, log=log)
            rows += sync_rows
            cache.update(
                files=files, sync=_rows_to_json(sync_rows), sync_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            )
            save()

        # 4. the floor (before the daemon, so its page cache is as warm as the daemon's)
        walks = []
        for i in range(WALKS):
            w = run_measured([PYTHON, "-c", _WALK, str(src)], work / f"walk-{i}.out").check("plain walk")
            n_walk, wall_s, cpu_s = w.log.read_text().split()
            walks.append((float(wall_s), float(cpu_s)))
        walk_wall, walk_cpu_s = median([x[0] for x in walks]), median([x[1] for x in walks])
        log(f"scale: plain walk of {n_walk} files (median of {WALKS}): {walk_wall:.2f} s, cpu {walk_cpu_s:.2f} s")

        # 2 + 3. restart, then rescans every second
        scan_rows, cpu_med = _restart_and_rescans(
            emu, work, src, state, files=files, rescans=rescans, walk=(walk_wall, walk_cpu_s), label=label, log=log
        )
        rows += scan_rows
        rows.append(
            Row(
                label,
                f"plain os.scandir + lstat walk (a fresh Python, median of {WALKS})",
                f"{fmt(walk_cpu_s, 2)} CPU s, {fmt(walk_wall, 2)} s",
                note=f"{fmt(1e6 * walk_cpu_s / files, 1)} us per file",
            )
        )

        # 6. new files in a big tree, then idle
        rows += _new_files_and_idle(emu, work, src, state, dirs=dirs, rescan_cpu=cpu_med, label=label, log=log)

        # 7. fewer inotify watches than directories
        rows += _watch_limited(emu, work, src, state, dirs=dirs, label=label, log=log)

        # 5. rclone's no-op re-run over the same bucket prefix
        rconf = rclone_config(work / "rclone.conf", emu)
        argv = rclone_argv(rconf, emu, "copy", str(src), f"emu:{BUCKET}/{PREFIX}", "--transfers", "16")
        if "rclone_first" not in cache:
            first = run_measured(argv, work / "rclone-scale-0.log", emulator=emu, timeout=7200).check("rclone copy")
            cache["rclone_first"] = first.seconds
            save()
        log(f"scale: rclone copy (first, over qsyncd's objects) {cache['rclone_first']:.1f} s")
        emu.clear_requests()
        r = run_measured(argv, work / "rclone-scale-1.log", emulator=emu, timeout=7200).check("rclone copy")
        rops = operations(emu.requests())
        log(f"scale: rclone no-op re-run {r.seconds:.1f} s, rss {r.maxrss_kib // 1024} MiB, {rops}")
        rows.append(
            Row(
                label,
                "rclone copy --transfers 16: no-op re-run",
                f"{fmt(r.seconds, 1)} s, {fmt(r.cpu, 1)} CPU s, {r.maxrss_kib // 1024} MiB",
                note=f"{rops}; its first run over qsyncd's objects took {fmt(cache['rclone_first'], 1)} s",
            )
        )
    finally:
        if not keep:
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(state, ignore_errors=True)
    return rows


def _first_sync(
    emu: EmulatorProc,
    work: Path,
    src: Path,
    state: Path,
    *,
    files: int,
    dirs: int,
    label: str,
    log: Callable[[str], None],
) -> list[Row]:
    """1. ``qsyncd sync`` of the fresh tree."""
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
    return [
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


def _restart_and_rescans(
    emu: EmulatorProc,
    work: Path,
    src: Path,
    state: Path,
    *,
    files: int,
    rescans: int,
    walk: tuple[float, float],
    label: str,
    log: Callable[[str], None],
) -> tuple[list[Row], float]:
    """2 + 3. ``qsyncd run`` restarted on the uploaded tree, then rescans every second."""
    walk_wall, walk_cpu_s = walk
    rcfg = qsyncd_config(
        work / "scale-run.toml",
        emu,
        watch=src,
        state=state,
        prefix=PREFIX,
        settle={"rescan_interval_seconds": 1.0, "rescan_cpu_share": 0.0},  # measure rescans back to back
    )
    emu.clear_requests()
    d = DaemonProc(rcfg, _fresh(work / "qsyncd-scale-run.log")).start()
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
    rows = [
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
    ]
    return rows, cpu_med


def _fresh(log: Path) -> Path:
    """A daemon's log path with no earlier run's events in it (a kept ``--scale-dir`` holds the last run's)."""
    log.unlink(missing_ok=True)
    return log


def _spread(src: Path, dirs: int, n: int, tag: str) -> list[tuple[Path, str]]:
    """``n`` new files, one in each of ``n`` directories spread evenly across the tree, with their keys."""
    names = sorted(p.relative_to(src).as_posix() for p in src.glob("*/*") if p.is_dir())  # the leaves
    picked = [names[(i * len(names)) // n] for i in range(n)] if n <= len(names) else names
    return [(src / d / f"{tag}-{i:03d}.bin", f"{PREFIX}{d}/{tag}-{i:03d}.bin") for i, d in enumerate(picked)]


def _new_files_and_idle(
    emu: EmulatorProc,
    work: Path,
    src: Path,
    state: Path,
    *,
    dirs: int,
    rescan_cpu: float,
    label: str,
    log: Callable[[str], None],
) -> list[Row]:
    """6. The defaults on the big tree: close() -> visible for new files, then the CPU while idle."""
    from bench.latency import PROBE_EVERY, write_and_probe
    from qsyncd.config import load_config
    from qsyncd.service.roots import periodic_rescan_every

    cfg = qsyncd_config(work / "scale-defaults.toml", emu, watch=src, state=state, prefix=PREFIX)
    loaded = load_config(cfg)
    quiet = loaded.settle.quiet_seconds
    interval = periodic_rescan_every(loaded.settle.rescan_interval_seconds, rescan_cpu, loaded.settle.rescan_cpu_share)
    writes = _spread(src, dirs, NEW_FILES, f"new{int(time.time())}")
    remote = make_remote(emu)
    d = DaemonProc(cfg, _fresh(work / "qsyncd-scale-defaults.log")).start()
    try:
        d.wait_event("rescan_finished", 1800, pred=lambda e: e.get("reason") == "startup")
        closed, visible, _ = write_and_probe(remote, writes, rate=2.0, quiet=quiet, size=1024)
        if len(visible) != len(closed):
            raise BenchError(f"scale: {len(closed) - len(visible)} of {len(closed)} new files never became visible")
        time.sleep(quiet + 1)  # the last upload's bookkeeping
        cpu0, t0 = proc_cpu_seconds(d.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_share = (proc_cpu_seconds(d.pid) - cpu0) / (time.monotonic() - t0)
        periodic = len(d.events("rescan_finished")) - 1
    finally:
        d.stop()
        remote.close()
        for path, _ in writes:
            path.unlink(missing_ok=True)
    lat = sorted(visible[k] - closed[k] - quiet for k in closed)
    p50, worst = percentile(lat, 50), lat[-1]
    with_rescans = idle_share + rescan_cpu / interval
    log(
        f"scale: {len(lat)} new files, close -> visible minus quiet {quiet} s: p50 {p50:.3f} max {worst:.3f}; "
        f"idle {100 * idle_share:.2f} % of a core ({periodic} rescans meanwhile), "
        f"{100 * with_rescans:.2f} % with a rescan every {interval:g} s"
    )
    return [
        Row(
            label,
            f"qsyncd run (defaults), {len(lat)} new files across the tree: close() -> HEAD 200, minus quiet",
            f"p50 {fmt(p50, 3)} s, max {fmt(worst, 3)} s",
            target="<= 0.1 s",
            verdict="met" if worst <= 0.1 else "MISSED",
            note=f"quiet {quiet:g} s; HEAD probed every {PROBE_EVERY * 1000:.0f} ms; written 2 per second",
            raw={"latencies": lat},
        ),
        Row(
            label,
            f"idle CPU ({IDLE_SECONDS:g} s, nothing to do); with the default's rescan every {interval:,.0f} s added",
            f"{fmt(100 * idle_share, 2)} % of a core; {fmt(100 * with_rescans, 2)} %",
            target="<= 1 %",
            verdict="met" if with_rescans <= 0.01 else "MISSED",
            note=f"a rescan's median CPU {fmt(rescan_cpu, 2)} s / {interval:g} s",
        ),
    ]


def _watch_limited(
    emu: EmulatorProc, work: Path, src: Path, state: Path, *, dirs: int, label: str, log: Callable[[str], None]
) -> list[Row]:
    """7. Fewer inotify watches allowed than the tree has directories (a private user namespace's limit)."""
    from bench.latency import write_and_probe
    from qsyncd.config import load_config

    allowed = max(2, dirs // 2)
    what = f"qsyncd run with {allowed:,} inotify watches for {dirs + 1:,} directories"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return [Row(label, what, "not measured", verdict="skipped", note="needs root and unshare")]
    cfg = qsyncd_config(work / "scale-limited.toml", emu, watch=src, state=state, prefix=PREFIX)
    quiet = load_config(cfg).settle.quiet_seconds
    writes = _spread(src, dirs, LIMITED_FILES, f"lim{int(time.time())}")
    remote = make_remote(emu)
    # the limit is set in a private user namespace (user.max_inotify_watches): nothing else on the host is affected
    limit = f'echo {allowed} > /proc/sys/user/max_inotify_watches && exec "$@"'
    d = DaemonProc(cfg, _fresh(work / "qsyncd-scale-limited.log"))
    d.start(wrap=["unshare", "--user", "--map-root-user", "sh", "-c", limit, "sh"])
    try:
        failed = d.wait_event("watch_failed", 300)
        d.wait_event("rescan_finished", 1800, pred=lambda e: e.get("reason") == "startup")
        cpu0, t0 = proc_cpu_seconds(d.pid), time.monotonic()
        scans0 = len(d.events("rescan_finished"))
        closed, visible, _ = write_and_probe(remote, writes, rate=2.0, quiet=quiet, size=1024, timeout=1200)
        share = (proc_cpu_seconds(d.pid) - cpu0) / (time.monotonic() - t0)
        scans = d.events("rescan_finished")[scans0:]
        # the steady state: CPU between the ends of two periodic rescans that follow (the schedule is set by
        # the last one's cost)
        periodic = lambda e: e.get("reason") == "periodic"  # noqa: E731
        n = len([e for e in d.events("rescan_finished") if periodic(e)])
        d.wait_event("rescan_finished", 1800, pred=periodic, count=n + 1)
        cpu1, t1 = proc_cpu_seconds(d.pid), time.monotonic()
        d.wait_event("rescan_finished", 1800, pred=periodic, count=n + 2)
        steady = (proc_cpu_seconds(d.pid) - cpu1) / (time.monotonic() - t1)
        gap = time.monotonic() - t1
    finally:
        d.stop()
        remote.close()
        for path, _ in writes:
            path.unlink(missing_ok=True)
    if len(visible) != len(closed):
        raise BenchError(
            f"scale: {len(closed) - len(visible)} of {len(closed)} files in a half-watched tree never arrived"
        )
    lat = sorted(visible[k] - closed[k] - quiet for k in closed)
    fast = sum(x <= 1.0 for x in lat)
    action = failed[0].get("action", "")
    log(
        f"scale: {what}: watch_failed ({action}); {len(lat)} new files, {fast} within 1 s, "
        f"{len(scans)} rescans meanwhile: close -> visible minus quiet p50 {percentile(lat, 50):.1f} "
        f"max {lat[-1]:.1f} s; "
        f"{100 * share:.2f} % of a core meanwhile; {100 * steady:.2f} % between rescans {gap:.0f} s apart"
    )
    return [
        Row(
            label,
            f"{what}: close() -> HEAD 200, minus quiet, for {len(lat)} new files",
            f"p50 {fmt(percentile(lat, 50), 1)} s, max {fmt(lat[-1], 1)} s",
            target="every file arrives",
            verdict="met",
            note=f"{fast} within 1 s; {len(scans)} rescans ended meanwhile; watch_failed: {action}",
            raw={"latencies": lat},
        ),
        Row(
            label,
            f"{what}: CPU from one periodic rescan's end to the next",
            f"{fmt(100 * steady, 2)} % of a core",
            note=f"{fmt(gap, 0)} s apart; {fmt(100 * share, 1)} % while the files arrived (a rescan ran)",
        ),
    ]


__all__ = ["proc_rss_kib", "run"]
