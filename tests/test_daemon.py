"""The daemon as a subprocess: Prometheus metrics, SIGHUP reload of watch roots, clean SIGTERM."""

from __future__ import annotations

import signal
import socket
import urllib.request
from pathlib import Path
from typing import Any

from qsynctest import BUCKET, write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_endpoint_counts_uploads(tmp_path: Path, emulator: Any, daemon_factory: Any) -> None:
    """With [metrics] listen set, /metrics reports files and bytes uploaded and the queue depth."""
    drop = tmp_path / "drop"
    drop.mkdir()
    port = free_port()
    cfg = write_config(
        tmp_path / "q.toml",
        endpoint=emulator.url,
        watch=drop,
        state=tmp_path / "state",
        extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n',
    )
    d = daemon_factory(cfg).start()
    d.wait_event("daemon_ready")
    (drop / "one.bin").write_bytes(b"x" * 1234)
    d.wait_event("upload_finished")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "qsyncd_files_uploaded_total 1.0" in text
    assert "qsyncd_bytes_uploaded_total 1234.0" in text
    assert "qsyncd_queue_depth 0.0" in text
    assert "qsyncd_remote_up 1.0" in text
    assert 0 == d.stop()


def test_sighup_adds_and_removes_watch_roots(tmp_path: Path, emulator: Any, daemon_factory: Any) -> None:
    """SIGHUP re-reads the config: a new root is watched and uploaded from, a removed one is not."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    cfg_path = tmp_path / "q.toml"
    common = {"endpoint": emulator.url, "state": tmp_path / "state"}
    write_config(cfg_path, watch=[{"path": str(a), "prefix": "a/"}], **common)
    d = daemon_factory(cfg_path).start()
    d.wait_event("daemon_ready")
    write_config(cfg_path, watch=[{"path": str(b), "prefix": "b/"}], **common)
    d.proc.send_signal(signal.SIGHUP)
    ev = d.wait_event("config_reloaded")[0]
    assert [str(b)] == ev["added"]
    assert [str(a)] == ev["removed"]
    (b / "new.txt").write_text("in b")
    (a / "old.txt").write_text("in a")
    d.wait_event("upload_finished", pred=lambda e: e["key"] == "b/new.txt")
    assert "in b" == emulator.object_bytes(BUCKET, "b/new.txt").decode()
    assert 0 == d.stop()
    assert not [r for r in emulator.requests if r.key == "a/old.txt"]


def test_sigterm_stops_cleanly_and_releases_the_lock(tmp_path: Path, emulator: Any, daemon_factory: Any) -> None:
    """SIGTERM ends the daemon with exit 0; a second daemon can then take the state dir."""
    drop = tmp_path / "drop"
    drop.mkdir()
    cfg = write_config(tmp_path / "q.toml", endpoint=emulator.url, watch=drop, state=tmp_path / "state")
    first = daemon_factory(cfg).start()
    first.wait_event("daemon_ready")
    assert 0 == first.stop()
    assert first.events("daemon_stopped")
    second = daemon_factory(cfg).start()
    second.wait_event("daemon_ready")
    assert 0 == second.stop()
