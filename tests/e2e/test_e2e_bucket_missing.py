"""E2E: a bucket that does not exist is refused by the store for every file, so it is reported once.

`qsyncd sync` says so once and exits 1 without trying every file four times; `qsyncd run` logs one
`remote_rejected` naming bucket, zone and endpoint, keeps the files queued (no `upload_failed` per file)
and uploads them once the bucket exists, at `permanent_retry_seconds`.
"""

from __future__ import annotations

import json
import os

from e2e_support import op_counts
from qsynctest import ACCESS_KEY, SECRET, json_events

MISSING = "qsyncd-missing-bucket"


def _create_bucket(url: str, name: str) -> None:
    """PUT Bucket through the QingStor SDK (the real API), as an operator would with qsctl."""
    from qingstor.sdk.config import Config
    from qingstor.sdk.service.qingstor import QingStor

    host, port = url.removeprefix("http://").split(":")
    cfg = Config(ACCESS_KEY, SECRET)
    cfg.host, cfg.port, cfg.protocol, cfg.connection_retries = host, int(port), "http", 0
    out = QingStor(cfg).Bucket(name, "").put()
    assert out.status_code == 201, out.status_code


def test_sync_to_a_missing_bucket_says_so_once_and_exits_1(setup):
    """One problem line naming the bucket; each file is tried at most once, not retried as transient."""
    for i in range(5):
        (setup.root / f"f{i}.txt").write_bytes(os.urandom(100))
    setup.config(bucket=MISSING)
    res = setup.cli("sync", "--no-progress", "--log-format", "json", timeout=60)
    assert 1 == res.returncode, res.stderr + res.stdout
    problems = [line for line in res.stderr.splitlines() if line.startswith("qsyncd sync:")]
    assert 1 == len(problems), res.stderr
    assert MISSING in problems[0] and "does not exist" in problems[0], problems
    puts = op_counts(setup.emu, "PutObject", only_ok=False)
    assert sum(puts.values()) <= 5, puts  # at most once per file (the workers that were already sending)
    assert all(n == 1 for n in puts.values()), puts
    assert [] == json_events(res.stdout + res.stderr, "part_retried")


def test_daemon_with_a_missing_bucket_reports_once_keeps_files_and_uploads_when_created(setup):
    """`remote_rejected` once with bucket, zone and endpoint; no per-file `upload_failed`; files arrive later."""
    setup.config(bucket=MISSING, upload={"permanent_retry_seconds": 1})
    d = setup.daemon()
    names = [f"cam{i}.jpg" for i in range(4)]
    for name in names:
        (setup.root / name).write_bytes(os.urandom(200))
    [ev] = d.wait_event("remote_rejected", timeout=30)
    assert (MISSING, "", setup.emu.url) == (ev["bucket"], ev["zone"], ev["endpoint"]), ev
    assert "does not exist" in ev["error"] and "create the bucket" in ev["hint"], ev

    def daemon_status() -> dict:
        return json.loads(setup.cli("status", "--json").stdout)["daemon"] or {}

    status = setup.shared.wait_for(lambda: daemon_status().get("remote_down_since") and daemon_status(), timeout=20)
    assert MISSING in status["remote_error"], status
    assert [] == d.events("upload_failed")
    _create_bucket(setup.emu.url, MISSING)
    d.wait_event("upload_finished", timeout=30, count=len(names))
    assert 1 == len(d.events("remote_rejected"))  # one event for the whole outage, not one per retry
    assert [] == d.events("upload_failed")
    assert 0 == d.stop()
    stopped = d.events("daemon_stopped")[-1]
    assert (len(names), 0) == (stopped["uploaded"], stopped["failed"]), stopped
