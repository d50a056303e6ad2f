"""Tests for qsyncd.stats: counts are files (not attempts), and one Status snapshot serves every reader."""

from __future__ import annotations

import threading
import time

from qsyncd.stats import Counters, Status


def test_a_file_counts_once_however_often_it_failed_or_was_sent() -> None:
    """Four failed attempts of one file: failed 1, retries 4; it then goes up twice: uploaded 1, reuploaded 1."""
    c = Counters()
    for _ in range(4):
        c.failed_attempt("/r/a", retried=True)
    assert (1, 4) == (c.failed, c.retries)
    c.uploaded_file("/r/a", 10, 100.0, again=False)
    c.uploaded_file("/r/a", 12, 101.0, again=True)
    assert (1, 1, 22, 0, 101.0) == (c.uploaded, c.reuploaded, c.uploaded_bytes, c.failed, c.last_upload_wall)


def test_a_skip_or_a_vanished_file_is_no_longer_failing() -> None:
    c = Counters()
    c.failed_attempt("/r/a", retried=True)
    c.failed_attempt("/r/b", retried=False)
    c.skipped_file("/r/a")
    c.settled("/r/b")
    assert (0, 1, 1) == (c.failed, c.skipped, c.retries)


def test_counters_are_exact_under_concurrent_workers() -> None:
    """16 threads x 1,000 uploads: no count is lost."""
    c = Counters()

    def work(t: int) -> None:
        for i in range(1000):
            c.uploaded_file(f"/r/{t}/{i}", 1, 0.0, again=False)
            c.remote_error("slow_down")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (16_000, 16_000, {"slow_down": 16_000}) == (c.uploaded, c.uploaded_bytes, c.remote_errors)


def test_status_round_trips_through_json_and_ignores_unknown_keys() -> None:
    """The ledger stores Status.to_json(); `qsyncd status` of another version reads what it knows."""
    s = Status(pid=7, roots={"/r": True}, queued=3, uploaded=5, remote_problem="refused", remote_down_since=1.0)
    data = s.to_json()
    assert s == Status.from_json(data)
    assert s == Status.from_json({**data, "from_a_newer_qsyncd": 1})
    assert 0 == Status.from_json({"pid": 1}).uploaded


def test_status_line() -> None:
    """The systemd STATUS= line: roots, uploading, queued, the last upload; or what is wrong with the remote."""
    now = time.time()
    ok = Status(roots={"/a": True, "/b": True}, uploading=3, queued=100, settling=20, last_upload_at=now - 4)
    assert "watching 2 roots · 3 uploading · 120 queued · last upload 4 s ago" == ok.line(now)
    half = Status(roots={"/a": True, "/b": False})
    assert half.line(now).startswith("watching 1 of 2 roots")
    down = Status(queued=5, uploading=1, remote_down_since=now, remote_problem="unreachable")
    assert down.line(now).startswith("remote unreachable since ") and down.line(now).endswith(", 6 files waiting")
    refused = Status(queued=2, remote_down_since=now, remote_problem="refused")
    assert refused.line(now).startswith("remote refuses our requests since ")
