"""What this run did and what it is doing now: the counters, and the typed status snapshot built from them.

``Counters`` are written by the upload workers (thread-safe) and count files, not attempts: a file counts
once as uploaded however often it was tried, and a file sent again because it changed is counted as
``reuploaded``. ``Status`` is one snapshot of the daemon (its counters, its queues, the remote's state) as
every reader sees it: the systemd ``STATUS=`` line, ``qsyncd status`` (through the ledger, as JSON), the
Prometheus endpoint and the ``sync`` progress line. README ("What the counts mean") documents each field.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Counters:
    """The counts of this run. Every method may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.uploaded = 0  # files uploaded (a file that changed and went up again counts once)
        self.reuploaded = 0  # further uploads of files already uploaded in this run (they changed)
        self.uploaded_bytes = 0  # bytes of every upload, re-uploads included
        self.skipped = 0  # files not sent: already in the bucket, or not uploadable (FIFO, symlink, ...)
        self.copied = 0  # files put in place by a server-side copy or move (renames): no byte sent
        self.kept = 0  # versions kept before they were replaced (on_change = "keep")
        self.refused = 0  # files not uploaded because the bucket holds another version (on_change = "refuse")
        self.retries = 0  # failed attempts that were scheduled again
        self.part_retries = 0  # parts sent again within a multipart upload
        self.last_upload_wall: float | None = None
        self.remote_errors: dict[str, int] = {}  # failed requests by error code
        self.verify_rounds = 0  # periodic verifies of the bucket against the ledger that finished
        self.objects_lost: dict[str, int] = {}  # objects found missing or changed by them, by kind
        self._failing: set[str] = set()  # files whose last attempt failed

    def uploaded_file(self, path: str, size: int, wall: float, *, again: bool) -> None:
        with self._lock:
            if again:
                self.reuploaded += 1
            else:
                self.uploaded += 1
            self.uploaded_bytes += size
            self.last_upload_wall = wall
            self._failing.discard(path)

    def reused_file(self, path: str, wall: float) -> None:
        """``path`` is in the bucket by a server-side copy or move."""
        with self._lock:
            self.copied += 1
            self.last_upload_wall = wall
            self._failing.discard(path)

    def kept_version(self) -> None:
        with self._lock:
            self.kept += 1

    def refused_change(self, path: str) -> None:
        with self._lock:
            self.refused += 1
            self._failing.add(path)

    def skipped_file(self, path: str) -> None:
        with self._lock:
            self.skipped += 1
            self._failing.discard(path)

    def failed_attempt(self, path: str, *, retried: bool) -> None:
        with self._lock:
            self._failing.add(path)
            if retried:
                self.retries += 1

    def settled(self, path: str) -> None:
        """``path`` is no longer failing (it vanished, or turned out not to need an upload)."""
        with self._lock:
            self._failing.discard(path)

    def part_retried(self) -> None:
        with self._lock:
            self.part_retries += 1

    def remote_error(self, code: str) -> None:
        with self._lock:
            self.remote_errors[code] = self.remote_errors.get(code, 0) + 1

    def verified(self) -> None:
        with self._lock:
            self.verify_rounds += 1

    def object_lost(self, kind: str) -> None:
        """A periodic verify found an uploaded file's object ``missing`` or ``changed`` in the bucket."""
        with self._lock:
            self.objects_lost[kind] = self.objects_lost.get(kind, 0) + 1

    @property
    def failed(self) -> int:
        """Files whose last attempt failed (attempts are ``retries``)."""
        with self._lock:
            return len(self._failing)


@dataclass(frozen=True)
class Status:
    """One snapshot of the daemon. ``to_json``/``from_json`` are the form stored in the ledger."""

    pid: int = field(default_factory=os.getpid)
    started_at: float = 0.0
    updated_at: float = 0.0
    running: bool = True
    roots: Mapping[str, bool] = field(default_factory=dict)  # watch root -> watched
    queued: int = 0
    settling: int = 0
    uploading: int = 0
    in_flight_bytes: int = 0
    uploaded: int = 0
    reuploaded: int = 0
    uploaded_bytes: int = 0
    skipped: int = 0
    copied: int = 0  # put in place server-side (renames), no byte sent
    kept: int = 0  # replaced versions kept (on_change = "keep")
    refused: int = 0  # not uploaded: the bucket holds another version (on_change = "refuse")
    failed: int = 0
    retries: int = 0
    last_upload_at: float | None = None
    remote_down_since: float | None = None
    remote_problem: str = ""  # "" while the remote answers, else "unreachable" or "refused"
    remote_error: str = ""

    @property
    def waiting(self) -> int:
        """Files not yet done: settling, queued or uploading."""
        return self.queued + self.settling + self.uploading

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"roots": dict(self.roots)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Status:
        """A stored snapshot (unknown keys from another version are ignored, missing ones defaulted)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def line(self, now: float) -> str:
        """The systemd ``STATUS=`` line: "watching 2 roots · 3 uploading · 120 queued · last upload 4 s ago"."""
        if self.remote_down_since:
            since = time.strftime("%H:%M", time.localtime(self.remote_down_since))
            what = "remote refuses our requests" if self.remote_problem == "refused" else "remote unreachable"
            return f"{what} since {since}, {self.waiting} files waiting"
        watched = sum(1 for v in self.roots.values() if v)
        parts = [
            f"watching {watched} roots"
            if watched == len(self.roots)
            else f"watching {watched} of {len(self.roots)} roots"
        ]
        parts.append(f"{self.uploading} uploading")
        parts.append(f"{self.queued + self.settling} queued")
        if self.last_upload_at:
            parts.append(f"last upload {int(now - self.last_upload_at)} s ago")
        return " · ".join(parts)
