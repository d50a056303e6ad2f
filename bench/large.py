"""Scenarios 1 and 4: one large file.

Contenders, alternated round by round (A B C D E, A B C D E, ...): ``qsyncd sync`` with default
settings, ``rclone copy`` with its defaults, ``rclone copy`` tuned (bigger chunks, parallel parts),
a single streaming ``curl -T`` PUT (the emulator's ceiling for one stream), and reading + MD5-hashing
the file locally (the client's ceiling; these two alternate in rounds of their own after the
uploads, see below). Each run uploads under a fresh prefix and a fresh qsyncd
state dir; the object is checked (size) and deleted afterwards. Peak RSS of each process is taken
from its rusage (scenario 4). Pass 1b repeats the compared uploads with the VM's memory settled
before each; pass 1c (informational) moves the file into a running ``qsyncd run`` instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import data
from bench.harness import (
    BUCKET,
    CURL,
    PYTHON,
    QSYNCD,
    BenchError,
    Counters,
    DaemonProc,
    EmulatorProc,
    Measured,
    Row,
    fmt,
    make_remote,
    median,
    page_reporting_kib,
    proc_cpu_seconds,
    proc_hwm_kib,
    qsyncd_config,
    rclone_argv,
    rclone_config,
    read_events,
    rotated,
    run_measured,
    settle_memory,
    signed_headers,
)

MiB = 1 << 20
# rclone with --qingstor-upload-concurrency > 1 sends Complete an ETag computed over the parts in the
# order they finished, so its own check then fails ("corrupted on transfer: md5 hashes differ") and it
# retries the whole file 3 times; --ignore-checksum is the only way to make it finish (the object's
# bytes are right, its ETag is not the MD5). That is what "tuned" costs in correctness.
RCLONE_TUNED = ["--qingstor-chunk-size", "64M", "--qingstor-upload-concurrency", "4", "--ignore-checksum"]
HASH_SCRIPT = (
    "import hashlib,os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nh=hashlib.md5()\n"
    "while b:=os.read(fd,1<<20): h.update(b)\nprint(h.hexdigest())\n"
)


def run(
    emu: EmulatorProc,
    work: Path,
    *,
    size: int,
    repeats: int,
    log: Callable[[str], None],
    settled_repeats: int = 3,
    daemon_repeats: int = 3,
) -> list[Row]:
    src_dir = work / "large-src"
    path = data.large_file(src_dir / "large.bin", size)
    log(f"large: wrote {size // MiB} MiB")
    rconf = rclone_config(work / "rclone.conf", emu)
    remote = make_remote(emu)
    counter = iter(range(1_000_000))

    def check_object(key: str) -> None:
        info = remote.head(key)
        if info is None or info.size != size:
            raise BenchError(f"{key} is missing or has the wrong size after the upload")

    def delete(key: str, m: Measured) -> Measured:
        # Not timed. rclone deletes a single object with one request.
        run_measured(rclone_argv(rconf, emu, "deletefile", f"emu:{BUCKET}/{key}"), work / "delete.log")
        return m

    def qsyncd_run(upload: dict[str, object] | None = None) -> Measured:
        i = next(counter)
        prefix = f"large/qsyncd-{i}/"
        state = work / f"state-large-{i}"
        cfg = qsyncd_config(work / f"large-{i}.toml", emu, watch=src_dir, state=state, prefix=prefix, upload=upload)
        m = run_measured(
            [QSYNCD, "sync", "-c", str(cfg), "--no-progress", "--log-format", "json"],
            work / f"qsyncd-large-{i}.log",
            emulator=emu,
        ).check("qsyncd sync")
        if not read_events(m.log, "upload_finished"):
            raise BenchError("qsyncd sync reported no upload_finished")
        check_object(prefix + "large.bin")
        m.emu_complete = emu.complete_seconds(prefix + "large.bin")
        shutil.rmtree(state, ignore_errors=True)
        return delete(prefix + "large.bin", m)

    def rclone_run(extra: list[str], tag: str) -> Callable[[], Measured]:
        def go() -> Measured:
            i = next(counter)
            prefix = f"large/rclone-{tag}-{i}/"
            m = run_measured(
                rclone_argv(rconf, emu, "copy", str(path), f"emu:{BUCKET}/{prefix}", *extra),
                work / f"rclone-large-{i}.log",
                emulator=emu,
            ).check(f"rclone copy ({tag})")
            check_object(prefix + "large.bin")
            m.emu_complete = emu.complete_seconds(prefix + "large.bin")
            return delete(prefix + "large.bin", m)

        return go

    def curl_run() -> Measured:
        i = next(counter)
        key = f"large/curl-{i}/large.bin"
        url_path = f"/{BUCKET}/{key}"
        hdrs = signed_headers("PUT", url_path)
        argv = [
            CURL,
            "-sS",
            "-f",
            "-o",
            "/dev/null",
            "-T",
            str(path),
            "-H",
            "Expect:",
            "-H",
            f"Date: {hdrs['Date']}",
            "-H",
            f"Authorization: {hdrs['Authorization']}",
            emu.url + url_path,
        ]
        m = run_measured(argv, work / f"curl-large-{i}.log", emulator=emu).check("curl -T")
        check_object(key)
        return delete(key, m)

    def hash_run() -> Measured:
        i = next(counter)
        return run_measured([PYTHON, "-c", HASH_SCRIPT, str(path)], work / f"hash-{i}.log").check("hash")

    def md5sum_run() -> Measured:
        i = next(counter)
        return run_measured(["md5sum", str(path)], work / f"md5sum-{i}.log").check("md5sum")

    contenders: list[tuple[str, Callable[[], Measured]]] = [
        ("qsyncd sync (defaults)", qsyncd_run),
        ("rclone copy (defaults)", rclone_run([], "default")),
        ("rclone copy (tuned: chunk 64M, upload concurrency 4, --ignore-checksum)", rclone_run(RCLONE_TUNED, "tuned")),
        ("curl -T (one streaming PUT)", curl_run),
        ("local read + MD5 (python hashlib)", hash_run),
        ("local read + MD5 (md5sum)", md5sum_run),
        ("qsyncd sync (tuned: part_size 64MiB)", lambda: qsyncd_run({"part_size": "64MiB"})),
    ]
    results: dict[str, list[Measured]] = {name: [] for name, _ in contenders}
    # Pass 1b measures the four uploads the targets compare (the first four, as ``ratio_rows`` reads
    # them) a second time; qsyncd's tuned row is left out.
    compared = contenders[:4]
    settled: dict[str, list[Measured]] = {name: [] for name, _ in compared}
    failed: dict[str, str] = {}
    # Pass 1 ("recycled memory"): the uploads alternate back to back, each starting right after the
    # previous one's delete; the two local hashes (no emulator) get their own rounds afterwards. On
    # the benchmark VM, pages freed more than ~1-3 s ago are handed back to the host and cost the
    # emulator 2-5x more system time to write into (see ``harness.settle_memory``): a run here
    # writes partly into the pages the delete just freed, the more of them the sooner it writes.
    # Pass 1b ("settled memory", only where the kernel reports free pages): before every upload the
    # benchmark waits until the reporter is idle, so every contender writes into handed-back pages
    # alike, as a server that has been up for a while does.
    local = [c for c in contenders if c[0].startswith("local ")]
    uploads = [c for c in contenders if c not in local]
    passes: list[tuple[str, list[tuple[str, Callable[[], Measured]]], int, dict[str, list[Measured]]]] = [
        ("", uploads, repeats, results),
        ("", local, repeats, results),
    ]
    if settled_repeats and page_reporting_kib() is not None:
        passes.append(("settled ", compared, settled_repeats, settled))
    # One upload that is not counted: the first upload after the source file was written fills pages
    # the VM has not used yet (the emulator spent 17.9 CPU s on the first 4 GiB upload of a run,
    # 12.5 s on the next qsyncd one), and round 1's first contender would pay for it alone.
    warm = curl_run()
    log(f"large: warm-up upload (curl, not counted): {warm.seconds:.2f} s, emulator cpu {warm.emu_cpu:.1f} s")

    def pass_line(tag: str, rounds: int) -> Callable[[int, str, Measured], str]:
        return lambda r, name, m: (
            f"large: {tag}round {r + 1}/{rounds} {name}: {m.seconds:.2f} s, "
            f"{size / MiB / m.seconds:.0f} MiB/s, rss {m.maxrss_kib // 1024} MiB, cpu {m.cpu:.1f} s, "
            f"emulator cpu {m.emu_cpu:.1f} s, emulator Complete {m.emu_complete:.2f} s"
            + ("" if m.reported_mib is None else f", reported to the host {m.reported_mib:.0f} MiB")
            + ("" if m.steal is None else f", steal {m.steal:.2f} s")
        )

    for tag, group, rounds, into in passes:
        if tag:
            # Pass 1b's first upload would follow ~16 s of local hashing instead of another upload
            # (it was the slowest run of 1b in all four runs that had no warm-up: 3.17-3.84 s for
            # qsyncd against 2.82-3.29 s in the later rounds): one more uncounted upload first.
            settle_memory()
            warm = curl_run()
            log(f"large: {tag}warm-up upload (curl, not counted): {warm.seconds:.2f} s")
        _alternate(
            group,
            rounds,
            into,
            failed,
            log,
            pass_line(tag, rounds),
            before=(lambda: f" (after {settle_memory():.1f} s waiting for the reporter)") if tag else None,
        )
    daemon_rows: list[Row] = []
    if daemon_repeats:
        # the service against qsyncd sync, tuned rclone and curl (the first, third and fourth contenders)
        contenders_1c = [
            ("qsyncd run (the service; one file moved in)", None),
            contenders[0],
            contenders[2],
            contenders[3],
        ]
        daemon_rows = _daemon_pass(emu, work, path, size, daemon_repeats, contenders_1c, remote, delete, curl_run, log)
    remote.close()
    path.unlink()

    if contenders[0][0] in failed:
        raise BenchError(f"qsyncd failed: {failed[contenders[0][0]]}")
    names = [name for name, _ in contenders]
    rows = ratio_rows(f"1. large file {size // MiB} MiB", names, results, size, failed)
    if any(settled.values()):
        rows += ratio_rows(f"1b. large file {size // MiB} MiB, settled memory", list(settled), settled, size, failed)
    rows += daemon_rows
    # Scenario 4: memory. The processes of pass 1 and 1b, and the service of pass 1c (the daemon's VmHWM
    # after each of its uploads, start-up scan included).
    mem_label = f"4. peak RSS, {size // MiB} MiB file"
    peaks = [
        (name, [m.maxrss_kib for m in results[name] + settled.get(name, [])], "")
        for name, _ in contenders[:3] + contenders[6:]
    ]
    if daemon_rows and daemon_rows[0].raw.get("maxrss_kib"):
        peaks.append(
            ("qsyncd run (the service, pass 1c)", daemon_rows[0].raw["maxrss_kib"], "peak of the whole daemon process")
        )
    for name, kib, note in peaks:
        if not kib:
            continue
        rss = max(kib) / 1024
        is_q = name.startswith("qsyncd")
        rows.append(
            Row(
                mem_label,
                name,
                f"{fmt(rss, 0)} MiB",
                target="<= 128 MiB" if is_q else "",
                verdict=("met" if rss <= 128 else "MISSED") if is_q else "",
                note=note,
                raw={"maxrss_kib": kib},
            )
        )
    return rows


def _daemon_pass(
    emu: EmulatorProc,
    work: Path,
    path: Path,
    size: int,
    rounds: int,
    contenders: list[tuple[str, Callable[[], Measured] | None]],
    remote: Any,
    delete: Callable[[str, Measured], Measured],
    warm_up: Callable[[], Measured],
    log: Callable[[str], None],
) -> list[Row]:
    """Pass 1c (informational, no target): the same file uploaded by a running ``qsyncd run``, the
    way the service meets it, alternated with ``qsyncd sync``, tuned rclone and curl (back to back,
    as in pass 1). The file is renamed into the watched directory and back out after each upload;
    its time is the daemon's own ``upload_started`` -> ``upload_finished`` (event timestamps: the
    quiet period before, the interpreter's start-up and shutdown are not in it), its CPU the
    daemon's and the emulator's CPU seconds from the rename to the event."""
    watch = work / "large-watch"
    watch.mkdir()
    prefix = "large/daemon/"
    cfg = qsyncd_config(work / "large-daemon.toml", emu, watch=watch, state=work / "state-large-daemon", prefix=prefix)
    daemon = DaemonProc(cfg, work / "qsyncd-large-daemon.log").start()
    counter = iter(range(1_000_000))

    def daemon_run() -> Measured:
        name = f"large-{next(counter)}.bin"
        key = prefix + name
        os.sync()
        cpu0, before = proc_cpu_seconds(daemon.pid), Counters.read(emu)
        os.rename(path, watch / name)
        try:
            done = daemon.wait_event("upload_finished", 600, pred=lambda e: e.get("key") == key)[0]
            cpu1, after = proc_cpu_seconds(daemon.pid), Counters.read(emu)
        finally:
            os.rename(watch / name, path)
        started = daemon.wait_event("upload_started", 5, pred=lambda e: e.get("key") == key)[-1]
        seconds = _event_time(done) - _event_time(started)
        info = remote.head(key)
        if info is None or info.size != size:
            raise BenchError(f"{key} is missing or has the wrong size after the upload")
        m = Measured(
            seconds,
            0,
            proc_hwm_kib(daemon.pid),
            cpu1 - cpu0,
            daemon.log,
            emu_complete=emu.complete_seconds(key),
            **after.since(before),
        )
        return delete(key, m)

    group = [(name, fn or daemon_run) for name, fn in contenders]
    results: dict[str, list[Measured]] = {name: [] for name, _ in group}
    failed: dict[str, str] = {}
    try:
        daemon.wait_event("daemon_ready", 60)
        daemon.wait_event("rescan_finished", 60)
        # 1c follows the local hashing (no uploads for ~16 s) like 1b does: one uncounted upload first
        # (the service's first round of a 4 GiB run without it: emulator CPU 18.6 s against 14.9 s for
        # the qsyncd sync after it).
        warm = warm_up()
        log(f"large: daemon pass warm-up upload (not counted): {warm.seconds:.2f} s")
        _alternate(
            group,
            rounds,
            results,
            failed,
            log,
            lambda r, name, m: (
                f"large: daemon pass round {r + 1}/{rounds} {name}: {m.seconds:.2f} s, "
                f"{size / MiB / m.seconds:.0f} MiB/s, cpu {m.cpu:.1f} s, emulator cpu {m.emu_cpu:.1f} s"
            ),
        )
    finally:
        daemon.stop()
    label = f"1c. large file {size // MiB} MiB, into the running service (informational)"
    dname, qname = group[0][0], group[1][0]
    rows: list[Row] = []
    if not results[dname]:
        return [Row(label, dname, "failed", verdict="ERROR", note=failed.get(dname, ""))]
    d = median([size / MiB / m.seconds for m in results[dname]])
    for name, _ in group:
        ms = results[name]
        if not ms:
            rows.append(Row(label, name, "failed", verdict="ERROR", note=failed.get(name, "")))
            continue
        s = median([size / MiB / m.seconds for m in ms])
        rows.append(
            Row(
                label,
                name,
                f"{fmt(s, 0)} MiB/s (median {fmt(median([m.seconds for m in ms]), 2)} s)",
                ratio="" if name == dname else f"service = {fmt(d / s, 2)}x",
                note=f"client cpu {fmt(median([m.cpu for m in ms]), 1)} s, emulator cpu "
                f"{fmt(median([m.emu_cpu for m in ms]), 1)} s"
                + (
                    "; upload_started -> upload_finished, without the quiet period before it"
                    if name == dname
                    else "; the whole process, start-up and exit included"
                    if name == qname
                    else ""
                ),
                raw={
                    "seconds": [m.seconds for m in ms],
                    "cpu": [m.cpu for m in ms],
                    "emu_cpu": [m.emu_cpu for m in ms],
                    "maxrss_kib": [m.maxrss_kib for m in ms],
                },
            )
        )
    return rows


def _alternate(
    group: list[tuple[str, Callable[[], Measured]]],
    rounds: int,
    into: dict[str, list[Measured]],
    failed: dict[str, str],
    log: Callable[[str], None],
    line: Callable[[int, str, Measured], str],
    before: Callable[[], str] | None = None,
) -> None:
    """Run every contender of ``group`` once per round for ``rounds`` rounds, the running order
    rotated each round, into ``into``. A contender that fails is logged, noted in ``failed`` and
    skipped from then on: one broken contender must not hide the others' figures. ``before`` runs
    ahead of every run and returns what to add to its log line (``line``)."""
    for r in range(rounds):
        for name, fn in rotated(group, r):
            if name in failed:
                continue
            suffix = before() if before else ""
            try:
                m = fn()
            except BenchError as err:
                failed[name] = str(err).splitlines()[0] + " " + " ".join(str(err).splitlines()[1:2])[:300]
                log(f"large: {name} FAILED: {err}")
                continue
            into[name].append(m)
            log(line(r, name, m) + suffix)


def _event_time(ev: dict[str, Any]) -> float:
    return datetime.fromisoformat(ev["ts"]).timestamp()


def ratio_rows(
    label: str, names: list[str], results: dict[str, list[Measured]], size: int, failed: dict[str, str]
) -> list[Row]:
    """The speed rows of one pass: each contender's median MiB/s and qsyncd's ratio to it."""
    qname, rclone_default, rclone_tuned, curl = names[:4]
    targets = {rclone_default: 2.0, rclone_tuned: 1.0, curl: 0.8}

    def speed(name: str) -> float:
        return median([size / MiB / m.seconds for m in results[name]])

    q = speed(qname)
    q_open = median([size / MiB / (m.seconds - m.emu_complete) for m in results[qname]])
    rows: list[Row] = []
    for name in names:
        ms = results[name]
        if not ms:
            rows.append(Row(label, name, "failed", verdict="ERROR", note=failed.get(name, "")))
            continue
        s = speed(name)
        ratio = q / s if s else float("nan")
        tgt = targets.get(name)
        reported = [m.reported_mib for m in ms if m.reported_mib is not None]
        steal = [m.steal for m in ms if m.steal is not None]
        row = Row(
            label,
            name,
            f"{fmt(s, 0)} MiB/s (median {fmt(median([m.seconds for m in ms]), 2)} s)",
            ratio=(
                ""
                if name == qname
                else f"this / rclone tuned = {fmt(s / speed(rclone_tuned), 2)}x"
                if name.startswith("qsyncd") and results.get(rclone_tuned)
                else f"qsyncd = {fmt(ratio, 2)}x"
            ),
            target=f">= {tgt}x" if tgt else "",
            verdict=("met" if ratio >= tgt else "MISSED") if tgt else "",
            note=f"client cpu {fmt(median([m.cpu for m in ms]), 1)} s, emulator cpu "
            f"{fmt(median([m.emu_cpu for m in ms]), 1)} s"
            + (
                f"; emulator Complete {fmt(median([m.emu_complete for m in ms]), 2)} s, without it "
                f"{fmt(median([size / MiB / (m.seconds - m.emu_complete) for m in ms]), 0)} MiB/s"
                if any(m.emu_complete for m in ms)
                else ""
            )
            + (
                f"; reported to the host during a run: median {fmt(median(reported), 0)} MiB"
                if reported and not name.startswith("local ")
                else ""
            )
            + (f"; steal during a run: median {fmt(median(steal), 2)} s, max {fmt(max(steal), 2)} s" if steal else ""),
            raw={
                "seconds": [m.seconds for m in ms],
                "cpu": [m.cpu for m in ms],
                "emu_complete": [m.emu_complete for m in ms],
                "reported_mib": reported,
                "steal": steal,
                "emu_cpu": [m.emu_cpu for m in ms],
                "maxrss_kib": [m.maxrss_kib for m in ms],
            },
        )
        if name == curl and s:
            row.note += f"; qsyncd without the emulator's Complete = {fmt(q_open / s, 2)}x"
        rows.append(row)
    return rows


__all__ = ["RCLONE_TUNED", "run"]
