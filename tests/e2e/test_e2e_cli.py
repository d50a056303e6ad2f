"""E2E: the command line around the daemon: `sync` (one-shot, unreachable, dry run), `status --json`, the lock."""

from __future__ import annotations

import json
import os
import signal

from e2e_support import assert_remote_equals, op_counts
from qsynctest import json_events

from qsyncd.emulator import Fault


def _populate(root, n: int = 6) -> dict[str, bytes]:
    out = {}
    for i in range(n):
        rel = f"s{i % 2}/file{i}.txt"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        out[rel] = os.urandom(300 + i)
        (root / rel).write_bytes(out[rel])
    return out


def test_sync_uploads_everything_and_exits_0(setup):
    """`qsyncd sync` uploads every pending file once and exits 0; a second run sends no PUT."""
    files = _populate(setup.root)
    res = setup.cli("sync", "--no-progress", "--log-format", "json", timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    for key, data in files.items():
        assert_remote_equals(setup.emu, key, data)
    assert op_counts(setup.emu, "PutObject") == dict.fromkeys(files, 1)
    setup.emu.clear_requests()
    again = setup.cli("sync", "--no-progress", "--log-format", "json", timeout=60)
    assert again.returncode == 0, again.stderr
    assert op_counts(setup.emu, "PutObject", only_ok=False) == {}
    setup.assert_no_secret(res.stdout, res.stderr, again.stdout, again.stderr)


def test_sync_with_unreachable_endpoint_exits_1_listing_failures(setup):
    """With the endpoint down, `qsyncd sync` gives up (bounded by the subprocess timeout), exits 1, names each file."""
    files = _populate(setup.root, 3)
    setup.config()
    setup.emu.stop()  # nothing listens on that port any more
    res = setup.cli("sync", "--no-progress", "--log-format", "json", timeout=90)
    assert res.returncode == 1, res.stderr + res.stdout
    assert f"{len(files)} file(s) not uploaded" in res.stderr, res.stderr
    for rel in files:
        assert str(setup.root / rel) in res.stderr, res.stderr
    setup.assert_no_secret(res.stdout, res.stderr)


def test_sync_dry_run_sends_no_put_and_reports(setup):
    """`qsyncd sync --dry-run` sends no PUT and says which files it would upload (new and changed ones)."""
    files = _populate(setup.root, 4)
    assert setup.cli("sync", "--no-progress", timeout=60).returncode == 0
    (setup.root / "s0/file0.txt").write_bytes(b"changed since the upload")
    (setup.root / "brand-new.txt").write_bytes(b"new")
    setup.emu.clear_requests()
    res = setup.cli("sync", "--dry-run", "--no-progress", "--log-format", "json", timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    sent = [r for r in setup.emu.requests if r.method in ("PUT", "POST", "DELETE")]
    assert sent == [], sent
    would = {e["key"] for e in json_events(res.stdout + res.stderr, "dry_run_upload")}
    assert would == {"s0/file0.txt", "brand-new.txt"}, res.stdout + res.stderr
    assert_remote_equals(setup.emu, "s0/file0.txt", files["s0/file0.txt"])  # untouched


def test_status_json_while_running(setup):
    """`qsyncd status --json` during a run shows the daemon running (its pid) and the uploaded count."""
    d = setup.daemon()
    files = _populate(setup.root, 5)
    setup.wait_uploaded(d, list(files))

    def status() -> dict:
        res = setup.cli("status", "--json", timeout=30)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    data = setup.shared.wait_for(
        lambda: (s := status())["daemon"] and s["daemon"].get("uploaded") == 5 and s,
        timeout=15,
        what="status with 5 uploads",
    )
    assert data["daemon"]["running"] is True
    assert data["daemon"]["pid"] == d.pid
    assert data["uploaded"] == 5 and data["failed"] == 0
    assert data["uploaded_bytes"] == sum(len(v) for v in files.values())
    assert d.stop() == 0
    after = status()
    assert after["daemon"]["running"] is False and after["uploaded"] == 5


def test_second_daemon_on_same_state_dir_refuses(setup):
    """A second `qsyncd run` on the same state dir exits non-zero naming the lock holder's pid."""
    d1 = setup.daemon()
    d2 = setup.factory(setup.config_path).start()
    rc = d2.proc.wait(timeout=30)
    out = d2.log_path.read_text()
    assert rc != 0
    assert f"pid {d1.pid}" in out and str(setup.state) in out, out
    assert d1.proc.poll() is None, "the first daemon must keep running"
    (setup.root / "still.txt").write_bytes(b"first daemon still works")
    setup.wait_uploaded(d1, ["still.txt"])


def test_dry_run_beside_a_running_daemon_reads_only(setup):
    """`qsyncd sync --dry-run` works while the service holds the state dir: it reads the ledger, sends
    nothing and leaves the daemon's status and lock alone."""
    d = setup.daemon()
    (setup.root / "up.txt").write_bytes(b"uploaded by the daemon")
    setup.wait_uploaded(d, ["up.txt"])
    d.proc.send_signal(signal.SIGSTOP)  # frozen: a new file stays for the dry run to find, unsent
    try:
        (setup.root / "new.txt").write_bytes(b"not uploaded yet")
        setup.emu.clear_requests()
        res = setup.cli("sync", "--dry-run", "--no-progress", "--log-format", "json", timeout=60)
        assert 0 == res.returncode, res.stderr + res.stdout
        would = {e["key"] for e in json_events(res.stdout + res.stderr, "dry_run_upload")}
        assert {"new.txt"} == would, res.stdout + res.stderr
        assert [] == [r for r in setup.emu.requests if r.method in ("PUT", "POST", "DELETE")]
        daemon = json.loads(setup.cli("status", "--json").stdout)["daemon"]
        assert (d.pid, True) == (daemon["pid"], daemon["running"]), daemon
    finally:
        d.proc.send_signal(signal.SIGCONT)
    setup.wait_uploaded(d, ["new.txt"])


def test_counters_count_files_not_attempts(setup):
    """A file that fails four times is one failed file; a file sent twice (it changed) is one uploaded file;
    `status --json` and `daemon_stopped` say the same numbers as the ledger."""
    setup.config(upload={"retry_initial_seconds": 0.1, "retry_max_seconds": 0.2})
    d = setup.daemon()
    setup.emu.inject(Fault(status=503, code="service_unavailable", operation="PutObject", key_prefix="bad", count=4))
    (setup.root / "bad.txt").write_bytes(b"fails four times, then goes up")
    setup.shared.wait_for(lambda: len(d.events("upload_failed")) >= 4, timeout=30, what="4 failed attempts")
    (setup.root / "twice.txt").write_bytes(b"version 1")
    setup.wait_uploaded(d, ["twice.txt", "bad.txt"])
    (setup.root / "twice.txt").write_bytes(b"version 2, longer")
    setup.shared.wait_for(lambda: len(d.events("upload_finished")) >= 3, timeout=30, what="the second version")
    status = setup.shared.wait_for(
        lambda: (s := json.loads(setup.cli("status", "--json").stdout))["daemon"]["reuploaded"] == 1 and s,
        timeout=15,
        what="status of 2 files and 1 re-upload",
    )
    assert (2, 2, 1, 0) == (
        status["uploaded"],
        status["daemon"]["uploaded"],
        status["daemon"]["reuploaded"],
        status["daemon"]["failed"],
    ), status
    assert 0 == d.stop()
    stopped = d.events("daemon_stopped")[-1]
    assert (2, 1, 0) == (stopped["uploaded"], stopped["reuploaded"], stopped["failed"]), stopped


def test_sync_with_a_missing_watch_root_names_the_root_not_a_file(setup, tmp_path):
    """A missing watch root is a problem of its own line, not "1 file(s) not uploaded"."""
    gone = tmp_path / "not-there"
    setup.config(watch=gone)
    res = setup.cli("sync", "--no-progress", timeout=60)
    assert 1 == res.returncode, res.stderr
    assert f"qsyncd sync: watch root {gone} does not exist" in res.stderr, res.stderr
    assert "file(s) not uploaded" not in res.stderr, res.stderr


def test_upload_started_is_logged_for_big_files_and_retries(setup):
    """At info, ``upload_started`` is logged for a file of at least 1 MiB and for every retry; a small file's
    first attempt logs only its outcome. At debug level every start is logged."""
    setup.config(upload={"retry_initial_seconds": 0.1, "retry_max_seconds": 0.2})
    once = Fault(status=503, code="service_unavailable", operation="PutObject", key_prefix="retried", count=1)
    setup.emu.inject(once)
    (setup.root / "small.txt").write_bytes(b"one PUT, over at once")
    (setup.root / "retried.txt").write_bytes(b"fails once, then goes up")
    (setup.root / "big.bin").write_bytes(os.urandom((1 << 20) + 1))
    res = setup.cli("sync", "--no-progress", "--log-format", "json", timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    events = json_events(res.stdout + res.stderr)
    finished = {e["key"] for e in events if e["event"] == "upload_finished"}
    assert finished == {"small.txt", "retried.txt", "big.bin"}, events
    started = [(e["key"], e["attempt"], e["level"]) for e in events if e["event"] == "upload_started"]
    assert sorted(started) == [("big.bin", 1, "info"), ("retried.txt", 2, "info")], started

    setup.config(upload={"retry_initial_seconds": 0.1}, extra='[log]\nlevel = "debug"\n')  # debug: every start
    (setup.root / "small2.txt").write_bytes(b"another small one")
    res = setup.cli("sync", "--no-progress", "--log-format", "json", timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    started = [(e["key"], e["level"]) for e in json_events(res.stdout + res.stderr, "upload_started")]
    assert started == [("small2.txt", "debug")], started
