"""An in-memory ``Remote`` that keeps the whole contract of ``qsyncd.remote.base``, for unit tests of stages.

``MemStore`` is the server side (buckets, objects, multipart uploads, credentials); any number of
``MemRemote`` clients share one, as processes share a bucket. It checks what a real store checks —
Content-MD5 and length of every body, credentials, that the bucket and the upload exist, the order
and sizes of parts at Complete — and raises the same ``qsyncd.errors`` types with the same codes as
the QingStor remote. ``tests/remote/test_contract.py`` runs the one contract suite against it and
the emulator, so a stage tested against it is tested against the contract.

Extras for tests: ``store.calls`` (every request as ``(method, key)``), ``store.fail(method, error)``
to make the next call(s) of a method raise, ``store.objects(bucket)`` to see what is stored,
``store.parts(key)`` how many parts an object was assembled from, ``store.versioning[bucket]``
("off", "enabled", "suspended") for ``versioning()``, and ``store.remove(key)`` to delete an object
behind the clients' back.

    remote = MemRemote()                      # a fresh store with one bucket, the right key
    remote.store.fail("put", TransientError("boom", code="connection_reset"))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from qsyncd.errors import (
    BadRequest,
    BodyMismatch,
    BucketMissing,
    CredentialsRejected,
    NotFound,
    RemoteError,
)
from qsyncd.remote.base import LIST_PAGE, Body, ObjectInfo, PartInfo, UploadInfo, check_page_size
from qsyncd.remote.copies import MAX_COPY_SIZE, check_copy, check_limit, copy_by_parts, source_changed

BUCKET = "qsyncd-test"
ACCESS_KEY_ID = "MEMREMOTEKEY"
SECRET_ACCESS_KEY = "memremote-secret"
MIN_PART_SIZE = 4 * 1024 * 1024  # every part but the last, as QingStor (and the emulator) require
MAX_PART_NUMBER = 10000
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_META_NAME = re.compile(r"^[A-Za-z0-9._-]{1,512}$")


@dataclass
class _Object:
    data: bytes
    etag: str
    content_type: str
    metadata: dict[str, str]
    parts: int = 1  # 1 for a PUT or a single copy, the part count for a completed upload


@dataclass
class _Upload:
    key: str
    upload_id: str
    created: str
    content_type: str
    metadata: dict[str, str]
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)  # number -> (data, md5 hex)


class MemStore:
    """Buckets of objects and multipart uploads in memory, and the credentials that may use them."""

    def __init__(
        self,
        buckets: Sequence[str] = (BUCKET,),
        credentials: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credentials = dict(credentials or {ACCESS_KEY_ID: SECRET_ACCESS_KEY})
        self.clock = clock
        self.lock = threading.RLock()
        self.calls: list[tuple[str, str]] = []
        self._objects: dict[str, dict[str, _Object]] = {b: {} for b in buckets}
        self._uploads: dict[str, dict[str, _Upload]] = {b: {} for b in buckets}
        self._faults: list[tuple[str, RemoteError]] = []
        self.versioning: dict[str, str] = dict.fromkeys(buckets, "off")

    def fail(self, method: str, error: RemoteError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` (e.g. ``"put"``) raise ``error`` (before any effect)."""
        with self.lock:
            self._faults.extend([(method, error)] * times)

    def remove(self, key: str, bucket: str = BUCKET) -> None:
        """Delete an object behind every client's back (as another tool or a user would)."""
        with self.lock:
            del self._objects[bucket][key]

    def objects(self, bucket: str = BUCKET) -> dict[str, bytes]:
        """What the bucket holds: key -> bytes."""
        with self.lock:
            return {k: o.data for k, o in sorted(self._objects[bucket].items())}

    def parts(self, key: str, bucket: str = BUCKET) -> int:
        """How many parts the object ``key`` was assembled from (1 for a PUT or a single copy)."""
        with self.lock:
            return self._objects[bucket][key].parts


class MemRemote:
    """One bucket of a ``MemStore`` seen with one access key; safe to call from many threads."""

    needs_md5_at_initiate = False  # like QingStor: Complete's etag becomes the ETag

    def __init__(
        self,
        store: MemStore | None = None,
        *,
        bucket: str = BUCKET,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
        max_copy_size: int = MAX_COPY_SIZE,
    ) -> None:
        self.store = store if store is not None else MemStore()
        self._max_copy_size = check_limit(max_copy_size)
        self.bucket = bucket
        self._access_key_id = access_key_id
        self._secret = secret_access_key

    def __repr__(self) -> str:
        return f"MemRemote(bucket={self.bucket!r}, access_key_id={self._access_key_id!r})"

    def close(self) -> None:
        """Nothing to release."""

    # ---- every request ------------------------------------------------------------------------

    def _enter(self, method: str, operation: str, key: str) -> tuple[dict[str, _Object], dict[str, _Upload]]:
        """Log the call, raise an injected fault, check credentials and bucket; the bucket's tables."""
        store = self.store
        store.calls.append((method, key))
        for i, (name, error) in enumerate(store._faults):
            if name == method:
                del store._faults[i]
                raise error
        if store.credentials.get(self._access_key_id) != self._secret:
            code = "signature_not_matched" if self._access_key_id in store.credentials else "invalid_access_key_id"
            raise CredentialsRejected(
                f"{operation} {key!r} failed: the credentials were rejected ({code}): check access_key_id and "
                "secret_access_key",
                status=401,
                code=code,
                operation=operation,
                key=key,
            )
        if self.bucket not in store._objects:
            raise BucketMissing(
                f"{operation} {key!r} failed: bucket {self.bucket!r} does not exist: create it or fix bucket",
                status=404,
                code="bucket_not_exists",
                operation=operation,
                key=key,
            )
        return store._objects[self.bucket], store._uploads[self.bucket]

    def _upload(self, uploads: dict[str, _Upload], operation: str, key: str, upload_id: str) -> _Upload:
        upload = uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise NotFound(
                f"{operation} {key!r} failed: the multipart upload does not exist (completed, aborted or expired): "
                "start a new upload",
                status=404,
                code="upload_not_exists",
                operation=operation,
                key=key,
            )
        return upload

    # ---- Remote -------------------------------------------------------------------------------

    def probe(self) -> None:
        """Check that the bucket exists and the credentials work."""
        with self.store.lock:
            self._enter("probe", "HeadBucket", "")

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info, or ``None``."""
        _check_key(key)
        with self.store.lock:
            try:
                objects, _ = self._enter("head", "HeadObject", key)
            except BucketMissing:  # a HEAD 404 has no body: no store can tell the bucket is missing
                return None
            obj = objects.get(key)
            if obj is None:
                return None
            return ObjectInfo(key, len(obj.data), obj.etag, obj.content_type, dict(obj.metadata))

    def put(
        self,
        key: str,
        body: Body,
        size: int,
        md5_b64: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> str:
        """Store the body if it matches its MD5 and size; its ETag (the hex MD5)."""
        _check_key(key)
        want = _md5_hex(md5_b64)
        meta = _metadata(metadata)
        with self.store.lock:
            objects, _ = self._enter("put", "PutObject", key)
        data = _read_checked(body, size, want, "PutObject", key)
        with self.store.lock:
            objects[key] = _Object(data, want, content_type or "application/octet-stream", meta)
        return want

    def initiate(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
        md5_hex: str | None = None,
    ) -> str:
        """Start a multipart upload; its id."""
        _check_key(key)
        meta = _metadata(metadata)
        with self.store.lock:
            _, uploads = self._enter("initiate", "InitiateMultipartUpload", key)
            upload_id = uuid.uuid4().hex
            created = datetime.fromtimestamp(self.store.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            uploads[upload_id] = _Upload(key, upload_id, created, content_type or "application/octet-stream", meta)
            return upload_id

    def upload_part(self, key: str, upload_id: str, part_number: int, body: Body, size: int, md5_b64: str) -> str:
        """Store one part if it matches; its ETag."""
        _check_key(key)
        _check_upload_id(upload_id)
        _check_part_number(part_number)
        want = _md5_hex(md5_b64)
        with self.store.lock:
            _, uploads = self._enter("upload_part", "UploadMultipart", key)
            self._upload(uploads, "UploadMultipart", key, upload_id)
        data = _read_checked(body, size, want, "UploadMultipart", key)
        with self.store.lock:
            self._upload(uploads, "UploadMultipart", key, upload_id).parts[part_number] = (data, want)
        return want

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """The stored parts, ascending."""
        _check_key(key)
        _check_upload_id(upload_id)
        with self.store.lock:
            _, uploads = self._enter("list_parts", "ListMultipart", key)
            parts = self._upload(uploads, "ListMultipart", key, upload_id).parts
            return [PartInfo(n, len(parts[n][0]), parts[n][1]) for n in sorted(parts)]

    def complete(self, key: str, upload_id: str, parts: Sequence[PartInfo], etag: str) -> None:
        """Make the listed parts the object, with ``etag`` as its ETag."""
        _check_key(key)
        _check_upload_id(upload_id)
        numbers = [p.part_number for p in parts]
        if not parts:
            raise ValueError("complete() needs at least one part")
        for n in numbers:
            _check_part_number(n)
        if any(a >= b for a, b in itertools.pairwise(numbers)):
            raise ValueError(f"parts must be strictly ascending by part_number, got {numbers}")
        whole = etag.strip('"').lower()
        if not _HEX32.match(whole):
            raise ValueError("etag must be a 32-digit hex MD5")
        op = "CompleteMultipartUpload"
        with self.store.lock:
            objects, uploads = self._enter("complete", op, key)
            upload = self._upload(uploads, op, key, upload_id)
            chosen: list[bytes] = []
            for i, p in enumerate(parts):
                stored = upload.parts.get(p.part_number)
                if stored is None or len(stored[0]) != p.size or stored[1] != p.etag.strip('"').lower():
                    raise _bad_request(op, key, "invalid_request", f"part {p.part_number} was never stored as listed")
                if i < len(parts) - 1 and p.size < MIN_PART_SIZE:
                    raise _bad_request(op, key, "entity_too_small", f"part {p.part_number} is smaller than 4 MiB")
                chosen.append(stored[0])
            objects[key] = _Object(b"".join(chosen), whole, upload.content_type, upload.metadata, len(chosen))
            del uploads[upload_id]

    def abort(self, key: str, upload_id: str) -> None:
        """Discard an upload; fine if it is gone."""
        _check_key(key)
        _check_upload_id(upload_id)
        with self.store.lock:
            _, uploads = self._enter("abort", "AbortMultipartUpload", key)
            upload = uploads.get(upload_id)
            if upload is not None and upload.key == key:
                del uploads[upload_id]

    def list_uploads(self, prefix: str = "") -> list[UploadInfo]:
        """Unfinished uploads under ``prefix``, by key and id."""
        with self.store.lock:
            _, uploads = self._enter("list_uploads", "ListMultipartUploads", prefix)
            found = [UploadInfo(u.key, u.upload_id, u.created) for u in uploads.values() if u.key.startswith(prefix)]
        return sorted(found, key=lambda u: (u.key, u.upload_id))

    def list_objects(self, prefix: str, delimiter: str = "") -> list[ObjectInfo]:
        """Objects under ``prefix`` (directly in it with a ``delimiter``), by key; no metadata."""
        return list(self.iter_objects(prefix, delimiter))

    def iter_objects(self, prefix: str, delimiter: str = "", *, page_size: int = LIST_PAGE) -> Iterator[ObjectInfo]:
        """``list_objects`` in pages of ``page_size`` entries (objects and common prefixes), each page
        read under the lock when the last one is used up, and logged as a ``list_objects`` call."""
        if not isinstance(prefix, str) or not isinstance(delimiter, str):
            raise ValueError("prefix and delimiter must be str")
        check_page_size(page_size)
        return self._pages(prefix, delimiter, page_size)

    def _pages(self, prefix: str, delimiter: str, page_size: int) -> Iterator[ObjectInfo]:
        marker = ""
        while True:
            with self.store.lock:
                objects, _ = self._enter("list_objects", "ListObjects", prefix)
                entries = [e for e in _entries(objects, prefix, delimiter) if e[0] > marker]
            page = entries[:page_size]
            yield from (o for _, o in page if o is not None)
            if len(entries) <= page_size:
                return
            marker = page[-1][0]

    def copy(self, source: str, key: str, *, etag: str, size: int) -> str:
        """Copy ``source`` to ``key`` if it still has this ETag and size; part by part above ``max_copy_size``."""
        tag = check_copy(source, key, etag, size, _check_key)
        with self.store.lock:
            objects, uploads = self._enter("copy", "CopyObject", key)
            obj = self._source(objects, "CopyObject", source, key, tag, size)
            if size <= self._max_copy_size:
                objects[key] = _Object(obj.data, obj.etag, obj.content_type, dict(obj.metadata))
                return obj.etag

            def copy_part(upload_id: str, number: int, first: int, last: int) -> str:
                self._enter("upload_part_copy", "CopyObjectPart", key)
                if objects.get(source) is not obj:
                    raise source_changed("CopyObjectPart", source, key, f"its ETag is no longer {tag}")
                data = obj.data[first : last + 1]
                md5 = hashlib.md5(data).hexdigest()
                self._upload(uploads, "CopyObjectPart", key, upload_id).parts[number] = (data, md5)
                return md5

            copy_by_parts(
                size,
                self._max_copy_size,
                initiate=lambda: self.initiate(key, content_type=obj.content_type, metadata=obj.metadata),
                copy_part=copy_part,
                complete=lambda upload_id, parts: self.complete(key, upload_id, parts, tag),
                abort=lambda upload_id: self.abort(key, upload_id),
            )
            return tag

    def move(self, source: str, key: str, *, etag: str, size: int) -> str:
        """Move ``source`` to ``key`` in one request (as QingStor does) if it still has this ETag and size."""
        tag = check_copy(source, key, etag, size, _check_key)
        with self.store.lock:
            objects, _ = self._enter("move", "MoveObject", key)
            obj = self._source(objects, "MoveObject", source, key, tag, size)
            objects[key] = _Object(obj.data, obj.etag, obj.content_type, dict(obj.metadata), obj.parts)
            del objects[source]
            return obj.etag

    def versioning(self) -> str:
        """The bucket's versioning state as ``store.versioning`` holds it."""
        with self.store.lock:
            self._enter("versioning", "GetBucketVersioning", "")
            return self.store.versioning[self.bucket]

    def _source(
        self, objects: dict[str, _Object], operation: str, source: str, key: str, tag: str, size: int
    ) -> _Object:
        obj = objects.get(source)
        if obj is None:
            raise NotFound(
                f"{operation} {source!r} -> {key!r} failed: the source {source!r} does not exist",
                status=404,
                code="object_not_exists",
                operation=operation,
                key=source,
            )
        if (obj.etag, len(obj.data)) != (tag, size):
            raise source_changed(operation, source, key, f"ETag {obj.etag}, {len(obj.data)} bytes")
        return obj


def _read_checked(body: Body, size: int, want: str, operation: str, key: str) -> bytes:
    """Exactly ``size`` bytes of ``body``, whose MD5 must be ``want``; else ``BodyMismatch``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0, got {size!r}")
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = body.read(min(1024 * 1024, size - got))
        if not chunk:
            raise BodyMismatch(
                f"{operation} {key!r} failed: the body ended after {got} of {size} bytes: the file shrank while "
                "it was read; nothing was stored",
                code="incomplete_body",
                operation=operation,
                key=key,
            )
        chunks.append(chunk)
        got += len(chunk)
    data = b"".join(chunks)
    if hashlib.md5(data).hexdigest() != want:
        raise BodyMismatch(
            f"{operation} {key!r} failed: the body does not match its Content-MD5: the file changed while it was "
            "read or was corrupted in transit",
            status=400,
            code="bad_digest",
            operation=operation,
            key=key,
        )
    return data


def _entries(objects: Mapping[str, _Object], prefix: str, delimiter: str) -> list[tuple[str, ObjectInfo | None]]:
    """What a listing of ``prefix`` shows, sorted by name: ``(key, info)`` per object and ``(common prefix,
    None)`` per name rolled up below ``delimiter`` (a common prefix sorts right before its first key)."""
    out: list[tuple[str, ObjectInfo | None]] = []
    for key in sorted(k for k in objects if k.startswith(prefix)):
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            o = objects[key]
            out.append((key, ObjectInfo(key, len(o.data), o.etag, o.content_type)))
        elif not out or out[-1][0] != key[: cut + len(delimiter)]:
            out.append((key[: cut + len(delimiter)], None))
    return out


def _bad_request(operation: str, key: str, code: str, detail: str) -> BadRequest:
    return BadRequest(f"{operation} {key!r} failed: {detail}", status=400, code=code, operation=operation, key=key)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key or len(key.encode("utf-8")) > 1023:
        raise ValueError(f"object key must be 1..1023 bytes of UTF-8, got {key!r}")


def _check_upload_id(upload_id: str) -> None:
    if not isinstance(upload_id, str) or not upload_id.strip():
        raise ValueError("upload_id must be a non-empty str")


def _check_part_number(part_number: int) -> None:
    if isinstance(part_number, bool) or not isinstance(part_number, int) or not 0 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"part_number must be an int in 0..{MAX_PART_NUMBER}, got {part_number!r}")


def _md5_hex(md5_b64: str) -> str:
    try:
        raw = base64.b64decode(md5_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != 16:
        raise ValueError("md5_b64 must be the Base64 of a 16-byte MD5 digest")
    return raw.hex()


def _metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not _META_NAME.match(name) or not value.isascii() or not value.isprintable() or value != value.strip():
            raise ValueError(f"metadata {name!r}={value!r}: names [A-Za-z0-9._-], values printable ASCII")
        out[name.lower()] = value
    return out
