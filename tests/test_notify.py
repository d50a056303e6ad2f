"""sd_notify client, Liveness and WatchdogPinger against a real abstract AF_UNIX datagram socket."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from qsynctest import NotifySocket

from qsyncd.events import configure_logging
from qsyncd.notify import Liveness, Notifier, WatchdogPinger

CHILD = """
import os, sys
from qsyncd.notify import Notifier
n = Notifier.from_env()
assert n.enabled
n.ready("watching /srv/qsyncd")
n.status("uploading 3 files")
n.watchdog()
n.reloading()
n.ready_after_reload()
n.stopping("shutting down")
"""


@pytest.fixture
def log_lines():
    """JSON log output captured in memory; returns a callable giving the parsed lines so far."""
    buf = io.StringIO()
    configure_logging("json", "debug", stream=buf)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buf.getvalue().splitlines()]

    yield lines
    configure_logging("json", "info", stream=io.StringIO())


def test_no_socket_is_noop():
    """Without $NOTIFY_SOCKET the notifier is disabled, has no watchdog and sending does nothing."""
    n = Notifier.from_env({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled
    assert n.watchdog_interval is None
    n.ready("x")
    n.watchdog()


def test_child_process_messages_and_sender_pid(notify_socket: NotifySocket):
    """Every notification from a child arrives as one datagram whose SCM_CREDENTIALS pid is the child."""
    env = {**notify_socket.env, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env)
    try:
        ready = notify_socket.wait_for("READY", "1")
        assert ready["STATUS"] == "watching /srv/qsyncd"
        assert ready["_PID"] == proc.pid
        assert notify_socket.wait_for("STATUS")["STATUS"] == "uploading 3 files"
        assert notify_socket.wait_for("WATCHDOG", "1")["_PID"] == proc.pid
        reloading = notify_socket.wait_for("RELOADING", "1")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        assert notify_socket.wait_for("READY", "1")["_PID"] == proc.pid
        stopping = notify_socket.wait_for("STOPPING", "1")
        assert stopping["STATUS"] == "shutting down"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_reloading_carries_current_monotonic_time(notify_socket: NotifySocket):
    """MONOTONIC_USEC lies between CLOCK_MONOTONIC read before and after the call."""
    n = Notifier.from_env(notify_socket.env)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    msg = notify_socket.wait_for("RELOADING", "1")
    assert before <= int(msg["MONOTONIC_USEC"]) <= after
    n.close()


def test_path_socket(tmp_path: Path):
    """A filesystem-path $NOTIFY_SOCKET works as well as an abstract one."""
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(10)
    try:
        Notifier.from_env({"NOTIFY_SOCKET": str(path)}).send(READY=1, STATUS="a=b")
        assert server.recv(4096) == b"READY=1\nSTATUS=a=b"
    finally:
        server.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "<self>"}, 0.2),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "<other>"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict, expected: float | None):
    """The ping interval is WATCHDOG_USEC/2, and None when WATCHDOG_PID names another process."""
    import os

    pids = {"<self>": str(os.getpid()), "<other>": str(os.getpid() + 1)}
    env = {k: pids.get(v, v) for k, v in env.items()}
    n = Notifier.from_env({"NOTIFY_SOCKET": "@qsyncd-unused", **env})
    assert n.watchdog_interval == expected


def test_send_failure_never_raises_and_logs_once(log_lines):
    """A notify socket nobody listens on does not raise; the failure is logged exactly once."""
    n = Notifier.from_env({"NOTIFY_SOCKET": "@qsyncd-nobody-listens-here"})
    for _ in range(3):
        n.watchdog()
    failures = [line for line in log_lines() if line["event"] == "notify_failed"]
    assert len(failures) == 1
    assert failures[0]["socket"] == "@qsyncd-nobody-listens-here"


def test_liveness_stale_with_fake_clock():
    """A component is stale only after being silent longer than its own max_silence."""
    now = [100.0]
    live = Liveness(clock=lambda: now[0])
    live.register("watcher", 5)
    live.register("uploader", 10)
    now[0] = 106
    assert live.stale() == ["watcher"]
    live.beat("watcher")
    assert live.stale() == []
    now[0] = 117
    assert live.stale() == ["uploader", "watcher"]
    live.unregister("uploader")
    live.beat("uploader")  # ignored after unregister
    assert live.stale() == ["watcher"]


def test_pinger_without_interval_does_not_start(notify_socket: NotifySocket):
    """With no watchdog configured the pinger starts no thread and sends nothing."""
    pinger = WatchdogPinger(Notifier.from_env(notify_socket.env), Liveness())
    pinger.start()
    assert pinger._thread is None
    assert notify_socket.messages(0.3) == []


def test_pinger_stops_when_a_thread_wedges_and_resumes(notify_socket: NotifySocket, log_lines):
    """Pings flow while the worker beats, stop while it is blocked on an Event, and resume after."""
    live = Liveness()
    live.register("uploader", max_silence=0.3)
    notifier = Notifier.from_env(notify_socket.env)
    pinger = WatchdogPinger(notifier, live, interval=0.05)
    wedged, release, stop = threading.Event(), threading.Event(), threading.Event()

    def worker() -> None:
        while not stop.is_set():
            if wedged.is_set():
                release.wait()  # a real thread, blocked for real
                wedged.clear()
            live.beat("uploader")
            time.sleep(0.02)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    pinger.start()
    try:
        pings = [m for m in notify_socket.messages(1.0) if m.get("WATCHDOG") == "1"]
        assert len(pings) >= 3

        wedged.set()
        deadline = time.monotonic() + 10
        while not any(line["event"] == "watchdog_withheld" for line in log_lines()):
            assert time.monotonic() < deadline, "watchdog was never withheld"
            time.sleep(0.05)
        withheld = [line for line in log_lines() if line["event"] == "watchdog_withheld"]
        assert withheld == [{**withheld[0], "stale": ["uploader"]}]
        notify_socket.messages(0.2)  # drain anything sent before the decision
        assert [m for m in notify_socket.messages(1.0) if "WATCHDOG" in m] == []

        release.set()
        notify_socket.wait_for("WATCHDOG", "1", timeout=10)
        assert any(line["event"] == "watchdog_resumed" for line in log_lines())
        assert len([line for line in log_lines() if line["event"] == "watchdog_withheld"]) == 1
    finally:
        stop.set()
        release.set()
        pinger.stop()
        thread.join(timeout=10)
        notifier.close()
