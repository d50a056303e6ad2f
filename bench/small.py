"""Scenario 2: many small files (5,000 x 16 KiB in nested directories), on loopback and (``small-rtt``)
with a round trip added to every request.

``qsyncd sync`` (defaults, fresh state dir: one listing per directory, then one PUT per file), and
with ``concurrency`` raised to ``TUNED_CONCURRENCY``, against ``rclone copy`` with ``--transfers 4``
and ``--transfers 16``, alternated round by round, each run to a fresh prefix.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from bench import data
from bench.harness import (
    BUCKET,
    QSYNCD,
    BenchError,
    EmulatorProc,
    Measured,
    Row,
    fmt,
    median,
    qsyncd_config,
    rclone_argv,
    rclone_config,
    read_events,
    rotated,
    run_measured,
)
from qsyncd.config import UploadConfig

TUNED_CONCURRENCY = 32  # the extra row: twice the default, for links with a long round trip


def run(
    emu: EmulatorProc,
    work: Path,
    *,
    files: int,
    dirs: int,
    size: int,
    repeats: int,
    log: Callable[[str], None],
    latency: float = 0.0,
) -> list[Row]:
    """``latency`` > 0: every request waits that long in the emulator (a network round trip); the
    rows are then informational (the issue's target is for the plain loopback run)."""
    src = work / "small-src"
    data.small_tree(src, files, dirs, size)
    log(f"small: wrote {files} files of {size} bytes in {dirs} directories")
    emu.set_latency(latency)
    rconf = rclone_config(work / "rclone.conf", emu)
    counter = iter(range(1_000_000))

    def count_puts(prefix: str) -> int:
        return sum(
            1
            for r in emu.requests()
            if r.get("operation") == "PutObject" and r.get("status") == 201 and str(r.get("key", "")).startswith(prefix)
        )

    def qsyncd_run(concurrency: int | None = None) -> Measured:
        i = next(counter)
        prefix = f"small/qsyncd-{i}/"
        state = work / f"state-small-{i}"
        cfg = qsyncd_config(
            work / f"small-{i}.toml",
            emu,
            watch=src,
            state=state,
            prefix=prefix,
            upload=None if concurrency is None else {"concurrency": concurrency},
        )
        emu.clear_requests()
        m = run_measured(
            [QSYNCD, "sync", "-c", str(cfg), "--no-progress", "--log-format", "json"],
            work / f"qsyncd-small-{i}.log",
            emulator=emu,
        ).check("qsyncd sync")
        done = len(read_events(m.log, "upload_finished"))
        if done != files or count_puts(prefix) != files:
            raise BenchError(f"qsyncd sync uploaded {done} of {files} files")
        shutil.rmtree(state, ignore_errors=True)
        return m

    def rclone_run(transfers: int) -> Callable[[], Measured]:
        def go() -> Measured:
            i = next(counter)
            prefix = f"small/rclone-t{transfers}-{i}/"
            emu.clear_requests()
            m = run_measured(
                rclone_argv(rconf, emu, "copy", str(src), f"emu:{BUCKET}/{prefix}", "--transfers", str(transfers)),
                work / f"rclone-small-{i}.log",
                emulator=emu,
            ).check("rclone copy")
            if count_puts(prefix) != files:
                raise BenchError(f"rclone uploaded {count_puts(prefix)} of {files} files")
            return m

        return go

    default = UploadConfig().concurrency
    contenders: list[tuple[str, Callable[[], Measured]]] = [
        (f"qsyncd sync (defaults: concurrency {default})", qsyncd_run),
        ("rclone copy --transfers 4", rclone_run(4)),
        ("rclone copy --transfers 16", rclone_run(16)),
        (f"qsyncd sync (tuned: concurrency {TUNED_CONCURRENCY})", lambda: qsyncd_run(TUNED_CONCURRENCY)),
    ]
    results: dict[str, list[Measured]] = {name: [] for name, _ in contenders}
    for r in range(repeats):
        for name, fn in rotated(contenders, r):
            m = fn()
            results[name].append(m)
            log(
                f"small{'-rtt' if latency else ''}: round {r + 1}/{repeats} {name}: {m.seconds:.2f} s, "
                f"{files / m.seconds:.0f} files/s, "
                f"cpu {m.cpu:.1f} s, emulator cpu {m.emu_cpu:.1f} s"
            )
    shutil.rmtree(src, ignore_errors=True)

    def rate(name: str) -> float:
        return median([files / m.seconds for m in results[name]])

    q = rate(contenders[0][0])
    rows = []
    emu.set_latency(0)
    label = f"2. small files {files} x {size // 1024} KiB" + (
        f", +{latency * 1000:.0f} ms per request" if latency else ""
    )
    for name, _ in contenders:
        ms = results[name]
        s = rate(name)
        ratio = q / s
        tgt = 1.0 if name.startswith("rclone") and "16" in name and not latency else None
        if name == contenders[0][0]:
            ratio_text = ""
        elif name.startswith("qsyncd"):  # the tuned qsyncd row compares itself with rclone --transfers 16
            ratio_text = f"this / rclone --transfers 16 = {fmt(s / rate(contenders[2][0]), 2)}x"
        else:
            ratio_text = f"qsyncd = {fmt(ratio, 2)}x"
        rows.append(
            Row(
                label,
                name,
                f"{fmt(s, 0)} files/s (median {fmt(median([m.seconds for m in ms]), 2)} s)",
                ratio=ratio_text,
                target=f">= {tgt}x" if tgt else "",
                verdict=("met" if ratio >= tgt else "MISSED") if tgt else "",
                note=f"client cpu {fmt(median([m.cpu for m in ms]), 1)} s, emulator cpu "
                f"{fmt(median([m.emu_cpu for m in ms]), 1)} s",
                raw={
                    "seconds": [m.seconds for m in ms],
                    "cpu": [m.cpu for m in ms],
                    "emu_cpu": [m.emu_cpu for m in ms],
                },
            )
        )
    return rows
