"""On-disk storage of the emulator: buckets, objects and unfinished multipart uploads.

:class:`Store` opens a root directory (:mod:`~qsyncd.emulator.store.layout` says where what lives)
and joins its three parts under one lock: the bucket registry
(:mod:`~qsyncd.emulator.store.buckets`), the objects (:mod:`~qsyncd.emulator.store.objects`, with
their versions in :mod:`~qsyncd.emulator.store.versions`) and the multipart uploads
(:mod:`~qsyncd.emulator.store.uploads`). Every file is written to ``.tmp-*``
in its final directory, fsynced, renamed, and the directory fsynced
(:mod:`~qsyncd.emulator.store.datafiles`); what a crash leaves behind is cleaned when a store is
opened. The records written as JSON are in :mod:`~qsyncd.emulator.store.records`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from qsyncd.emulator.store.buckets import BucketRegistry
from qsyncd.emulator.store.datafiles import CHUNK, BodyWriter, ConcatReader
from qsyncd.emulator.store.layout import Layout
from qsyncd.emulator.store.objects import ObjectStore, load_objects
from qsyncd.emulator.store.records import BucketState, ObjectMeta, PartMeta, UploadState
from qsyncd.emulator.store.uploads import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, UploadStore, load_uploads


class Store:
    """Thread-safe, crash-safe storage rooted at a directory: ``buckets``, ``objects``, ``uploads``."""

    def __init__(self, root: Path, now: Callable[[], float], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.now = now
        self.fsync = fsync
        self.layout = Layout(self.root)
        lock = threading.RLock()
        self.buckets = BucketRegistry(self.layout, lock, now, fsync=fsync)
        self.objects = ObjectStore(self.buckets, self.layout, lock, fsync=fsync)
        self.uploads = UploadStore(self.objects, fsync=fsync)
        self.layout.buckets.mkdir(parents=True, exist_ok=True)
        self._load()

    def _load(self) -> None:
        for bdir in sorted(self.layout.buckets.iterdir()):
            state = self.buckets.read(bdir)
            if state is None:
                continue
            load_objects(bdir / "objects", state)
            load_uploads(bdir / "uploads", state)
            state.keys = sorted(state.objects)
            self.buckets.add(state)
            for meta in [*state.objects.values(), *(m for h in state.versions.values() for m in h)]:
                if meta.version_id:
                    self.objects.last_stamp = max(self.objects.last_stamp, int(meta.version_id, 16))

    # The object calls that code outside the emulator uses on ``Emulator.store`` (tests/emulator/
    # test_scale.py writes objects directly; tests/remote reads one back).

    def object_writer(self, bucket: str, key: str) -> BodyWriter:
        """A writer for a new version of ``key`` (see :meth:`ObjectStore.writer`)."""
        return self.objects.writer(bucket, key)

    def commit_object(self, bucket: str, writer_path: Path, meta: ObjectMeta) -> ObjectMeta:
        """Commit what a writer wrote as ``meta.key`` (see :meth:`ObjectStore.commit`)."""
        return self.objects.commit(bucket, writer_path, meta)

    def open_object(self, bucket: str, key: str) -> tuple[ObjectMeta, BinaryIO]:
        """Metadata and an open file of the data (see :meth:`ObjectStore.open`)."""
        return self.objects.open(bucket, key)


__all__ = [
    "CHUNK",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "BodyWriter",
    "BucketState",
    "ConcatReader",
    "ObjectMeta",
    "PartMeta",
    "Store",
    "UploadState",
]
