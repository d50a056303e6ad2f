"""Progress of ``qsyncd sync`` on a terminal: files, bytes and rate on one redrawn line.

Off a terminal nothing is drawn; the structured events already say what happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    def __init__(self, stream: TextIO | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self.files = 0
        self.skipped = 0
        self.copied = 0  # files put in place server-side (renames)
        self.bytes = 0
        self.t0 = clock()
        self._waiting: Callable[[], int] = lambda: 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_stream(
        cls, stream: TextIO, *, enabled: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> Progress:
        return cls(stream if enabled and stream.isatty() else None, clock=clock)

    def on_outcome(self, out: Any) -> None:
        if out.action == "uploaded":
            self.files += 1
            self.bytes += out.bytes
        elif out.action in ("copied", "moved"):
            self.copied += 1
        else:
            self.skipped += 1

    def attach(self, waiting: Callable[[], int]) -> None:
        """Start drawing; ``waiting()`` says how many files are settling, queued or uploading."""
        self._waiting = waiting
        if self.stream is None:
            return
        self._thread = threading.Thread(target=self._draw_loop, name="progress", daemon=True)
        self._thread.start()

    def line(self) -> str:
        secs = max(1e-6, self.clock() - self.t0)
        waiting = self._waiting()
        return (
            f"uploaded {self.files} files, {_human(self.bytes)} ({_human(self.bytes / secs)}/s)"
            + (f" · copied in the bucket {self.copied}" if self.copied else "")
            + f" · skipped {self.skipped} · waiting {waiting}"
        )

    def _draw_loop(self) -> None:
        while not self._stop.wait(0.5):
            self._draw()

    def _draw(self) -> None:
        if self.stream is not None:
            self.stream.write("\r\x1b[K" + self.line())
            self.stream.flush()

    def finish(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._draw()
            self.stream.write("\n")  # type: ignore[union-attr]
