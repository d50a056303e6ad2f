"""Scenario 3: latency from a writer's close() to the object being visible via HEAD.

``qsyncd run`` (default settings, so the quiet period is qsyncd's default) watches an empty tree;
a writer creates 16 KiB files at a steady rate; a prober HEADs each key from close() + quiet period
on, every few milliseconds, until it answers 200. Reported: p50/p95/p99 of (visible - close -
quiet period), i.e. what qsyncd adds on top of the wait it is configured to make.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import (
    BenchError,
    DaemonProc,
    EmulatorProc,
    Row,
    fmt,
    make_remote,
    percentile,
    qsyncd_config,
)

PROBE_EVERY = 0.01


def write_and_probe(
    remote: Any, writes: list[tuple[Path, str]], *, rate: float, quiet: float, size: int = 16384, timeout: float = 60.0
) -> tuple[dict[str, float], dict[str, float], float]:
    """Write each ``(path, key)`` at ``rate`` per second (``size`` random bytes each); from close() + ``quiet``
    on, HEAD the key every ``PROBE_EVERY`` s until it answers. Returns (closed, visible, writer_rate): monotonic
    times by key; a key that never became visible within ``timeout`` after the last write is not in visible."""
    closed: dict[str, float] = {}
    visible: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def prober() -> None:
        while True:
            now = time.monotonic()
            with lock:
                due = [(k, t) for k, t in closed.items() if k not in visible and now >= t + quiet]
            if not due and stop.is_set():
                return
            for key, _ in due:
                if remote.head(key) is not None:
                    t = time.monotonic()
                    with lock:
                        visible[key] = t
            if stop.is_set():
                return
            time.sleep(PROBE_EVERY)

    th = threading.Thread(target=prober, name="prober", daemon=True)
    th.start()
    n = len(writes)
    payload = os.urandom(size + n)
    t0 = time.monotonic()
    try:
        for i, (path, key) in enumerate(writes):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with open(path, "wb") as fh:
                fh.write(payload[i : i + size])
            t_close = time.monotonic()
            with lock:
                closed[key] = t_close
        deadline = time.monotonic() + quiet + timeout
        while time.monotonic() < deadline:
            with lock:
                if len(visible) == len(closed):
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        th.join(timeout=30)
    writer_rate = (n - 1) / max(1e-9, max(closed.values()) - t0) if n > 1 else rate
    return closed, visible, writer_rate


def run(emu: EmulatorProc, work: Path, *, rate: float, seconds: float, log: Callable[[str], None]) -> list[Row]:
    from qsyncd.config import load_config

    src = work / "latency-src"
    src.mkdir()
    prefix = "latency/"
    cfg = qsyncd_config(work / "latency.toml", emu, watch=src, state=work / "state-latency", prefix=prefix)
    quiet = load_config(cfg).settle.quiet_seconds
    daemon = DaemonProc(cfg, work / "qsyncd-latency.log").start()
    remote = make_remote(emu)
    try:
        daemon.wait_event("daemon_ready", 60)
        daemon.wait_event("rescan_finished", 60)
        n = int(rate * seconds)
        writes = [(src / f"w{i:05d}.bin", f"{prefix}w{i:05d}.bin") for i in range(n)]
        closed, visible, writer_rate = write_and_probe(remote, writes, rate=rate, quiet=quiet)
    finally:
        daemon.stop()
        remote.close()
    missing = len(closed) - len(visible)
    if missing:
        raise BenchError(f"latency: {missing} of {len(closed)} files never became visible")
    lat = [visible[k] - closed[k] - quiet for k in closed]
    p50, p95, p99 = (percentile(lat, p) for p in (50, 95, 99))
    log(
        f"latency: {len(lat)} files at {writer_rate:.1f}/s; beyond quiet {quiet} s: p50 {p50:.3f} p95 {p95:.3f} "
        f"p99 {p99:.3f} max {max(lat):.3f}"
    )
    label = f"3. latency, {len(lat)} files at {rate:g}/s"
    return [
        Row(label, "qsyncd run: close() -> HEAD 200, minus quiet", f"p50 {fmt(p50, 3)} s", note=f"quiet {quiet} s"),
        Row(label, "", f"p95 {fmt(p95, 3)} s"),
        Row(
            label,
            "",
            f"p99 {fmt(p99, 3)} s",
            target="p99 <= 0.5 s",
            verdict="met" if p99 <= 0.5 else "MISSED",
            note=f"max {fmt(max(lat), 3)} s; HEAD probed every {PROBE_EVERY * 1000:.0f} ms",
            raw={"latencies": lat, "quiet": quiet},
        ),
    ]
