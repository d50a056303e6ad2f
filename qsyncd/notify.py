"""Talking to systemd: sd_notify over a plain AF_UNIX datagram socket, and a watchdog that tells the truth.

``Notifier`` implements the notify protocol (READY, STATUS, WATCHDOG, STOPPING, RELOADING) without
systemd-python; with no ``$NOTIFY_SOCKET`` it is a no-op. ``Liveness`` collects heartbeats from the
pipeline's threads and ``WatchdogPinger`` sends ``WATCHDOG=1`` only while every registered thread beat
recently -- so a wedged upload thread stops the pings and systemd (``WatchdogSec=``) restarts the daemon,
instead of a healthy-looking main loop pinging on its behalf.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

from qsyncd.events import get_logger

log = get_logger()


def _socket_address(value: str) -> str | bytes:
    """``@name`` is an abstract socket (leading NUL); anything else is a filesystem path."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, or None when unset, invalid or meant for another PID."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


class Notifier:
    """Sends sd_notify messages to ``$NOTIFY_SOCKET``. Never raises; the first failure is logged once."""

    def __init__(self, address: str | None, watchdog_interval: float | None = None) -> None:
        self.address = address
        self.enabled = bool(address)
        self.watchdog_interval = watchdog_interval if self.enabled else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failure_logged = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        """Build from ``$NOTIFY_SOCKET`` / ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID``; no socket -> no-op notifier."""
        address = env.get("NOTIFY_SOCKET") or None
        return cls(address, _watchdog_interval(env))

    def send(self, **fields: object) -> None:
        """Send one datagram of ``KEY=VALUE`` lines, e.g. ``send(READY=1, STATUS="watching")``."""
        if not self.enabled or not fields:
            return
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode("utf-8", "replace")
        assert self.address is not None
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, _socket_address(self.address))
        except OSError as exc:
            if not self._failure_logged:
                self._failure_logged = True
                log.warning("notify_failed", socket=self.address, error=str(exc))

    def ready(self, status: str | None = None) -> None:
        """READY=1 (start-up finished), with an optional STATUS."""
        self.send(READY=1, **({"STATUS": status} if status is not None else {}))

    def status(self, text: str) -> None:
        """STATUS=text, shown by ``systemctl status``."""
        self.send(STATUS=text)

    def watchdog(self) -> None:
        """WATCHDOG=1: we are alive."""
        self.send(WATCHDOG=1)

    def stopping(self, status: str | None = None) -> None:
        """STOPPING=1 (shutdown has begun), with an optional STATUS."""
        self.send(STOPPING=1, **({"STATUS": status} if status is not None else {}))

    def reloading(self) -> None:
        """RELOADING=1 with MONOTONIC_USEC= (as systemd >= 253 requires for Type=notify-reload)."""
        self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def ready_after_reload(self) -> None:
        """READY=1 after a reload finished."""
        self.send(READY=1)

    def close(self) -> None:
        """Close the socket (a later send reopens it)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class Liveness:
    """Heartbeats of the pipeline's threads: each component beats; the watchdog pinger pings only if all
    registered components beat recently. A wedged thread therefore stops WATCHDOG=1 and systemd restarts us."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._max_silence: dict[str, float] = {}

    def register(self, name: str, max_silence: float) -> None:
        """Start tracking ``name``; it counts as having beaten now and must beat every ``max_silence`` s."""
        with self._lock:
            self._max_silence[name] = max_silence
            self._last[name] = self._clock()

    def beat(self, name: str) -> None:
        """Record a heartbeat of ``name`` (unknown names are ignored: it may just have unregistered)."""
        now = self._clock()
        with self._lock:
            if name in self._last:
                self._last[name] = now

    def unregister(self, name: str) -> None:
        """Stop tracking ``name`` (a component that finished on purpose)."""
        with self._lock:
            self._last.pop(name, None)
            self._max_silence.pop(name, None)

    def stale(self) -> list[str]:
        """Names (sorted) that have been silent for longer than their ``max_silence``."""
        now = self._clock()
        with self._lock:
            return sorted(n for n, last in self._last.items() if now - last > self._max_silence[n])


class WatchdogPinger:
    """A thread that sends WATCHDOG=1 every ``interval`` seconds while ``liveness.stale()`` is empty.

    While some component is stale it withholds the ping and logs ``watchdog_withheld stale=[...]`` once per
    change of the stale set (``watchdog_resumed`` when all are back). Without an interval (no watchdog
    configured) ``start()`` does nothing.
    """

    def __init__(self, notifier: Notifier, liveness: Liveness, interval: float | None = None) -> None:
        self.notifier = notifier
        self.liveness = liveness
        self.interval = interval if interval is not None else notifier.watchdog_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_stale: list[str] = []

    def start(self) -> None:
        """Start pinging in a daemon thread (no-op when there is no interval or notifier)."""
        if self.interval is None or not self.notifier.enabled or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="qsyncd-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def tick(self) -> bool:
        """One round: ping if nothing is stale; returns whether a ping was sent."""
        stale = self.liveness.stale()
        if stale != self._last_stale:
            if stale:
                log.error("watchdog_withheld", stale=stale)
            else:
                log.info("watchdog_resumed")
            self._last_stale = stale
        if stale:
            return False
        self.notifier.watchdog()
        return True

    def _run(self) -> None:
        assert self.interval is not None
        self.tick()
        while not self._stop.wait(self.interval):
            self.tick()
