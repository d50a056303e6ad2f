"""A TCP proxy on 127.0.0.1 that breaks some of what passes through: connection resets and stalls.

For stores whose server cannot inject faults itself (SeaweedFS; the emulator has ``Fault``), the
client is pointed at the proxy instead. Each message (a request, or an answer: the bytes one side
sends before the other side speaks) is, with the given probabilities, cut off with a TCP reset after
a random number of its bytes (both sides: mid-request or mid-response), or held for ``stall_seconds``
before it is forwarded (longer than the client's read timeout, so it times out). Decisions come from
one seeded ``random.Random``. ``resets`` and ``stalls`` count what was done; ``upstream_bytes`` what the
clients sent (with no faults asked for, it is a byte counter: how much went up to the store). Threads only; ``close()``
stops listening and drops every connection.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

from qsyncd.weed import free_ports

CHUNK = 1 << 20


class FaultProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream`` (host, port), injecting resets and stalls."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        reset_probability: float = 0.0,
        stall_probability: float = 0.0,
        stall_seconds: float = 3.0,
        seed: int = 0,
    ) -> None:
        self.upstream = upstream
        self.reset_probability = reset_probability
        self.stall_probability = stall_probability
        self.stall_seconds = stall_seconds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.resets = 0
        self.stalls = 0
        self.upstream_bytes = 0  # bytes the clients sent towards the server (requests and their bodies)
        self.enabled = True
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._socks: set[socket.socket] = set()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="faultproxy-accept", daemon=True).start()

    def _fate(self) -> str:
        with self.lock:
            if not self.enabled:
                return "pass"
            x = self.rng.random()
            if x < self.reset_probability:
                self.resets += 1
                return "reset"
            if x < self.reset_probability + self.stall_probability:
                self.stalls += 1
                return "stall"
            return "pass"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self.lock:
                self._socks.update((client, server))
            turn: list[object] = [None]  # which side spoke last on this connection: a new message starts
            for src, dst, up in ((client, server, True), (server, client, False)):
                args = (src, dst, turn, up)
                threading.Thread(target=self._pump, args=args, name="faultproxy-pump", daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, turn: list[object], up: bool) -> None:
        cut_at = -1  # bytes into the current message at which it is cut off (-1: not this one)
        sent = 0
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if turn[0] is not src:  # this side starts a new message
                    turn[0] = src
                    sent = 0
                    fate = self._fate()
                    with self.lock:
                        cut_at = self.rng.randrange(0, 64 * 1024) if fate == "reset" else -1
                    if fate == "stall":
                        time.sleep(self.stall_seconds)
                if 0 <= cut_at < sent + len(data):
                    dst.sendall(data[: cut_at - sent])
                    _reset(src)
                    _reset(dst)
                    return
                dst.sendall(data)
                sent += len(data)
                if up:
                    with self.lock:
                        self.upstream_bytes += len(data)
        except OSError:
            _reset(src)
            _reset(dst)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self.lock:
            socks, self._socks = self._socks, set()
        for s in socks:
            _reset(s)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
