"""The objects of every bucket: written, committed, read, listed, copied and deleted crash-safely.

For an object the metadata JSON is the commit point: it names its data file(s), so a crash at any
moment leaves either the old or the new version; data files no JSON refers to (and ``.tmp-*``
leftovers) are removed when the store is opened. An in-memory sorted key index per bucket
(:class:`~qsyncd.emulator.store.records.BucketState`) serves listings. Bodies are streamed in ~1 MiB
chunks and never held in memory.

A composite object (a completed multipart upload) is several data files, opened one at a time
while it is read; a file of an object that is replaced or deleted while a reader still needs it is
unlinked when that reader closes (or, after a crash, when the store is next opened).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.store import datafiles, versions
from qsyncd.emulator.store.buckets import BucketRegistry
from qsyncd.emulator.store.datafiles import CHUNK, BodyWriter, ConcatReader
from qsyncd.emulator.store.layout import Layout, key_hash
from qsyncd.emulator.store.listing import page_keys
from qsyncd.emulator.store.records import BucketState, ObjectMeta


def load_objects(odir: Path, state: BucketState) -> None:
    """Read every committed object (and its versions) under ``odir`` into ``state``; remove
    unreferenced data and temp files (see :func:`~qsyncd.emulator.store.versions.resolve_history`)."""
    if not odir.is_dir():
        return
    for sub in odir.iterdir():
        if not sub.is_dir():
            continue
        records: dict[str, list[tuple[Path, ObjectMeta]]] = {}
        names = os.listdir(sub)
        for name in sorted(names, key=lambda n: ".v-" in n):  # each key's <h>.json first
            if name.endswith(".json") and not name.startswith(".tmp-"):
                try:
                    meta = ObjectMeta(**json.loads((sub / name).read_text(encoding="utf-8")))
                except (OSError, ValueError, TypeError):
                    continue
                records.setdefault(meta.key, []).append((sub / name, meta))
        referenced: set[str] = set()
        for key, found in records.items():
            current, history, dropped = versions.resolve_history([meta for _, meta in found])
            if current is not None:
                state.objects[key] = current
            if history:
                state.versions[key] = history
            for meta in ([current] if current else []) + history:
                referenced.update(meta.file_names())
            for path, meta in found:
                if any(meta is d for d in dropped) or (current is None and ".v-" not in path.name):
                    path.unlink(missing_ok=True)  # a forgotten null version, or <h>.json under a marker
        for name in names:
            if name.startswith(".tmp-") or (name.endswith(".data") and name not in referenced):
                (sub / name).unlink(missing_ok=True)


class ObjectStore:
    """Objects by bucket and key; thread-safe under the store's lock."""

    def __init__(self, buckets: BucketRegistry, layout: Layout, lock: threading.RLock, *, fsync: bool) -> None:
        self.buckets = buckets
        self.layout = layout
        self.lock = lock
        self.fsync = fsync
        self._pins: dict[Path, int] = {}  # data file -> number of open readers that need it
        self._doomed: set[Path] = set()  # pinned data files of replaced/deleted objects
        self.last_stamp = 0  # the newest version id's stamp (version ids only grow)

    def new_version_id(self) -> str:
        """A fresh version id: a 16-digit hex stamp (microseconds), larger than every earlier one."""
        with self.lock:
            self.last_stamp = max(int(self.buckets.now() * 1e6), self.last_stamp + 1)
            return f"{self.last_stamp:016x}"

    # ---- writing --------------------------------------------------------------------------------

    def writer(self, bucket: str, key: str) -> BodyWriter:
        """A writer whose temp file lives in the object's final directory."""
        self.buckets.get(bucket)
        return BodyWriter(self.layout.object_dir(bucket, key), self.fsync)

    def commit(self, bucket: str, writer_path: Path, meta: ObjectMeta) -> ObjectMeta:
        """Make the written temp file the object's data, atomically replacing any old version."""
        self.buckets.get(bucket)
        odir = self.layout.object_dir(bucket, meta.key)  # the writer's temp file lives here already
        meta.data_file = f"{key_hash(meta.key)}.{uuid.uuid4().hex}.data"
        meta.data_files = []
        if self.buckets.get(bucket).versioning != versions.DISABLED:
            with self.lock:  # the version id is given and recorded under the lock, so ids follow commits
                os.replace(writer_path, odir / meta.data_file)
                return self.commit_meta(bucket, meta)
        staged = datafiles.stage_json(odir, dataclasses.asdict(meta), fsync=self.fsync)
        try:
            with self.lock:
                os.replace(writer_path, odir / meta.data_file)
                result = self.commit_meta(bucket, meta, staged=staged)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        if self.fsync:
            datafiles.fsync_dir(odir)  # before the caller answers: the rename is durable once acknowledged
        return result

    def commit_meta(self, bucket: str, meta: ObjectMeta, *, staged: Path | None = None) -> ObjectMeta:
        """Write the JSON naming ``meta``'s data files (the commit point), then retire the old version.

        The caller holds the lock and has put the data files in the object directory. With
        ``staged`` (a durable temp file of the JSON) only the rename happens here and the caller
        fsyncs the directory after releasing the lock."""
        state = self.buckets.get(bucket)
        if state.versioning != versions.DISABLED:
            if staged is not None:  # versioning was enabled after the caller staged: give it an id
                staged.unlink(missing_ok=True)
            return versions.commit_versioned(self, state, meta)
        odir = self.layout.object_dir(bucket, meta.key)
        if staged is not None:
            os.replace(staged, self.layout.object_json(bucket, meta.key))
        else:
            datafiles.write_json(self.layout.object_json(bucket, meta.key), dataclasses.asdict(meta), fsync=self.fsync)
        old = state.objects.get(meta.key)
        state.objects[meta.key] = meta
        if old is None:
            bisect.insort(state.keys, meta.key)
        else:
            for name in old.file_names():
                self.unlink_data(odir / name)
        return dataclasses.replace(meta, data_files=list(meta.data_files))

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        meta: ObjectMeta,
        src_version: str | None = None,
        check: Callable[[ObjectMeta], None] | None = None,
    ) -> ObjectMeta:
        """Copy an object's data (streamed; of version ``src_version`` if given) to ``meta.key`` in ``dst_bucket``;
        ``check`` (a copy condition) is applied to the version that was opened, so a source replaced since
        it was checked cannot slip through."""
        if src_version is None:
            src_meta, fh = self.open(src_bucket, src_key)
        else:
            src_meta, fh = self.open_version(src_bucket, src_key, src_version)
        if check is not None:
            try:
                check(src_meta)
            except BaseException:
                fh.close()
                raise
        writer = self.writer(dst_bucket, meta.key)
        try:
            with fh:
                while chunk := fh.read(CHUNK):
                    writer.write(chunk)
            meta.etag = writer.finish()
            meta.size = writer.size
            return self.commit(dst_bucket, writer.path, meta)
        except BaseException:
            writer.discard()
            raise

    def delete(self, bucket: str, key: str) -> bool:
        """Delete an object (in a versioned bucket: hide it under a delete marker); whether it existed."""
        return self.delete_latest(bucket, key)[0]

    def delete_latest(self, bucket: str, key: str) -> tuple[bool, ObjectMeta | None]:
        """A plain DELETE: (whether the object existed, the delete marker made in a versioned bucket)."""
        with self.lock:
            state = self.buckets.get(bucket)
            if state.versioning != versions.DISABLED:
                return versions.delete_versioned(self, state, key, self.buckets.now())
            return self._delete_unversioned(state, bucket, key), None

    def delete_version(self, bucket: str, key: str, version_id: str) -> ObjectMeta | None:
        """Remove one version (or delete marker) for good; the removed version, None if unknown."""
        with self.lock:
            return versions.delete_version(self, self.buckets.get(bucket), key, version_id)

    def _delete_unversioned(self, state: BucketState, bucket: str, key: str) -> bool:
        with self.lock:
            meta = state.objects.pop(key, None)
            if meta is None:
                return False
            idx = bisect.bisect_left(state.keys, key)
            if idx < len(state.keys) and state.keys[idx] == key:
                del state.keys[idx]
            odir = self.layout.object_dir(bucket, key)
            self.layout.object_json(bucket, key).unlink(missing_ok=True)
            if self.fsync:
                datafiles.fsync_dir(odir)
            for name in meta.file_names():
                self.unlink_data(odir / name)
            return True

    # ---- reading --------------------------------------------------------------------------------

    def head(self, bucket: str, key: str) -> ObjectMeta:
        """The object's metadata; 404 ``object_not_exists`` if missing."""
        with self.lock:
            meta = self.buckets.get(bucket).objects.get(key)
            if meta is None:
                raise EmulatorError(404, "object_not_exists", "the object does not exist")
            return dataclasses.replace(meta, data_files=list(meta.data_files))

    def open(self, bucket: str, key: str) -> tuple[ObjectMeta, BinaryIO]:
        """Metadata plus an open, seekable file of the data (stays readable if the object is replaced).

        A multipart object gives a :class:`ConcatReader` over its parts; close it when done."""
        with self.lock:
            return self._open_meta(bucket, self.head(bucket, key))

    def open_version(self, bucket: str, key: str, version_id: str) -> tuple[ObjectMeta, BinaryIO]:
        """Like :meth:`open`, for one version (404 if unknown, 405 for a delete marker)."""
        with self.lock:
            return self._open_meta(bucket, self.version(bucket, key, version_id))

    def version(self, bucket: str, key: str, version_id: str) -> ObjectMeta:
        """One version's metadata (``version_id`` as on the wire): 404 if unknown, 405 for a marker."""
        with self.lock:
            return versions.find_version(self.buckets.get(bucket), key, version_id)

    def hiding_marker(self, bucket: str, key: str) -> ObjectMeta | None:
        """The delete marker that is the newest version of ``key``, if it is one."""
        with self.lock:
            return versions.latest_marker(self.buckets.get(bucket), key)

    def all_versions(self, bucket: str, prefix: str) -> list[tuple[ObjectMeta, bool]]:
        """Every version under ``prefix``: (version, is_latest), by key and newest first."""
        with self.lock:
            return versions.all_versions(self.buckets.get(bucket), prefix)

    def _open_meta(self, bucket: str, meta: ObjectMeta) -> tuple[ObjectMeta, BinaryIO]:
        with self.lock:
            key = meta.key
            odir = self.layout.object_dir(bucket, key)
            if not meta.data_files:
                return meta, open(odir / meta.data_file, "rb")
            paths = [odir / name for name in meta.data_files]
            sizes = [path.stat().st_size for path in paths]
            for path in paths:
                self._pins[path] = self._pins.get(path, 0) + 1
            reader = ConcatReader(paths, sizes, lambda: self._release(paths))
            return meta, cast(BinaryIO, reader)

    def read(self, bucket: str, key: str) -> bytes:
        """The object's whole content (for tests and small objects: it is held in memory)."""
        _, fh = self.open(bucket, key)
        with fh:
            return fh.read()

    def files(self, bucket: str, key: str) -> list[Path]:
        """The object's data files, in the order of its bytes (one for a single-PUT object)."""
        with self.lock:
            meta = self.head(bucket, key)
            odir = self.layout.object_dir(bucket, key)
            return [odir / name for name in meta.file_names()]

    def path(self, bucket: str, key: str) -> Path:
        """Where the data of a single-file object is stored; ``ValueError`` for a multipart object."""
        with self.lock:
            meta = self.head(bucket, key)
            if meta.data_files:
                raise ValueError(
                    f"{bucket}/{key} is a completed multipart object stored as {len(meta.data_files)} "
                    "files: use object_bytes() / read_object() or object_files() instead of object_path()"
                )
            return self.layout.object_dir(bucket, key) / meta.data_file

    def page(
        self, bucket: str, prefix: str, delimiter: str, marker: str, limit: int
    ) -> tuple[list[ObjectMeta], list[str], bool]:
        """(objects, common prefixes, has_more); every returned name sorts after ``marker``.

        Keys and common prefixes both count towards ``limit``.
        """
        with self.lock:
            state = self.buckets.get(bucket)
            keys, prefixes, has_more = page_keys(state.keys, prefix, delimiter, marker, limit)
            return [dataclasses.replace(state.objects[k]) for k in keys], prefixes, has_more

    # ---- data files still held by readers -------------------------------------------------------

    def unlink_data(self, path: Path) -> None:
        """Remove a data file, or leave that to the last open reader that still needs it."""
        if self._pins.get(path):
            self._doomed.add(path)
        else:
            path.unlink(missing_ok=True)

    def _release(self, paths: list[Path]) -> None:
        """A reader of ``paths`` closed: remove those no object refers to any more."""
        with self.lock:
            for path in paths:
                left = self._pins.get(path, 0) - 1
                if left > 0:
                    self._pins[path] = left
                    continue
                self._pins.pop(path, None)
                if path in self._doomed:
                    self._doomed.discard(path)
                    path.unlink(missing_ok=True)
