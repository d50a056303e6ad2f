"""Crash anywhere: SIGKILL the daemon at seeded random moments; the bucket converges and little is re-sent."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from relsupport import FIGURES, Rig, local_tree, scale, write_bytes

MiB = 1 << 20
PART = 4 * MiB


def ok(status: int) -> bool:
    return 200 <= status < 300


def add_files(rng: random.Random, tree: Path, tag: str, n_small: int, n_multi: int) -> None:
    for i in range(n_small):
        write_bytes(tree / tag / f"s{i:03d}.bin", rng.randbytes(rng.randrange(0, 96 * 1024)))
    for i in range(n_multi):
        write_bytes(tree / tag / f"m{i:02d}.dat", rng.randbytes(5 * MiB + rng.randrange(1, 8 * MiB)))


def test_sigkill_at_random_points_converges_and_resends_only_in_flight(rig: Rig, seed: int) -> None:
    """After >= 20 seeded SIGKILLs mid-upload the bucket equals the tree and only in-flight parts were re-sent."""
    rng = random.Random(seed)
    emu: Any = rig.emu  # type: ignore[attr-defined]
    kills = scale(20, 200)
    rig.write_config(
        upload={
            "concurrency": 3,
            "multipart_threshold": "5MiB",
            "part_size": "4MiB",
            "part_concurrency": 2,
            "max_bytes_per_second": "8MiB",
        },
        settle={"quiet_seconds": 0.2},
    )
    add_files(rng, rig.tree, "batch00", 30, 3)
    kill_log: list[tuple[float, float]] = []  # (daemon started, killed) in emulator clock
    for k in range(kills):
        if k % 4 == 3:  # keep new work arriving between crashes
            add_files(rng, rig.tree, f"batch{k:02d}", rng.randrange(5, 20), rng.randrange(0, 2))
        started = time.time()
        d = rig.daemon()
        d.wait_event("daemon_ready", timeout=30)
        time.sleep(rng.uniform(0.0, 1.6))
        killed = time.time()
        d.kill9()
        kill_log.append((started, killed))
        FIGURES["kills"] += 1
    final_started = time.time()
    final = rig.daemon()
    rig.converge(timeout=scale(180, 1800), daemon=final)

    with open(rig.tmp / "requests.jsonl", "w") as f:  # an artifact for post-mortems
        for r in emu.requests:
            f.write(json.dumps(r.to_json()) + "\n")
    reqs = [r for r in emu.requests if r.operation in ("PutObject", "UploadMultipart")]
    # 1. No part the server had stored was ever stored again (the ledger / ListMultipart knew it).
    part_ok = Counter((r.upload_id, r.part_number) for r in reqs if r.operation == "UploadMultipart" and ok(r.status))
    dup_parts = {k: n for k, n in part_ok.items() if n > 1}
    assert not dup_parts, f"stored parts sent again: {dup_parts}"
    # 2. No small file stored twice (files never change in this test).
    put_ok = Counter(r.key for r in reqs if r.operation == "PutObject" and ok(r.status))
    assert not {k: n for k, n in put_ok.items() if n > 1}, "a small file was stored twice"
    # 3. Re-sent bytes stay within what was in flight at each kill.
    tree = local_tree(rig.tree)
    ideal = sum(p.stat().st_size for p in tree.values())
    sent = sum(r.bytes_in for r in reqs)
    bound = 0
    inflight_parts = inflight_small = 0
    # A kill's window runs from its daemon's start to the next daemon's start (a request sent in the
    # microseconds between time.time() and the signal still belongs to the killed daemon).
    windows = [(s, kill_log[i + 1][0] if i + 1 < len(kill_log) else final_started) for i, (s, _) in enumerate(kill_log)]
    for started, until in windows:
        cut = [r for r in reqs if started <= r.time < until and not ok(r.status)]
        parts = [r for r in cut if r.operation == "UploadMultipart"]
        smalls = [r for r in cut if r.operation == "PutObject"]
        inflight_parts += len(parts)
        inflight_small += len(smalls)
        bound += len(parts) * PART + sum(tree[r.key].stat().st_size for r in smalls if r.key in tree)
    resent = sent - ideal
    print(
        f"kills={kills} ideal={ideal} sent={sent} resent={resent} bound={bound} "
        f"inflight_parts={inflight_parts} inflight_small={inflight_small}"
    )
    assert 0 <= resent <= bound, f"re-sent {resent} bytes; in flight at the kills: {bound}"
    # 4. Every multipart key was completed exactly once.
    completes = Counter(r.key for r in emu.requests if r.operation == "CompleteMultipartUpload" and ok(r.status))
    assert all(n == 1 for n in completes.values()), completes
    assert {k for k in tree if k.endswith(".dat")} == set(completes)


def test_kill_between_complete_and_ledger_does_not_resend(rig: Rig, seed: int) -> None:
    """A SIGKILL after the server completed a multipart but before the ledger knew re-sends no part."""
    from qsyncd.emulator import Fault

    rng = random.Random(seed)
    emu: Any = rig.emu  # type: ignore[attr-defined]
    rig.write_config(upload={"multipart_threshold": "5MiB", "part_size": "4MiB"}, settle={"quiet_seconds": 0.2})
    key = "big/one.dat"
    write_bytes(rig.tree / key, rng.randbytes(9 * MiB + 17))
    # Every HEAD of the key is slow: the verification HEAD after Complete gives us time to kill.
    head = emu.inject(Fault(operation="HeadObject", key_prefix=key, latency=4.0, count=None))
    d = rig.daemon()
    deadline = time.monotonic() + 60
    while not any(r.operation == "CompleteMultipartUpload" and ok(r.status) for r in emu.requests):
        assert time.monotonic() < deadline, d.tail()
        time.sleep(0.02)
    mark = time.time()
    d.kill9()
    FIGURES["kills"] += 1
    head.count = 0
    final = rig.daemon()
    rig.converge(timeout=60, daemon=final)
    final.wait_event("upload_skipped", timeout=30, pred=lambda e: e.get("key") == key)
    after = [
        r
        for r in emu.requests
        if r.time > mark and r.operation in ("UploadMultipart", "PutObject", "InitiateMultipartUpload")
    ]
    assert after == [], (
        f"after the restart the completed file was sent again: {[(r.operation, r.bytes_in) for r in after]}"
    )
