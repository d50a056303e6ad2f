"""Outage: the emulator (a subprocess) stops, then comes back on the same port; the daemon waits and drains."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from qsynctest import EmulatorProc, NotifySocket
from relsupport import (
    FIGURES,
    local_tree,
    rss_kib,
    run_cli,
    scale,
    wait_converged,
    write_bytes,
)


def test_outage_daemon_waits_memory_flat_status_says_so_and_drains(
    tmp_path: Path, shared: Any, emulator_proc: EmulatorProc, seed: int
) -> None:
    """With the remote stopped the daemon lives, RSS stays flat, status/STATUS say so; all drains after."""
    rng = random.Random(seed)
    tree = tmp_path / "tree"
    tree.mkdir()
    cfg = shared.write_config(
        tmp_path / "qsyncd.toml",
        endpoint=emulator_proc.url,
        watch=tree,
        state=tmp_path / "state",
        upload={"retry_max_seconds": 2},
        settle={"quiet_seconds": 0.3},
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    d = shared.DaemonProc(cfg, tmp_path / "daemon.log", env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        d.start()
        d.wait_event("daemon_ready", timeout=30)
        for i in range(50):
            write_bytes(tree / "before" / f"f{i:03d}", rng.randbytes(rng.randrange(1, 20000)))
        wait_converged(emulator_proc.root, lambda: local_tree(tree), timeout=60, daemon=d)

        emulator_proc.stop()
        n_during = scale(300, 3000)
        for i in range(n_during):
            write_bytes(tree / "during" / f"f{i:04d}", rng.randbytes(rng.randrange(1, 20000)))
        d.wait_event("remote_unreachable", timeout=60)
        time.sleep(2.0)  # let the queue fill and the status be published
        base = rss_kib(d.pid)
        samples = []
        outage = scale(10, 120)  # CI: ten RSS samples with 300 files queued; the soak holds it for 2 minutes
        t_end = time.monotonic() + outage
        status: dict[str, Any] = {}
        while time.monotonic() < t_end:
            samples.append(rss_kib(d.pid))
            if not status:
                cp = run_cli(["status", "-c", str(cfg), "--json"], tmp_path / f"status-{len(samples)}")
                assert cp.returncode == 0, cp.stderr
                got = json.loads(cp.stdout)
                if (got.get("daemon") or {}).get("remote_down_since"):
                    status = got
            time.sleep(1.0)
        assert d.proc is not None and d.proc.poll() is None, "the daemon must keep running through the outage"
        growth = max(samples) - base
        print(f"RSS base={base} KiB max={max(samples)} KiB growth={growth} KiB over {outage} s")
        assert growth < 30 * 1024, f"RSS grew by {growth} KiB during the outage"
        # `qsyncd status --json` says the remote is down, and since when.
        assert status, "qsyncd status --json never showed the remote as down"
        assert status["daemon"]["running"] is True
        assert status["daemon"]["remote_error"]
        txt = run_cli(["status", "-c", str(cfg)], tmp_path / "status-text")
        assert "remote: waiting since" in txt.stdout, txt.stdout
        # sd_notify STATUS says it is waiting on the remote.
        assert any(s.startswith("remote unreachable since") for s in notify.statuses()), notify.statuses()
        # Nothing was given up on: no permanent failure during the outage.
        assert not [e for e in d.events("upload_failed") if e.get("permanent")], d.tail()

        emulator_proc.start()  # same root, same port
        wait_converged(emulator_proc.root, lambda: local_tree(tree), timeout=scale(120, 600), daemon=d)
        d.wait_event("remote_recovered", timeout=30)
        # Back to normal: a later STATUS no longer says unreachable.
        deadline = time.monotonic() + 15
        while notify.statuses()[-1].startswith("remote unreachable"):
            assert time.monotonic() < deadline, notify.statuses()[-5:]
            time.sleep(0.2)
        FIGURES["faults_injected"] += 1  # the outage itself
        assert d.stop() == 0
    finally:
        d.stop()
        notify.close()
