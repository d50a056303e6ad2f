"""``python -m bench``: run the benchmark scenarios and print (optionally write) the results table.

Each scenario gets a fresh emulator subprocess and a fresh data directory under one temporary
directory, which is removed at the end (``--keep`` keeps it for the logs).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import qsyncd
from bench import harness
from bench.harness import EmulatorProc, Row

SCENARIOS = ("large", "small", "small-rtt", "latency", "idle", "restart", "s3", "scale", "verify")
DEFAULT_SCENARIOS = tuple(s for s in SCENARIOS if s not in ("scale", "verify"))  # only when named: they take long
MARK_START = "<!-- bench:results:start -->"
MARK_END = "<!-- bench:results:end -->"


def machine() -> list[str]:
    """A short description of this machine and the tool versions."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass

    def ver(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
            return out.splitlines()[0].strip() if out else "?"
        except (OSError, subprocess.SubprocessError):
            return "not found"

    fs = "?"
    try:
        fs = subprocess.run(["df", "-T", tempfile.gettempdir()], capture_output=True, text=True).stdout.splitlines()[1]
        fs = " ".join(fs.split()[:2])
    except (OSError, IndexError):
        pass
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores; RAM {mem:,} MiB; kernel {platform.release()}",
        f"temp dir {tempfile.gettempdir()} on {fs}",
        f"Python {platform.python_version()}; {ver([harness.RCLONE, 'version'])}; "
        f"{' '.join(ver([harness.CURL, '--version']).split()[:2])}",
        "emulator: `python -m qsyncd.emulator.cli` on 127.0.0.1 "
        "(same machine, fsync on, one request log line per request)",
        hasher(),
    ]


# Run by the venv's python, which imports the same qsyncd (and the same built extension) as `qsyncd sync`.
_HASHER_PROBE = """
import os, time
from qsyncd import md5pair
block, a, b = os.urandom(1 << 20), md5pair.new(), md5pair.new()
t = time.process_time()
for _ in range(64):
    md5pair.update_both(a, b, block)
print("native C pair hasher" if md5pair.NATIVE else "hashlib (no native pair hasher)", (time.process_time() - t) * 16)
"""


def hasher() -> str:
    """Which MD5 pair hasher the qsyncd under test uses and what it costs here: a stale or missing
    build of ``qsyncd._md5pair`` (an editable install keeps the last one built) shows in the header."""
    try:
        out = subprocess.run(
            [harness.PYTHON, "-c", _HASHER_PROBE], capture_output=True, text=True, timeout=60, cwd=str(harness.REPO)
        ).stdout.strip()
        kind, seconds = out.rsplit(" ", 1)
        return f"qsyncd hashing: {kind}, both MD5s of a part at {float(seconds):.2f} CPU s per GiB (64 MiB in memory)"
    except (OSError, subprocess.SubprocessError, ValueError):
        return "qsyncd hashing: unknown (the probe failed)"


def table(rows: list[Row]) -> str:
    head = "| scenario | contender | figure | ratio | target | verdict | note |\n|---|---|---|---|---|---|---|"
    lines = [head]
    last = None
    for r in rows:
        scen = r.scenario if r.scenario != last else ""
        last = r.scenario
        lines.append(f"| {scen} | {r.contender} | {r.figure} | {r.ratio} | {r.target} | {r.verdict} | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (~3 minutes)")
    p.add_argument("--big", action="store_true", help="large-file scenario with 4 GiB instead of 1 GiB")
    p.add_argument(
        "--only",
        action="append",
        choices=(*SCENARIOS, "memory"),
        default=[],
        help="run only this scenario (repeatable; memory is measured by large; scale and verify run only when named)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="rounds per comparison (default 3; the large file 5, its passes 1b and 1c 3; quick 2, 1b and 1c 1)",
    )
    p.add_argument(
        "--no-settled",
        action="store_true",
        help="skip the large file's second pass with settled memory (1b; only on a VM that reports free pages)",
    )
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="skip the large file's informational pass into a running qsyncd service (1c)",
    )
    p.add_argument(
        "--files",
        type=int,
        default=100_000,
        help="scale, verify: files in the tree (1 KiB, 1,000 per directory; default 100000)",
    )
    p.add_argument("--rescans", type=int, default=10, help="scale: periodic rescans measured (default 10)")
    p.add_argument(
        "--scale-dir",
        type=Path,
        default=None,
        help="scale: keep the tree, state and bucket in this directory; a later run of the same size reuses them "
        "(the first sync's figures are read back, not measured again)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) afterwards")
    p.add_argument(
        "--write",
        type=Path,
        default=None,
        help=f"replace the block between {MARK_START} and {MARK_END} in this file with the results",
    )
    p.add_argument("--json", type=Path, default=None, help="write the raw results as JSON here")
    args = p.parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwind: every scenario stops its processes by PID and cleans up

    signal.signal(signal.SIGTERM, on_term)

    only = {("large" if s == "memory" else s) for s in args.only} or set(DEFAULT_SCENARIOS)
    q = args.quick
    repeats = args.repeats or (2 if q else 3)
    # The large-file figures swing most from run to run (the emulator's page-cache writes, see
    # BENCHMARKS.md "Machine noise"), so their medians get more rounds.
    large_repeats = args.repeats or (2 if q else 5)
    # The second large-file pass waits for the VM's free-page reporter before each upload (~2-5 s).
    settled_repeats = 0 if args.no_settled else (args.repeats or (1 if q else 3))
    daemon_repeats = 0 if args.no_daemon else (args.repeats or (1 if q else 3))
    mib = 1 << 20
    large_size = (4096 if args.big else (256 if q else 1024)) * mib
    small_files = 1000 if q else 5000
    small_rtt_files = 500 if q else 2000
    idle_files, idle_dirs, idle_secs = (2000, 100, 15.0) if q else (20000, 1000, 60.0)
    restart_files = 5000 if q else 50000
    lat_secs = 10.0 if q else 30.0

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # Every qsyncd and emulator process imports the package afresh: byte-compile it first, so no run
    # pays for compiling a module whose .pyc is stale (with PYTHONDONTWRITEBYTECODE set, every run would).
    compileall.compile_dir(Path(qsyncd.__file__).parent, quiet=1)
    loads: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="qsyncd-bench-"))
    log(f"work dir {base}")
    rows: list[Row] = []
    t_start = time.monotonic()
    steal_start = harness.steal_seconds()
    failures: list[str] = []
    try:
        plan: list[tuple[str, Callable[[EmulatorProc, Path], list[Row]]]] = [
            (
                "large",
                lambda e, w: __import__("bench.large", fromlist=["run"]).run(
                    e,
                    w,
                    size=large_size,
                    repeats=large_repeats,
                    settled_repeats=settled_repeats,
                    daemon_repeats=daemon_repeats,
                    log=log,
                ),
            ),
            (
                "small",
                lambda e, w: __import__("bench.small", fromlist=["run"]).run(
                    e, w, files=small_files, dirs=max(1, small_files // 10), size=16384, repeats=repeats, log=log
                ),
            ),
            (
                "small-rtt",
                lambda e, w: __import__("bench.small", fromlist=["run"]).run(
                    e,
                    w,
                    files=small_rtt_files,
                    dirs=max(1, small_rtt_files // 10),
                    size=16384,
                    repeats=repeats,
                    log=log,
                    latency=0.02,
                ),
            ),
            (
                "latency",
                lambda e, w: __import__("bench.latency", fromlist=["run"]).run(
                    e, w, rate=20.0, seconds=lat_secs, log=log
                ),
            ),
            (
                "idle",
                lambda e, w: __import__("bench.idle", fromlist=["run_idle"]).run_idle(
                    e, w, files=idle_files, dirs=idle_dirs, seconds=idle_secs, log=log
                ),
            ),
            (
                "s3",
                lambda e, w: __import__("bench.s3", fromlist=["run"]).run(
                    e, w, large_size=large_size, small_files=small_files, repeats=repeats, log=log
                ),
            ),
            (
                "restart",
                lambda e, w: __import__("bench.idle", fromlist=["run_restart"]).run_restart(
                    e, w, files=restart_files, dirs=restart_files // 20, repeats=2 if q else 3, log=log
                ),
            ),
            (
                "scale",
                lambda e, w: __import__("bench.scale", fromlist=["run"]).run(
                    e, w, files=args.files, rescans=args.rescans, log=log, keep=args.scale_dir is not None
                ),
            ),
            (
                "verify",
                lambda e, w: __import__("bench.reverify", fromlist=["run"]).run(e, w, files=args.files, log=log),
            ),
        ]
        for name, fn in plan:
            if name not in only:
                continue
            kept = name == "scale" and args.scale_dir is not None
            work = args.scale_dir.resolve() / "scale" if kept else base / name
            work.mkdir(parents=True, exist_ok=kept)
            loads.append(f"{name} {os.getloadavg()[0]:.1f}")
            emu = EmulatorProc(work / "emu", work).start(timeout=900 if kept else 30)  # a kept bucket: 1M objects load
            log(f"{name}: emulator at {emu.url}")
            try:
                rows += fn(emu, work)
            except harness.BenchError as err:
                log(f"{name}: FAILED: {err}")
                failures.append(f"{name}: {err}")
                rows.append(Row(name, "(scenario failed)", str(err).splitlines()[0], verdict="ERROR"))
            finally:
                emu.stop()
                if not args.keep and not kept:
                    shutil.rmtree(work / "emu", ignore_errors=True)
    finally:
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    elapsed = time.monotonic() - t_start
    mode = "quick" if q else ("big" if args.big else "full")
    header = [
        f"Run: `python -m bench{' --quick' if q else ''}{' --big' if args.big else ''}"
        f"{''.join(' --only ' + s for s in args.only)}"
        f"{f' --files {args.files}' if {'scale', 'verify'} & set(only) else ''}` "
        f"({mode}, {large_repeats} round{'s' * (large_repeats != 1)} "
        f"for the large file (1b: {settled_repeats}, 1c: {daemon_repeats}), {repeats} for the others, "
        "running order rotated each round, "
        f"medians), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, took {elapsed / 60:.1f} min.",
        "",
    ]
    header += [f"- {line}" for line in machine()]
    header += [
        f"- 1-minute load average when each scenario started (other work on the machine shows here): "
        f"{', '.join(loads)}; at the end {os.getloadavg()[0]:.1f}"
    ]
    steal_end = harness.steal_seconds()
    if steal_start is not None and steal_end is not None:
        header.append(
            f"- steal time (the host running other work while this VM's CPUs wanted to run) over the "
            f"whole run: {steal_end - steal_start:.1f} CPU s of {elapsed * (os.cpu_count() or 1):.0f}"
        )
    header += [""]
    out = "\n".join(header) + "\n" + table(rows) + "\n"
    print(out)
    if args.write:
        text = args.write.read_text() if args.write.exists() else f"{MARK_START}\n{MARK_END}\n"
        if MARK_START not in text or MARK_END not in text:
            text += f"\n{MARK_START}\n{MARK_END}\n"
        a, rest = text.split(MARK_START, 1)
        _, b = rest.split(MARK_END, 1)
        args.write.write_text(f"{a}{MARK_START}\n{out}{MARK_END}{b}")
        log(f"results written into {args.write}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=str))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
