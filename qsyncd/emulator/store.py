"""On-disk storage of the emulator: buckets, objects and unfinished multipart uploads.

Layout under ``root``::

    buckets/<bucket>/bucket.json                      {"name", "created"}
    buckets/<bucket>/objects/<h[:2]>/<h>.json         object metadata (h = sha256 of the UTF-8 key;
    buckets/<bucket>/objects/<h[:2]>/<h>.<id>.data    the key itself lives inside the JSON)
    buckets/<bucket>/objects/<h[:2]>/<h>.<id>.<i>.data  part i of a completed multipart object
    buckets/<bucket>/uploads/<upload_id>/upload.json  the upload (key, content type, metadata...)
    buckets/<bucket>/uploads/<upload_id>/part-<n>.json + part-<n>.<id>.data

Every file is written to ``.tmp-*`` in its final directory, fsynced, renamed, and the directory
fsynced. For objects and parts the metadata JSON is the commit point: it names its data file,
so a crash at any moment leaves either the old or the new version; data files no JSON refers to
(and ``.tmp-*`` leftovers) are removed when a store is opened. Keys never become file names, so
no key can escape the root.

An in-memory sorted key index per bucket (loaded at open) serves listings. Bodies are streamed
in ~1 MiB chunks and never held in memory.

Complete copies no data: each chosen part's data file is hard-linked into the object directory
and the object's JSON lists those names in order (``data_files``; ``data_file`` is then ``""``).
A GET reads the concatenation (:class:`ConcatReader`). Only when linking fails (EPERM, EXDEV,
EMLINK...) are the parts copied into one data file as a single PUT would store it. Links made
before the JSON commit are unreferenced data files, so a crash there leaves no object and the
upload intact. A composite object's files are opened one at a time while it is read; a file of
an object that is replaced or deleted while a reader still needs it is unlinked when that
reader closes (or, after a crash, when the store is next opened).

A completed upload's ``upload.json`` is removed right after the object commits; a crash between
the two leaves the upload listed (abort cleans it). That is the only non-atomic step.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

log = logging.getLogger("qsyncd.emulator")

CHUNK = 1024 * 1024
MIN_PART_SIZE = 4 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
MAX_KEY_SORT = "\U0010ffff"


class StoreError(Exception):
    """A request the store refuses; ``status`` and ``code`` go into the error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class ObjectMeta:
    """Everything HEAD and listings say about one object."""

    key: str
    size: int
    etag: str  # unquoted
    mime_type: str
    created: float
    modified: float
    storage_class: str = "STANDARD"
    metadata: dict[str, str] = field(default_factory=dict)  # lower-case x-qs-meta-* names -> values
    headers: dict[str, str] = field(default_factory=dict)  # cache-control, content-encoding, ...
    data_file: str = ""  # a single-file object (PUT, copy)
    data_files: list[str] = field(default_factory=list)  # a completed multipart object: parts in order

    def file_names(self) -> list[str]:
        """The names of the object's data files, in the order of its bytes."""
        return list(self.data_files) if self.data_files else [self.data_file]


@dataclass
class PartMeta:
    """One stored part of a multipart upload."""

    part_number: int
    size: int
    etag: str
    created: float
    data_file: str = ""


@dataclass
class UploadState:
    """One unfinished multipart upload."""

    key: str
    upload_id: str
    created: float
    mime_type: str
    storage_class: str = "STANDARD"
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    parts: dict[int, PartMeta] = field(default_factory=dict)


@dataclass
class BucketState:
    """One bucket and its in-memory indexes."""

    name: str
    created: float
    keys: list[str] = field(default_factory=list)  # sorted
    objects: dict[str, ObjectMeta] = field(default_factory=dict)
    uploads: dict[str, UploadState] = field(default_factory=dict)


def key_hash(key: str) -> str:
    """The file-name-safe name of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BodyWriter:
    """Streams a body into a temp file in its final directory, hashing it with MD5 on the way."""

    def __init__(self, directory: Path, fsync: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / f".tmp-{uuid.uuid4().hex}"
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed in finish/discard
        self._md5 = hashlib.md5()
        self._fsync = fsync
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append a chunk."""
        assert self._file is not None
        self._file.write(data)
        self._md5.update(data)
        self.size += len(data)

    def append_file(self, src: BinaryIO, *, hash_it: bool) -> None:
        """Append the whole of ``src``. Without ``hash_it`` the kernel copies it (copy_file_range) and
        the MD5 of this writer is no longer meaningful: for Complete with an ETag header, which
        QingStor stores as given instead of hashing the merged object."""
        assert self._file is not None
        if not hash_it:
            self._file.flush()
            out_fd, in_fd = self._file.fileno(), src.fileno()
            try:
                while n := os.copy_file_range(in_fd, out_fd, 1 << 30):
                    self.size += n
                return
            except OSError:
                pass  # e.g. EXDEV on old kernels: fall back to copying through Python
        while chunk := src.read(CHUNK):
            self.write(chunk)

    def finish(self) -> str:
        """Flush and fsync; returns the MD5 hex of what was written."""
        assert self._file is not None
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        return self._md5.hexdigest()

    def md5_digest(self) -> bytes:
        """The binary MD5 so far."""
        return self._md5.digest()

    def discard(self) -> None:
        """Throw the temp file away (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class ConcatReader(io.RawIOBase):
    """A read-only, seekable file over the concatenation of several data files.

    Only the file under the read position is open; ``on_close`` runs once when the reader closes
    (the store uses it to release the files). ``read(n)`` may return fewer than ``n`` bytes at a
    file boundary, as a raw file may; ``read()`` returns everything up to the end.
    """

    def __init__(self, paths: list[Path], sizes: list[int], on_close: Callable[[], None] | None = None) -> None:
        super().__init__()
        if len(paths) != len(sizes):
            raise ValueError("paths and sizes differ in length")
        self._paths = list(paths)
        self._sizes = list(sizes)
        self._starts: list[int] = []
        total = 0
        for size in self._sizes:
            self._starts.append(total)
            total += size
        self.size = total
        self._pos = 0
        self._index = -1
        self._fd = -1
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        self._check_open()
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or not len(view):
            return 0
        index = bisect.bisect_right(self._starts, self._pos) - 1
        offset = self._pos - self._starts[index]
        want = min(len(view), self._sizes[index] - offset)
        n = os.preadv(self._open(index), [view[:want]], offset)
        if n <= 0:
            raise OSError(f"data file {self._paths[index].name} is shorter than recorded")
        self._pos += n
        return n

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if not self.closed:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            callback, self._on_close = self._on_close, None
            if callback is not None:
                callback()
        super().close()

    def _open(self, index: int) -> int:
        if index != self._index:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._fd = os.open(self._paths[index], os.O_RDONLY | os.O_CLOEXEC)
            self._index = index
        return self._fd

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


class Store:
    """Thread-safe, crash-safe storage rooted at a directory."""

    def __init__(self, root: Path, now: Callable[[], float], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.now = now
        self.fsync = fsync
        self._lock = threading.RLock()
        self._buckets: dict[str, BucketState] = {}
        self._pins: dict[Path, int] = {}  # data file -> number of open readers that need it
        self._doomed: set[Path] = set()  # pinned data files of replaced/deleted objects
        (self.root / "buckets").mkdir(parents=True, exist_ok=True)
        self._load()

    # ---- paths and atomic writes -------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / "buckets" / bucket

    def _object_dir(self, bucket: str, key: str) -> Path:
        return self._bucket_dir(bucket) / "objects" / key_hash(key)[:2]

    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        return self._bucket_dir(bucket) / "uploads" / upload_id

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._stage_json(path.parent, data), path)
        if self.fsync:
            _fsync_dir(path.parent)

    def _stage_json(self, directory: Path, data: dict[str, Any]) -> Path:
        """Write ``data`` to a durable temp file in ``directory`` (renaming it into place commits it).

        The hot commits (PutObject, UploadMultipart) stage and fsync outside the store lock and
        fsync the directory after releasing it, so parallel requests do not queue behind each
        other's fsyncs: the lock covers only the rename and the in-memory index."""
        tmp = directory / f".tmp-{uuid.uuid4().hex}"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _install(self, writer_path: Path, final: Path) -> None:
        os.replace(writer_path, final)

    # ---- loading --------------------------------------------------------------------------------

    def _load(self) -> None:
        for bdir in sorted((self.root / "buckets").iterdir()):
            if not bdir.is_dir():
                continue
            if bdir.name.startswith(".trash-"):
                shutil.rmtree(bdir, ignore_errors=True)
                continue
            try:
                info = json.loads((bdir / "bucket.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            state = BucketState(name=info["name"], created=float(info["created"]))
            self._load_objects(bdir / "objects", state)
            self._load_uploads(bdir / "uploads", state)
            state.keys = sorted(state.objects)
            self._buckets[state.name] = state

    def _load_objects(self, odir: Path, state: BucketState) -> None:
        if not odir.is_dir():
            return
        for sub in odir.iterdir():
            if not sub.is_dir():
                continue
            referenced: set[str] = set()
            names = os.listdir(sub)
            for name in names:
                if name.endswith(".json") and not name.startswith(".tmp-"):
                    try:
                        meta = ObjectMeta(**json.loads((sub / name).read_text(encoding="utf-8")))
                    except (OSError, ValueError, TypeError):
                        continue
                    state.objects[meta.key] = meta
                    referenced.update(meta.file_names())
            for name in names:
                if name.startswith(".tmp-") or (name.endswith(".data") and name not in referenced):
                    (sub / name).unlink(missing_ok=True)

    def _load_uploads(self, udir: Path, state: BucketState) -> None:
        if not udir.is_dir():
            return
        for sub in udir.iterdir():
            try:
                info = json.loads((sub / "upload.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                shutil.rmtree(sub, ignore_errors=True)
                continue
            info.pop("parts", None)
            upload = UploadState(**info)
            referenced: set[str] = set()
            names = os.listdir(sub)
            for name in names:
                if name.startswith("part-") and name.endswith(".json"):
                    try:
                        part = PartMeta(**json.loads((sub / name).read_text(encoding="utf-8")))
                    except (OSError, ValueError, TypeError):
                        continue
                    upload.parts[part.part_number] = part
                    referenced.add(part.data_file)
            for name in names:
                if name.startswith(".tmp-") or (name.endswith(".data") and name not in referenced):
                    (sub / name).unlink(missing_ok=True)
            state.uploads[upload.upload_id] = upload

    # ---- buckets --------------------------------------------------------------------------------

    def create_bucket(self, name: str) -> BucketState:
        """Create a bucket; 409 ``bucket_already_exists`` if it is there."""
        with self._lock:
            if name in self._buckets:
                raise StoreError(409, "bucket_already_exists", f"bucket {name} already exists")
            state = BucketState(name=name, created=self.now())
            bdir = self._bucket_dir(name)
            (bdir / "objects").mkdir(parents=True, exist_ok=True)
            (bdir / "uploads").mkdir(parents=True, exist_ok=True)
            self._write_json(bdir / "bucket.json", {"name": name, "created": state.created})
            self._buckets[name] = state
            return state

    def ensure_bucket(self, name: str) -> None:
        """Create a bucket unless it exists."""
        with self._lock:
            if name not in self._buckets:
                self.create_bucket(name)

    def bucket(self, name: str) -> BucketState:
        """The bucket's state; 404 ``bucket_not_exists`` if missing."""
        with self._lock:
            state = self._buckets.get(name)
            if state is None:
                raise StoreError(404, "bucket_not_exists", f"bucket {name} does not exist")
            return state

    def buckets(self) -> list[BucketState]:
        """All buckets sorted by name."""
        with self._lock:
            return [self._buckets[n] for n in sorted(self._buckets)]

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket (its unfinished uploads go with it); 409 if it holds objects."""
        with self._lock:
            state = self.bucket(name)
            if state.objects:
                raise StoreError(409, "bucket_not_empty", f"bucket {name} is not empty")
            trash = self.root / "buckets" / f".trash-{uuid.uuid4().hex}"
            os.replace(self._bucket_dir(name), trash)
            del self._buckets[name]
        shutil.rmtree(trash, ignore_errors=True)

    def bucket_stats(self, name: str) -> tuple[int, int, dict[str, tuple[int, int]]]:
        """(object count, total size, {storage_class: (count, size)})."""
        with self._lock:
            state = self.bucket(name)
            classes: dict[str, tuple[int, int]] = {}
            total = 0
            for meta in state.objects.values():
                c, s = classes.get(meta.storage_class, (0, 0))
                classes[meta.storage_class] = (c + 1, s + meta.size)
                total += meta.size
            return len(state.objects), total, classes

    # ---- objects --------------------------------------------------------------------------------

    def object_writer(self, bucket: str, key: str) -> BodyWriter:
        """A writer whose temp file lives in the object's final directory."""
        self.bucket(bucket)
        return BodyWriter(self._object_dir(bucket, key), self.fsync)

    def commit_object(self, bucket: str, writer_path: Path, meta: ObjectMeta) -> ObjectMeta:
        """Make the written temp file the object's data, atomically replacing any old version."""
        self.bucket(bucket)
        odir = self._object_dir(bucket, meta.key)  # the writer's temp file lives here already
        meta.data_file = f"{key_hash(meta.key)}.{uuid.uuid4().hex}.data"
        meta.data_files = []
        staged = self._stage_json(odir, dataclasses.asdict(meta))
        try:
            with self._lock:
                self._install(writer_path, odir / meta.data_file)
                result = self._commit_meta(bucket, meta, staged=staged)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync_dir(odir)  # before the caller answers: the rename is durable once acknowledged
        return result

    def _commit_meta(self, bucket: str, meta: ObjectMeta, *, staged: Path | None = None) -> ObjectMeta:
        """Write the JSON naming ``meta``'s data files (the commit point), then retire the old version.

        The caller holds the lock and has put the data files in the object directory. With
        ``staged`` (a durable temp file of the JSON) only the rename happens here and the caller
        fsyncs the directory after releasing the lock."""
        state = self.bucket(bucket)
        odir = self._object_dir(bucket, meta.key)
        if staged is not None:
            os.replace(staged, odir / f"{key_hash(meta.key)}.json")
        else:
            self._write_json(odir / f"{key_hash(meta.key)}.json", dataclasses.asdict(meta))
        old = state.objects.get(meta.key)
        state.objects[meta.key] = meta
        if old is None:
            bisect.insort(state.keys, meta.key)
        else:
            for name in old.file_names():
                self._unlink_data(odir / name)
        return dataclasses.replace(meta, data_files=list(meta.data_files))

    def _unlink_data(self, path: Path) -> None:
        """Remove a data file, or leave that to the last open reader that still needs it."""
        if self._pins.get(path):
            self._doomed.add(path)
        else:
            path.unlink(missing_ok=True)

    def _release(self, paths: list[Path]) -> None:
        """A reader of ``paths`` closed: remove those no object refers to any more."""
        with self._lock:
            for path in paths:
                left = self._pins.get(path, 0) - 1
                if left > 0:
                    self._pins[path] = left
                    continue
                self._pins.pop(path, None)
                if path in self._doomed:
                    self._doomed.discard(path)
                    path.unlink(missing_ok=True)

    def head_object(self, bucket: str, key: str) -> ObjectMeta:
        """The object's metadata; 404 ``object_not_exists`` if missing."""
        with self._lock:
            meta = self.bucket(bucket).objects.get(key)
            if meta is None:
                raise StoreError(404, "object_not_exists", "the object does not exist")
            return dataclasses.replace(meta, data_files=list(meta.data_files))

    def open_object(self, bucket: str, key: str) -> tuple[ObjectMeta, BinaryIO]:
        """Metadata plus an open, seekable file of the data (stays readable if the object is replaced).

        A multipart object gives a :class:`ConcatReader` over its parts; close it when done."""
        with self._lock:
            meta = self.head_object(bucket, key)
            odir = self._object_dir(bucket, key)
            if not meta.data_files:
                return meta, open(odir / meta.data_file, "rb")
            paths = [odir / name for name in meta.data_files]
            sizes = [path.stat().st_size for path in paths]
            for path in paths:
                self._pins[path] = self._pins.get(path, 0) + 1
            reader = ConcatReader(paths, sizes, lambda: self._release(paths))
            return meta, cast(BinaryIO, reader)

    def object_files(self, bucket: str, key: str) -> list[Path]:
        """The object's data files, in the order of its bytes (one for a single-PUT object)."""
        with self._lock:
            meta = self.head_object(bucket, key)
            odir = self._object_dir(bucket, key)
            return [odir / name for name in meta.file_names()]

    def read_object(self, bucket: str, key: str) -> bytes:
        """The object's whole content (for tests and small objects: it is held in memory)."""
        _, fh = self.open_object(bucket, key)
        with fh:
            return fh.read()

    def object_path(self, bucket: str, key: str) -> Path:
        """Where the data of a single-file object is stored; ``ValueError`` for a multipart object."""
        with self._lock:
            meta = self.head_object(bucket, key)
            if meta.data_files:
                raise ValueError(
                    f"{bucket}/{key} is a completed multipart object stored as {len(meta.data_files)} "
                    "files: use object_bytes() / read_object() or object_files() instead of object_path()"
                )
            return self._object_dir(bucket, key) / meta.data_file

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete an object; returns whether it existed."""
        with self._lock:
            state = self.bucket(bucket)
            meta = state.objects.pop(key, None)
            if meta is None:
                return False
            idx = bisect.bisect_left(state.keys, key)
            if idx < len(state.keys) and state.keys[idx] == key:
                del state.keys[idx]
            odir = self._object_dir(bucket, key)
            (odir / f"{key_hash(key)}.json").unlink(missing_ok=True)
            if self.fsync:
                _fsync_dir(odir)
            for name in meta.file_names():
                self._unlink_data(odir / name)
            return True

    def list_objects(
        self, bucket: str, prefix: str, delimiter: str, marker: str, limit: int
    ) -> tuple[list[ObjectMeta], list[str], bool]:
        """(objects, common prefixes, has_more); every returned name sorts after ``marker``.

        Keys and common prefixes both count towards ``limit``.
        """
        with self._lock:
            state = self.bucket(bucket)
            keys = state.keys
            start = max(bisect.bisect_left(keys, prefix), bisect.bisect_right(keys, marker) if marker else 0)
            objects: list[ObjectMeta] = []
            prefixes: list[str] = []
            i = start
            n = len(keys)
            while i < n:
                key = keys[i]
                if not key.startswith(prefix):
                    break
                if delimiter:
                    idx = key.find(delimiter, len(prefix))
                    if idx >= 0:
                        cp = key[: idx + len(delimiter)]
                        if cp > marker or not marker:
                            if len(objects) + len(prefixes) >= limit:
                                return objects, prefixes, True
                            prefixes.append(cp)
                        i = bisect.bisect_left(keys, cp + MAX_KEY_SORT, i)
                        continue
                if len(objects) + len(prefixes) >= limit:
                    return objects, prefixes, True
                objects.append(dataclasses.replace(state.objects[key]))
                i += 1
            return objects, prefixes, False

    def copy_object(self, src_bucket: str, src_key: str, dst_bucket: str, meta: ObjectMeta) -> ObjectMeta:
        """Copy an object's data (streamed) to ``meta.key`` in ``dst_bucket``."""
        _src_meta, fh = self.open_object(src_bucket, src_key)
        writer = self.object_writer(dst_bucket, meta.key)
        try:
            with fh:
                while chunk := fh.read(CHUNK):
                    writer.write(chunk)
            meta.etag = writer.finish()
            meta.size = writer.size
            return self.commit_object(dst_bucket, writer.path, meta)
        except BaseException:
            writer.discard()
            raise

    # ---- multipart ------------------------------------------------------------------------------

    def initiate(self, bucket: str, upload: UploadState) -> UploadState:
        """Persist a new upload."""
        with self._lock:
            state = self.bucket(bucket)
            udir = self._upload_dir(bucket, upload.upload_id)
            udir.mkdir(parents=True, exist_ok=False)
            data = dataclasses.asdict(upload)
            data.pop("parts")
            self._write_json(udir / "upload.json", data)
            state.uploads[upload.upload_id] = upload
            return upload

    def upload(self, bucket: str, upload_id: str, key: str | None = None) -> UploadState:
        """The upload; 404 ``upload_not_exists`` if unknown (or for another key)."""
        with self._lock:
            upload = self.bucket(bucket).uploads.get(upload_id)
            if upload is None or (key is not None and upload.key != key):
                raise StoreError(404, "upload_not_exists", "the multipart upload does not exist")
            return upload

    def part_writer(self, bucket: str, upload_id: str, key: str) -> BodyWriter:
        """A writer for a part of an existing upload."""
        self.upload(bucket, upload_id, key)
        return BodyWriter(self._upload_dir(bucket, upload_id), self.fsync)

    def commit_part(self, bucket: str, upload_id: str, key: str, writer_path: Path, part: PartMeta) -> PartMeta:
        """Store a part (replacing one with the same number)."""
        self.upload(bucket, upload_id, key)
        udir = self._upload_dir(bucket, upload_id)
        part.data_file = f"part-{part.part_number}.{uuid.uuid4().hex}.data"
        try:
            staged = self._stage_json(udir, dataclasses.asdict(part))
        except FileNotFoundError:  # aborted meanwhile: its directory is gone
            self.upload(bucket, upload_id, key)
            raise
        try:
            with self._lock:
                upload = self.upload(bucket, upload_id, key)
                if part.part_number not in upload.parts and len(upload.parts) >= MAX_PARTS:
                    raise StoreError(400, "max_parts_exceeded", f"an upload holds at most {MAX_PARTS} parts")
                self._install(writer_path, udir / part.data_file)
                os.replace(staged, udir / f"part-{part.part_number}.json")
                old = upload.parts.get(part.part_number)
                upload.parts[part.part_number] = part
                if old is not None:
                    (udir / old.data_file).unlink(missing_ok=True)
                result = dataclasses.replace(part)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync_dir(udir)
        return result

    def list_parts(self, bucket: str, upload_id: str, key: str) -> list[PartMeta]:
        """All parts of an upload sorted by number."""
        with self._lock:
            upload = self.upload(bucket, upload_id, key)
            return [dataclasses.replace(upload.parts[n]) for n in sorted(upload.parts)]

    def complete(
        self,
        bucket: str,
        upload_id: str,
        key: str,
        listed: list[dict[str, Any]],
        etag: str | None,
    ) -> ObjectMeta:
        """Make the listed parts the object (rules: see :mod:`qsyncd.emulator.operations`).

        The parts' data files are hard-linked into the object directory (no data is copied); the
        MD5 is computed by reading them only when no ``etag`` is given. The parts are copied into
        one file only if linking fails."""
        with self._lock:
            upload = self.upload(bucket, upload_id, key)
            chosen: list[PartMeta] = []
            previous = -1
            for entry in listed:
                number = entry["part_number"]
                if number <= previous:
                    raise StoreError(400, "invalid_request", "object_parts must be in ascending part_number order")
                previous = number
                part = upload.parts.get(number)
                if part is None:
                    raise StoreError(400, "invalid_request", f"part {number} was never uploaded")
                given_etag = entry.get("etag")
                if given_etag and given_etag.strip('"').lower() != part.etag:
                    raise StoreError(400, "invalid_request", f"etag of part {number} does not match")
                given_size = entry.get("size")
                if given_size is not None and int(given_size) != part.size:
                    raise StoreError(400, "invalid_request", f"size of part {number} does not match")
                chosen.append(part)
            if not chosen:
                raise StoreError(400, "invalid_request", "object_parts is empty")
            for part in chosen[:-1]:
                if part.size < MIN_PART_SIZE:
                    raise StoreError(
                        400, "entity_too_small", f"part {part.part_number} is smaller than 4 MiB and not the last"
                    )
            udir = self._upload_dir(bucket, upload_id)
            attrs = dataclasses.replace(upload, parts={})
            linked = self._link_parts(bucket, upload_id, key, chosen)
            if linked is not None:
                files: list[BinaryIO] = []
            else:
                files = [open(udir / p.data_file, "rb") for p in chosen]  # noqa: SIM115
        if linked is not None:
            return self._complete_linked(bucket, upload_id, attrs, chosen, linked, etag)
        writer = self.object_writer(bucket, key)
        try:
            for fh in files:
                with fh:
                    writer.append_file(fh, hash_it=not etag)
            md5 = writer.finish()
            meta = self._completed_meta(attrs, writer.size, etag if etag else md5)
            with self._lock:
                self.upload(bucket, upload_id, key)  # still there (not aborted meanwhile)?
                result = self.commit_object(bucket, writer.path, meta)
                self._drop_upload(bucket, upload_id)
            return result
        except BaseException:
            for fh in files:
                fh.close()
            writer.discard()
            raise

    def _completed_meta(
        self, attrs: UploadState, size: int, etag: str, data_files: list[str] | None = None
    ) -> ObjectMeta:
        """The object a completed upload becomes: the upload's attributes, created now; one data file
        (named at commit) or, with ``data_files``, the linked parts in order."""
        now = self.now()
        return ObjectMeta(
            key=attrs.key,
            size=size,
            etag=etag,
            mime_type=attrs.mime_type,
            created=now,
            modified=now,
            storage_class=attrs.storage_class,
            metadata=dict(attrs.metadata),
            headers=dict(attrs.headers),
            data_files=list(data_files or []),
        )

    def _link_parts(self, bucket: str, upload_id: str, key: str, chosen: list[PartMeta]) -> list[str] | None:
        """Hard-link the chosen parts into the object directory; their names, or None if linking failed.

        The caller holds the lock (so no part file can be replaced or aborted meanwhile)."""
        udir = self._upload_dir(bucket, upload_id)
        odir = self._object_dir(bucket, key)
        odir.mkdir(parents=True, exist_ok=True)
        stem = f"{key_hash(key)}.{uuid.uuid4().hex}"
        names: list[str] = []
        try:
            for i, part in enumerate(chosen):
                name = f"{stem}.{i}.data"
                os.link(udir / part.data_file, odir / name)
                names.append(name)
        except OSError as exc:
            for name in names:
                (odir / name).unlink(missing_ok=True)
            log.warning("complete_copying_parts bucket=%s upload_id=%s reason=%r", bucket, upload_id, exc.strerror)
            return None
        return names

    def _complete_linked(
        self,
        bucket: str,
        upload_id: str,
        attrs: UploadState,
        chosen: list[PartMeta],
        names: list[str],
        etag: str | None,
    ) -> ObjectMeta:
        """Commit an object made of the hard-linked part files ``names`` (removed again on failure)."""
        odir = self._object_dir(bucket, attrs.key)
        committed = False
        try:
            if etag:
                object_etag = etag
            else:
                md5 = hashlib.md5()
                buf = bytearray(CHUNK)
                view = memoryview(buf)
                for name in names:
                    with open(odir / name, "rb", buffering=0) as fh:
                        while n := fh.readinto(buf):
                            md5.update(view[:n])
                object_etag = md5.hexdigest()
            meta = self._completed_meta(attrs, sum(p.size for p in chosen), object_etag, names)
            with self._lock:
                self.upload(bucket, upload_id, attrs.key)  # still there (not aborted meanwhile)?
                result = self._commit_meta(bucket, meta)
                committed = True
                self._drop_upload(bucket, upload_id)
            return result
        except BaseException:
            # Keep the links if the JSON naming them got in before the failure (e.g. its dir fsync failed).
            if not committed and not self._json_names(odir, attrs.key, names[0]):
                for name in names:
                    (odir / name).unlink(missing_ok=True)
            raise

    def _json_names(self, odir: Path, key: str, name: str) -> bool:
        """Whether the object JSON on disk lists data file ``name``."""
        try:
            data = json.loads((odir / f"{key_hash(key)}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and name in (data.get("data_files") or [])

    def _drop_upload(self, bucket: str, upload_id: str) -> None:
        state = self.bucket(bucket)
        if state.uploads.pop(upload_id, None) is None:
            return
        udir = self._upload_dir(bucket, upload_id)
        (udir / "upload.json").unlink(missing_ok=True)
        if self.fsync:
            _fsync_dir(udir)
        shutil.rmtree(udir, ignore_errors=True)

    def abort(self, bucket: str, upload_id: str) -> None:
        """Discard an upload; a no-op if it is unknown."""
        with self._lock:
            self.bucket(bucket)
            self._drop_upload(bucket, upload_id)

    def list_uploads(
        self, bucket: str, prefix: str, delimiter: str, key_marker: str, upload_id_marker: str, limit: int
    ) -> tuple[list[UploadState], list[str], bool]:
        """(uploads, common prefixes, has_more), sorted by (key, upload_id), after the markers."""
        with self._lock:
            state = self.bucket(bucket)
            ordered = sorted(state.uploads.values(), key=lambda u: (u.key, u.upload_id))
        uploads: list[UploadState] = []
        prefixes: list[str] = []
        for up in ordered:
            if not up.key.startswith(prefix):
                continue
            if key_marker or upload_id_marker:
                if upload_id_marker:
                    if (up.key, up.upload_id) <= (key_marker, upload_id_marker):
                        continue
                elif up.key <= key_marker:
                    continue
            if delimiter:
                idx = up.key.find(delimiter, len(prefix))
                if idx >= 0:
                    cp = up.key[: idx + len(delimiter)]
                    if cp in prefixes or (key_marker and cp <= key_marker):
                        continue
                    if len(uploads) + len(prefixes) >= limit:
                        return uploads, prefixes, True
                    prefixes.append(cp)
                    continue
            if len(uploads) + len(prefixes) >= limit:
                return uploads, prefixes, True
            uploads.append(dataclasses.replace(up, parts={}))
        return uploads, prefixes, False

    def iter_all_keys(self, bucket: str) -> Iterator[str]:
        """Every key of a bucket in order (a snapshot)."""
        with self._lock:
            keys = list(self.bucket(bucket).keys)
        yield from keys
