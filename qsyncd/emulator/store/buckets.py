"""The bucket registry: which buckets exist, created and deleted on disk, with their statistics."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.store import datafiles
from qsyncd.emulator.store.layout import Layout
from qsyncd.emulator.store.records import BucketState


class BucketRegistry:
    """The buckets by name; every method takes the store's lock."""

    def __init__(self, layout: Layout, lock: threading.RLock, now: Callable[[], float], *, fsync: bool) -> None:
        self.layout = layout
        self.lock = lock
        self.now = now
        self.fsync = fsync
        self._buckets: dict[str, BucketState] = {}

    def read(self, bdir: Path) -> BucketState | None:
        """The bucket stored in ``bdir`` (without objects and uploads), or None if it is none.

        A ``.trash-*`` directory (a delete cut short) is removed."""
        if not bdir.is_dir():
            return None
        if bdir.name.startswith(".trash-"):
            shutil.rmtree(bdir, ignore_errors=True)
            return None
        try:
            info = json.loads((bdir / "bucket.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return BucketState(
            name=info["name"], created=float(info["created"]), versioning=info.get("versioning", "DISABLED")
        )

    def add(self, state: BucketState) -> None:
        """Register a bucket read from disk."""
        with self.lock:
            self._buckets[state.name] = state

    def create(self, name: str) -> BucketState:
        """Create a bucket; 409 ``bucket_already_exists`` if it is there."""
        with self.lock:
            if name in self._buckets:
                raise EmulatorError(409, "bucket_already_exists", f"bucket {name} already exists")
            state = BucketState(name=name, created=self.now())
            bdir = self.layout.bucket_dir(name)
            (bdir / "objects").mkdir(parents=True, exist_ok=True)
            (bdir / "uploads").mkdir(parents=True, exist_ok=True)
            datafiles.write_json(bdir / "bucket.json", {"name": name, "created": state.created}, fsync=self.fsync)
            self._buckets[name] = state
            return state

    def ensure(self, name: str) -> None:
        """Create a bucket unless it exists."""
        with self.lock:
            if name not in self._buckets:
                self.create(name)

    def set_versioning(self, name: str, status: str) -> None:
        """Enable or suspend versioning (``ENABLED`` / ``SUSPENDED``), recorded in ``bucket.json``."""
        with self.lock:
            state = self.get(name)
            info = {"name": name, "created": state.created, "versioning": status}
            datafiles.write_json(self.layout.bucket_dir(name) / "bucket.json", info, fsync=self.fsync)
            state.versioning = status

    def get(self, name: str) -> BucketState:
        """The bucket's state; 404 ``bucket_not_exists`` if missing."""
        with self.lock:
            state = self._buckets.get(name)
            if state is None:
                raise EmulatorError(404, "bucket_not_exists", f"bucket {name} does not exist")
            return state

    def all(self) -> list[BucketState]:
        """All buckets sorted by name."""
        with self.lock:
            return [self._buckets[n] for n in sorted(self._buckets)]

    def delete(self, name: str) -> None:
        """Delete an empty bucket (its unfinished uploads go with it); 409 if it holds objects or
        versions of objects (delete markers included)."""
        with self.lock:
            state = self.get(name)
            if state.objects or state.versions:
                raise EmulatorError(409, "bucket_not_empty", f"bucket {name} is not empty")
            trash = self.layout.buckets / f".trash-{uuid.uuid4().hex}"
            os.replace(self.layout.bucket_dir(name), trash)
            del self._buckets[name]
        shutil.rmtree(trash, ignore_errors=True)

    def stats(self, name: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
        """(object count, total size, {storage_class: (count, size)})."""
        with self.lock:
            state = self.get(name)
            classes: dict[str, tuple[int, int]] = {}
            total = 0
            for meta in state.objects.values():
                c, s = classes.get(meta.storage_class, (0, 0))
                classes[meta.storage_class] = (c + 1, s + meta.size)
                total += meta.size
            return len(state.objects), total, classes
