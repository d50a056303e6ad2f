"""qsyncd.status: ``qsyncd status`` reads the ledger (read-only, while a daemon may run) and renders it.

``collect`` is tested on a real ledger in a tmp dir; ``render`` on its output and on hand-made data, with
the time it is given from a FakeClock.
"""

from __future__ import annotations

import json
import sqlite3
import time
import types
from pathlib import Path
from typing import Any

import pytest
from qsynctest import FakeClock

from qsyncd.state import Ledger
from qsyncd.state.records import FileRecord, MultipartRecord, PartRecord
from qsyncd.stats import Status
from qsyncd.status import collect, render


def cfg_for(state: Path) -> Any:
    return types.SimpleNamespace(state=types.SimpleNamespace(dir=state))


def dead_pid() -> int:
    """A pid no process can have (above the kernel's pid_max)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


def test_no_state_yet_says_so(tmp_path: Path) -> None:
    data = collect(cfg_for(tmp_path / "state"))
    assert (None, 0, "no state yet: qsyncd has not run") == (data["daemon"], data["uploaded"], data["note"])
    text = render(data)
    assert "daemon: not running" in text and text.endswith("no state yet: qsyncd has not run")
    assert not (tmp_path / "state").exists(), "status must not create the state dir"


def test_collect_reads_uploads_failures_multiparts_and_a_live_daemon(tmp_path: Path) -> None:
    state = tmp_path / "state"
    led = Ledger(state)
    try:
        led.record_uploaded(FileRecord("/r/a", "a", 10, 1, 1, "0" * 32, 100.0))
        led.record_uploaded(FileRecord("/r/b", "b", 5, 1, 2, "1" * 32, 100.0))
        led.record_failure("/r/c", "c", "boom", permanent=False)
        led.record_failure("/r/c", "c", "boom again", permanent=False)
        mp = MultipartRecord("/r/big", "big", "up-1", 25, 1, 3, "", 10, 50.0, {})
        led.start_multipart(mp)
        led.record_part("up-1", PartRecord(0, 10, "2" * 32))
        led.set_daemon_status(Status(queued=3, settling=2, uploading=1).to_json())
    finally:
        led.close()
    data = collect(cfg_for(state))
    assert (2, 15, 1, 5) == (data["uploaded"], data["uploaded_bytes"], data["failed"], data["pending"])
    assert [{"path": "/r/c", "key": "c", "error": "boom again", "permanent": False, "attempts": 2}] == [
        {k: v for k, v in f.items() if k != "last_at"} for f in data["failures"]
    ]
    [m] = data["multiparts"]
    assert ("big", "up-1", 25, 1, 3) == (m["key"], m["upload_id"], m["bytes"], m["parts_done"], m["parts_total"])
    assert data["daemon"]["running"] is True
    json.dumps(data)  # the --json form
    text = render(data)
    assert "pending: 3 queued, 2 settling, 1 uploading" in text
    assert "  /r/c: boom again (will retry, 2 attempts)" in text
    assert "  big: 1/3 parts (25 bytes)" in text
    assert "uploaded: 2 files, 15 bytes (all runs, from the ledger)" in text


def test_a_status_left_by_a_dead_daemon_is_not_running(tmp_path: Path) -> None:
    """A daemon killed -9 leaves running=true behind: its pid decides, and pending is unknown (None)."""
    state = tmp_path / "state"
    led = Ledger(state)
    try:
        led.set_daemon_status(Status(queued=3).to_json())
    finally:
        led.close()
    with sqlite3.connect(state / "state.db") as conn:
        conn.execute("UPDATE daemon SET pid = ?", (dead_pid(),))
    data = collect(cfg_for(state))
    assert (False, None) == (data["daemon"]["running"], data["pending"])
    assert "daemon: not running" in render(data)


def test_render_a_running_daemon_waiting_for_the_remote(clock: FakeClock) -> None:
    down = clock.now - 600
    data = {
        "state_dir": "/var/lib/qsyncd",
        "daemon": {
            "running": True,
            "pid": 4242,
            "updated_at": clock.now - 42,
            "remote_down_since": down,
            "remote_error": "connection refused",
            "queued": 7,
            "uploaded": 3,
            "skipped": 1,
            "failed": 2,
        },
        "uploaded": 10,
        "uploaded_bytes": 1000,
        "failed": 0,
        "failures": [],
        "multiparts": [],
    }
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(down))
    assert [
        "state: /var/lib/qsyncd",
        "daemon: running (pid 4242, status 42 s old)",
        f"remote: waiting since {since}: connection refused",
        "pending: 7 queued, 0 settling, 0 uploading",
        "uploaded: 10 files, 1000 bytes (all runs, from the ledger)",
        "this run: 3 files uploaded, 1 skipped, 2 failing",
        "failed: 0",
        "multipart uploads in progress: 0",
    ] == render(data, now=clock.now).splitlines()


def test_render_lists_at_most_twenty_failures() -> None:
    failures = [
        {"path": f"/r/{i}", "error": "e", "permanent": True, "attempts": 1, "key": str(i), "last_at": 0}
        for i in range(25)
    ]
    data = {"state_dir": "s", "daemon": None, "uploaded": 0, "uploaded_bytes": 0, "failed": 25, "failures": failures}
    lines = render(data).splitlines()
    assert "failed: 25" in lines
    assert 20 == sum(1 for line in lines if line.endswith("(permanent, 1 attempts)"))
