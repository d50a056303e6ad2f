"""The ``Emulator``: a QingStor-compatible server on a local port, its state and its test-facing API.

It owns the store, the fault book (faults and the request log), the credentials and the clock,
and runs :class:`~qsyncd.emulator.server.HTTPServer` in background threads between
:meth:`Emulator.start` and :meth:`Emulator.stop` (or as a context manager).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.faults import Fault, FaultBook, RequestRecord
from qsyncd.emulator.server import HTTPServer
from qsyncd.emulator.store import Store
from qsyncd.emulator.wire import valid_bucket_name

log = logging.getLogger("qsyncd.emulator")

DEFAULT_CREDENTIALS: dict[str, str] = {
    "QSYNCDEMULATORKEY000": "qsyncd-emulator-secret-not-for-production",
}


class Emulator:
    """A QingStor-compatible server on a local port, storing under ``root``."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: dict[str, str] | None = None,
        buckets: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        *,
        seed: int | None = None,
        zone: str = "pek3a",
        fsync: bool = True,
    ) -> None:
        self.root = Path(root)
        self.host = host
        self._requested_port = port
        self.credentials = dict(DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.clock = clock
        self.clock_skew = 0.0
        self.zone = zone
        self.random = random.Random(seed)
        self.book = FaultBook(self.random)
        self.store = Store(self.root, self.now, fsync=fsync)
        for name in buckets:
            if not valid_bucket_name(name):
                raise ValueError(f"invalid bucket name: {name!r}")
            self.store.buckets.ensure(name)
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.port = port

    def now(self) -> float:
        """The server's notion of now: ``clock() + clock_skew``."""
        return self.clock() + self.clock_skew

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        """Bind and serve in background threads."""
        if self._server is not None:
            return self
        self.stopping.clear()
        self._server = HTTPServer((self.host, self._requested_port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"emulator-{self.port}", daemon=True
        )
        self._thread.start()
        log.info("emulator_started url=%s root=%s", self.url, self.root)
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection; join all threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None
        log.info("emulator_stopped url=%s", self.url)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- faults and the request log -------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Add a fault; faults match in insertion order."""
        return self.book.add(fault)

    def faults(self) -> list[Fault]:
        """The faults, in match order."""
        return self.book.faults()

    def clear_faults(self) -> None:
        """Remove all faults."""
        self.book.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log in arrival order."""
        return self.book.records()

    def clear_requests(self) -> None:
        """Forget the request log."""
        self.book.clear_records()

    # ---- what is stored -------------------------------------------------------------------------

    def object_path(self, bucket: str, key: str) -> Path:
        """Where a single-file object's bytes are stored (``KeyError`` if there is no such object).

        A completed multipart object is several files: this raises ``ValueError`` for it; use
        :meth:`object_bytes` or :meth:`object_files`."""
        try:
            return self.store.objects.path(bucket, key)
        except EmulatorError as err:
            raise KeyError(f"{bucket}/{key}: {err.code}") from None

    def object_files(self, bucket: str, key: str) -> list[Path]:
        """The object's data files in the order of its bytes (``KeyError`` if there is no such object)."""
        try:
            return self.store.objects.files(bucket, key)
        except EmulatorError as err:
            raise KeyError(f"{bucket}/{key}: {err.code}") from None

    def object_bytes(self, bucket: str, key: str) -> bytes:
        """The object's whole content, also for multipart objects (``KeyError`` if there is no such object)."""
        try:
            return self.store.objects.read(bucket, key)
        except EmulatorError as err:
            raise KeyError(f"{bucket}/{key}: {err.code}") from None


__all__ = ["DEFAULT_CREDENTIALS", "Emulator"]
