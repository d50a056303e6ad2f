"""A $NOTIFY_SOCKET listener: an AF_UNIX datagram socket with SO_PASSCRED, as systemd's notify socket is.

A background thread reads every datagram as it arrives (so a sender never finds the queue full during a
long test) into ``history``; tests wait for new messages or read what came so far.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_UCRED = struct.Struct("iII")  # pid, uid, gid


class NotifySocket:
    """Bound to ``path``, or to a fresh abstract name when no path is given (no file, no root needed)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.name = f"qsyncd-notify-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(str(path) if path is not None else b"\0" + self.name.encode())
        self.history: list[dict[str, Any]] = []
        self._new: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="notify-socket", daemon=True)
        self._reader.start()

    @property
    def env(self) -> dict[str, str]:
        """Add to a child's environment."""
        return {"NOTIFY_SOCKET": str(self.path) if self.path is not None else "@" + self.name}

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.sock], [], [], 0.1)
                if not ready:
                    continue
                data, ancdata, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(_UCRED.size))
            except (OSError, ValueError):  # closed under us
                return
            msg = _parse(data, ancdata)
            with self._cond:
                self.history.append(msg)
                self._new.append(msg)
                self._cond.notify_all()

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message not yet handed out, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._new), timeout=max(timeout, 0))
            return self._new.popleft() if self._new else None

    def messages(self, timeout: float) -> list[dict[str, Any]]:
        """Every new message that arrives within ``timeout`` seconds (waits the whole time)."""
        deadline = time.monotonic() + timeout
        out = []
        while (msg := self._receive(deadline - time.monotonic())) is not None:
            out.append(msg)
        return out

    def wait_for(self, key: str, value: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The first new message holding ``key`` (with ``value`` if given); TimeoutError if none comes."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self._receive(deadline - time.monotonic())
            if msg is None:
                raise TimeoutError(f"no notify message with {key}={value} within {timeout}s; got {self.history}")
            if key in msg and (value is None or msg[key] == value):
                return msg

    def statuses(self) -> list[str]:
        """Every ``STATUS=`` value received so far, oldest first."""
        with self._cond:
            return [m["STATUS"] for m in self.history if "STATUS" in m]

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=2)
        self.sock.close()


def _parse(data: bytes, ancdata: list[tuple[int, int, bytes]]) -> dict[str, Any]:
    """``KEY=VALUE`` lines, plus ``_PID``/``_UID``/``_GID`` from the sender's credentials."""
    msg: dict[str, Any] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if line:
            key, _, value = line.partition("=")
            msg[key] = value
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            msg["_PID"], msg["_UID"], msg["_GID"] = _UCRED.unpack(payload[: _UCRED.size])
    return msg


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    """A fresh abstract notify socket (no root needed)."""
    ns = NotifySocket()
    try:
        yield ns
    finally:
        ns.close()
