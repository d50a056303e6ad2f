"""The QingStor operations the emulator implements (a mixin of the HTTP handler).

Choices where the reference says "NOT confirmed" (documented guesses):

- CompleteMultipart listing a part that was never uploaded, part numbers not strictly ascending,
  an empty list, or a part whose given ``etag``/``size`` differs from the stored part:
  **400 ``invalid_request``**.
- ``entity_too_small`` is enforced **at Complete**, for every listed part except the last.
- Complete without an ``ETag`` header: the object's ETag is the **MD5 of the concatenated
  bytes**. With the header, its value is stored with surrounding quotes stripped, unverified.
  Complete answers 201 **without** an ETag header.
- UploadMultipart answers with a quoted ``ETag`` header; ListMultipart ``etag`` values are
  **unquoted** (as in the docs example). ListObjects ``etag`` values are quoted.
- ``upload_not_exists`` is **404**; part numbers **0..10000** are accepted, at most 10000 distinct
  parts per upload (more: 400 ``max_parts_exceeded``).
- ListObjects: ``limit`` default 100, clamped to 1000 (non-positive: default); keys and common
  prefixes both count towards it; ``next_marker`` is the last key or prefix returned (``""`` if
  none), also when ``has_more`` is false; order is by code point (= UTF-8 byte order).
- ListMultipart: ``part_number_marker`` is exclusive (parts numbered above it), ``limit`` default
  and maximum 1000, ``count`` is the number of parts in the upload (not just this page).
- ListMultipartUploads: default 200, max 1000; sorted by (key, upload_id); upload ids sort by
  creation time.
- Keys: 1..1023 bytes of strictly valid UTF-8 (percent-decoded); any character is allowed.
  A path ``/<bucket>/`` (empty key) is a bucket-level request.
- Metadata: ``x-qs-meta-<name>`` names ``[A-Za-z0-9-_.]`` and values printable ASCII, else
  400 ``invalid_argument``; name > 512 bytes or total (names + values) > 2048 bytes:
  400 ``metadata_too_large``. Names are stored lower-case.
- DeleteMultipleObjects: missing ``Content-MD5`` -> 400 ``invalid_request``; at most 1000 keys.
- DeleteBucket with objects -> 409 ``bucket_not_empty``; unfinished uploads are deleted with it.
- Operations on a bucket with an invalid name answer 404 ``bucket_not_exists`` (only PutBucket
  says ``invalid_bucket_name``).
- Copy (``x-qs-copy-source``) and move (``x-qs-move-source``) are supported (201, no body).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from qsyncd.emulator import store as st
from qsyncd.emulator.store import ObjectMeta, PartMeta, StoreError, UploadState
from qsyncd.emulator.wire import (
    STORAGE_CLASSES,
    BadChunking,
    IncompleteBody,
    check_metadata,
    decode_md5,
    http_date,
    parse_date,
    parse_range,
    rfc3339,
    valid_bucket_name,
    valid_key,
)

if TYPE_CHECKING:
    from qsyncd.emulator.server import Emulator
    from qsyncd.emulator.wire import BodyReader

MAX_OBJECT_SIZE = 5 * 1024 * 1024 * 1024
MAX_JSON_BODY = 16 * 1024 * 1024
STORED_HEADERS = ("cache-control", "content-encoding", "content-disposition", "content-language", "expires")
OWNER = {"id": "usr-qsyncdemulator", "name": "emulator"}
NOT_SUPPORTED = {
    "acl",
    "cors",
    "cname",
    "image",
    "logging",
    "lifecycle",
    "mirror",
    "notification",
    "policy",
    "replication",
}


def classify(method: str, bucket: str, key: str, query: dict[str, str]) -> str:
    """The operation name of a request (``Unsupported`` for anything the emulator does not do)."""
    if not bucket:
        return "ListBuckets" if method == "GET" else "Unsupported"
    if NOT_SUPPORTED & set(query):
        return "Unsupported"
    if not key:
        if method == "PUT":
            return "PutBucket"
        if method == "HEAD":
            return "HeadBucket"
        if method == "DELETE":
            return "DeleteBucket"
        if method == "GET":
            if "stats" in query:
                return "GetBucketStatistics"
            if "uploads" in query:
                return "ListMultipartUploads"
            return "ListObjects"
        if method == "POST" and "delete" in query:
            return "DeleteMultipleObjects"
        return "Unsupported"
    if method == "PUT":
        if "upload_id" in query or "part_number" in query:
            return "UploadMultipart"
        return "PutObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        return "ListMultipart" if "upload_id" in query else "GetObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "upload_id" in query else "DeleteObject"
    if method == "POST":
        if "uploads" in query:
            return "InitiateMultipartUpload"
        if "upload_id" in query:
            return "CompleteMultipartUpload"
        if "append" in query:
            return "AppendObject"
    return "Unsupported"


def _int_param(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    from qsyncd.emulator.server import HTTPError

    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, "invalid_argument", f"{name} must be an integer") from None
    if value <= 0:
        return default
    return min(value, maximum)


class Operations:
    """Operation handlers; mixed into the request handler (``self`` is the handler)."""

    # attributes provided by the handler
    emu: Emulator
    command: str
    headers: Any
    query: dict[str, str]
    bucket: str
    key: str
    operation: str
    body: BodyReader | None
    has_length: bool
    part_number: int | None
    upload_id: str | None

    # ---- helpers --------------------------------------------------------------------------------

    def _err(self, status: int, code: str, message: str = "") -> Exception:
        from qsyncd.emulator.server import HTTPError

        return HTTPError(status, code, message)

    def run_operation(self) -> None:
        """Dispatch to the handler of ``self.operation``."""
        handler = getattr(self, f"op_{self.operation}", None)
        if handler is None:
            if self.operation in ("AppendObject",):
                raise self._err(501, "not_implemented", "AppendObject is not implemented by the emulator")
            raise self._err(405, "method_not_allowed", "operation not supported by the emulator")
        if self.operation not in ("ListBuckets", "PutBucket"):
            if not valid_bucket_name(self.bucket):
                raise self._err(404, "bucket_not_exists", "the bucket does not exist")
            self.emu.store.bucket(self.bucket)
        if self.key and not valid_key(self.key):
            raise self._err(400, "invalid_object_name", "object keys are 1..1023 bytes of UTF-8")
        handler()

    def _storage_class(self) -> str:
        value = self.headers.get("x-qs-storage-class")
        if value is None or value == "":
            return "STANDARD"
        if value not in STORAGE_CLASSES:
            raise self._err(400, "invalid_argument", "x-qs-storage-class must be STANDARD or STANDARD_IA")
        return value

    def _metadata(self) -> dict[str, str]:
        meta, code = check_metadata(list(self.headers.items()))
        if code is not None:
            raise self._err(400, code, "x-qs-meta-* headers break the metadata rules")
        return meta

    def _stored_headers(self) -> dict[str, str]:
        out = {}
        for name in STORED_HEADERS:
            value = self.headers.get(name)
            if value:
                out[name] = value
        return out

    def _mime(self) -> str:
        value = self.headers.get("Content-Type", "")
        return value.strip() or "application/octet-stream"

    def _require_length(self, maximum: int) -> int | None:
        """Validate the declared length before any body is read; returns it (None for chunked)."""
        assert self.body is not None
        if not self.has_length:
            raise self._err(411, "invalid_request", "Content-Length is required")
        if self.body.chunked:
            return None
        assert self.body.length is not None
        if self.body.length > maximum:
            raise self._err(400, "entity_too_large", "the body is larger than 5 GiB")
        return self.body.length

    def _content_md5(self) -> bytes | None:
        value = self.headers.get("Content-MD5")
        if value is None:
            return None
        raw = decode_md5(value)
        if raw is None:
            raise self._err(400, "bad_digest", "Content-MD5 is neither the Base64 of 16 bytes nor 32 hex digits")
        return raw

    def _stream_into(self, writer: st.BodyWriter, maximum: int) -> str:
        """Copy the request body into ``writer``; checks size and Content-MD5; returns the MD5 hex."""
        expected = self._content_md5()
        assert self.body is not None
        self.send_continue()  # type: ignore[attr-defined]
        try:
            while True:
                chunk = self.body.read(st.CHUNK)
                if not chunk:
                    break
                writer.write(chunk)
                if writer.size > maximum:
                    raise self._err(400, "entity_too_large", "the body is larger than 5 GiB")
        except IncompleteBody:
            writer.discard()
            self.close_connection = True
            raise self._err(400, "incomplete_body", "the body is shorter than Content-Length") from None
        except BadChunking:
            writer.discard()
            self.close_connection = True
            raise self._err(400, "invalid_request", "malformed chunked body") from None
        except BaseException:
            writer.discard()
            raise
        if expected is not None and writer.md5_digest() != expected:
            writer.discard()
            raise self._err(400, "bad_digest", "Content-MD5 does not match the body")
        try:
            return writer.finish()
        except BaseException:
            writer.discard()
            raise

    def _read_json_body(self) -> Any:
        assert self.body is not None
        if self.body.length is not None and self.body.length > MAX_JSON_BODY:
            raise self._err(400, "invalid_request", "request body too large")
        self.send_continue()  # type: ignore[attr-defined]
        parts: list[bytes] = []
        total = 0
        try:
            while chunk := self.body.read(st.CHUNK):
                parts.append(chunk)
                total += len(chunk)
                if total > MAX_JSON_BODY:
                    raise self._err(400, "invalid_request", "request body too large")
        except (IncompleteBody, BadChunking):
            self.close_connection = True
            raise self._err(400, "incomplete_body", "the body is shorter than Content-Length") from None
        raw = b"".join(parts)
        expected = self._content_md5()
        if expected is not None and hashlib.md5(raw).digest() != expected:
            raise self._err(400, "bad_digest", "Content-MD5 does not match the body")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise self._err(400, "invalid_json", "the body is not valid JSON") from None

    def _object_headers(self, meta: ObjectMeta) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", meta.mime_type),
            ("Last-Modified", http_date(meta.modified)),
            ("ETag", f'"{meta.etag}"'),
            ("x-qs-storage-class", meta.storage_class),
        ]
        for name, value in meta.headers.items():
            headers.append((name.title(), value))
        for name, value in sorted(meta.metadata.items()):
            headers.append((name, value))
        return headers

    def _check_conditions(self, meta: ObjectMeta) -> bool:
        """Evaluate If-* headers; returns False after answering 304, raises 412."""
        etag = f'"{meta.etag}"'
        if_match = self.headers.get("If-Match")
        if if_match is not None:
            tags = [t.strip() for t in if_match.split(",")]
            if "*" not in tags and etag not in tags and meta.etag not in tags:
                raise self._err(412, "precondition_failed", "If-Match failed")
        ius = self.headers.get("If-Unmodified-Since")
        if ius is not None and if_match is None:
            when = parse_date(ius)
            if when is not None and int(meta.modified) > when:
                raise self._err(412, "precondition_failed", "If-Unmodified-Since failed")
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            if "*" in tags or etag in tags or meta.etag in tags:
                self.send_empty(304, [("ETag", etag)])  # type: ignore[attr-defined]
                return False
        ims = self.headers.get("If-Modified-Since")
        if ims is not None and inm is None:
            when = parse_date(ims)
            if when is not None and int(meta.modified) <= when:
                self.send_empty(304, [("ETag", etag)])  # type: ignore[attr-defined]
                return False
        return True

    # ---- service and bucket operations ----------------------------------------------------------

    def op_ListBuckets(self) -> None:
        location = self.headers.get("Location")
        buckets = [] if location and location.lower() != self.emu.zone else self.emu.store.buckets()
        self.send_json(
            200,
            {  # type: ignore[attr-defined]
                "count": len(buckets),
                "buckets": [
                    {
                        "name": b.name,
                        "location": self.emu.zone,
                        "url": f"{self.emu.url}/{b.name}",
                        "created": rfc3339(b.created),
                    }
                    for b in buckets
                ],
            },
        )

    def op_PutBucket(self) -> None:
        if not valid_bucket_name(self.bucket):
            raise self._err(400, "invalid_bucket_name", "bucket names are 6-63 chars of [a-z0-9-]")
        self.emu.store.create_bucket(self.bucket)
        self.send_empty(201, [("Location", f"/{self.bucket}")])  # type: ignore[attr-defined]

    def op_HeadBucket(self) -> None:
        self.send_empty(200)  # type: ignore[attr-defined]

    def op_DeleteBucket(self) -> None:
        self.emu.store.delete_bucket(self.bucket)
        self.send_empty(204)  # type: ignore[attr-defined]

    def op_GetBucketStatistics(self) -> None:
        count, size, classes = self.emu.store.bucket_stats(self.bucket)
        state = self.emu.store.bucket(self.bucket)
        self.send_json(
            200,
            {  # type: ignore[attr-defined]
                "name": self.bucket,
                "url": f"{self.emu.url}/{self.bucket}",
                "location": self.emu.zone,
                "created": rfc3339(state.created),
                "status": "active",
                "count": count,
                "size": size,
                "storage_classes": {
                    sc: {"count": c, "size": s, "billing_size": s} for sc, (c, s) in sorted(classes.items())
                },
            },
        )

    def op_ListObjects(self) -> None:
        prefix = self.query.get("prefix", "")
        delimiter = self.query.get("delimiter", "")
        marker = self.query.get("marker", "")
        limit = _int_param(self.query, "limit", 100, 1000)
        objects, prefixes, has_more = self.emu.store.list_objects(self.bucket, prefix, delimiter, marker, limit)
        last = max([o.key for o in objects[-1:]] + prefixes[-1:], default="")
        self.send_json(
            200,
            {  # type: ignore[attr-defined]
                "name": self.bucket,
                "owner": OWNER,
                "prefix": prefix,
                "delimiter": delimiter,
                "marker": marker,
                "limit": limit,
                "next_marker": last,
                "has_more": has_more,
                "keys": [
                    {
                        "key": o.key,
                        "size": o.size,
                        "etag": f'"{o.etag}"',
                        "mime_type": o.mime_type,
                        "created": rfc3339(o.created),
                        "modified": int(o.modified),
                        "encrypted": False,
                        "storage_class": o.storage_class,
                    }
                    for o in objects
                ],
                "common_prefixes": prefixes,
            },
        )

    def op_DeleteMultipleObjects(self) -> None:
        if self.headers.get("Content-MD5") is None:
            raise self._err(400, "invalid_request", "Content-MD5 is required")
        doc = self._read_json_body()
        if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
            raise self._err(400, "invalid_json", 'expected {"objects": [...]}')
        quiet = doc.get("quiet")
        if quiet is not None and not isinstance(quiet, bool):
            raise self._err(400, "invalid_json", "quiet must be a boolean or null")
        if len(doc["objects"]) > 1000:
            raise self._err(400, "invalid_request", "at most 1000 objects per request")
        deleted: list[dict[str, str]] = []
        errors: list[dict[str, str]] = []
        for entry in doc["objects"]:
            key = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(key, str) or not valid_key(key):
                errors.append({"key": str(key), "code": "invalid_object_name", "message": "invalid key"})
                continue
            self.emu.store.delete_object(self.bucket, key)
            deleted.append({"key": key})
        out: dict[str, Any] = {"errors": errors}
        if not quiet:
            out["deleted"] = deleted
        self.send_json(200, out)  # type: ignore[attr-defined]

    def op_ListMultipartUploads(self) -> None:
        prefix = self.query.get("prefix", "")
        delimiter = self.query.get("delimiter", "")
        key_marker = self.query.get("key_marker", "")
        upload_id_marker = self.query.get("upload_id_marker", "")
        limit = _int_param(self.query, "limit", 200, 1000)
        uploads, prefixes, has_more = self.emu.store.list_uploads(
            self.bucket, prefix, delimiter, key_marker, upload_id_marker, limit
        )
        next_key, next_id = "", ""
        if uploads and (not prefixes or uploads[-1].key >= prefixes[-1]):
            next_key, next_id = uploads[-1].key, uploads[-1].upload_id
        elif prefixes:
            next_key = prefixes[-1]
        self.send_json(
            200,
            {  # type: ignore[attr-defined]
                "name": self.bucket,
                "prefix": prefix,
                "delimiter": delimiter,
                "limit": limit,
                "marker": key_marker,
                "key_marker": key_marker,
                "upload_id_marker": upload_id_marker,
                "next_key_marker": next_key,
                "next_upload_id_marker": next_id,
                "has_more": has_more,
                "uploads": [{"key": u.key, "upload_id": u.upload_id, "created": rfc3339(u.created)} for u in uploads],
                "common_prefixes": prefixes,
            },
        )

    # ---- object operations ----------------------------------------------------------------------

    def op_PutObject(self) -> None:
        for header in ("x-qs-fetch-source",):
            if self.headers.get(header):
                raise self._err(501, "not_implemented", f"{header} is not implemented by the emulator")
        storage_class = self._storage_class()
        metadata = self._metadata()
        source = self.headers.get("x-qs-copy-source") or self.headers.get("x-qs-move-source")
        if source:
            self._copy_or_move(source, storage_class, metadata)
            return
        self._require_length(MAX_OBJECT_SIZE)
        writer = self.emu.store.object_writer(self.bucket, self.key)
        md5 = self._stream_into(writer, MAX_OBJECT_SIZE)
        now = self.emu.now()
        meta = ObjectMeta(
            key=self.key,
            size=writer.size,
            etag=md5,
            mime_type=self._mime(),
            created=now,
            modified=now,
            storage_class=storage_class,
            metadata=metadata,
            headers=self._stored_headers(),
        )
        try:
            self.emu.store.commit_object(self.bucket, writer.path, meta)
        except BaseException:
            writer.discard()
            raise
        self.send_empty(201, [("ETag", f'"{md5}"')])  # type: ignore[attr-defined]

    def _copy_or_move(self, source: str, storage_class: str, metadata: dict[str, str]) -> None:
        move = bool(self.headers.get("x-qs-move-source"))
        src = unquote(source)
        sbucket, _, skey = src.lstrip("/").partition("/")
        if not skey:
            raise self._err(400, "invalid_argument", "the copy source must be /<bucket>/<key>")
        try:
            src_meta = self.emu.store.head_object(sbucket, skey)
        except StoreError:
            raise self._err(404, "object_not_exists", "the source object does not exist") from None
        etag = f'"{src_meta.etag}"'
        cond = self.headers.get("x-qs-copy-source-if-match")
        if cond is not None and cond.strip() not in (etag, src_meta.etag):
            raise self._err(412, "precondition_failed", "copy source If-Match failed")
        cond = self.headers.get("x-qs-copy-source-if-none-match")
        if cond is not None and cond.strip() in (etag, src_meta.etag):
            raise self._err(412, "precondition_failed", "copy source If-None-Match failed")
        replace = (self.headers.get("x-qs-metadata-directive") or "COPY").upper() == "REPLACE"
        now = self.emu.now()
        meta = ObjectMeta(
            key=self.key,
            size=0,
            etag="",
            mime_type=self._mime() if replace else src_meta.mime_type,
            created=now,
            modified=now,
            storage_class=storage_class if self.headers.get("x-qs-storage-class") else src_meta.storage_class,
            metadata=metadata if replace else dict(src_meta.metadata),
            headers=self._stored_headers() if replace else dict(src_meta.headers),
        )
        if (sbucket, skey) != (self.bucket, self.key):
            self.emu.store.copy_object(sbucket, skey, self.bucket, meta)
            if move:
                self.emu.store.delete_object(sbucket, skey)
        else:
            self.emu.store.copy_object(sbucket, skey, self.bucket, meta)
        self.send_empty(201)  # type: ignore[attr-defined]

    def op_HeadObject(self) -> None:
        meta = self.emu.store.head_object(self.bucket, self.key)
        if not self._check_conditions(meta):
            return
        self.start_response(200, self._object_headers(meta), meta.size)  # type: ignore[attr-defined]

    def op_GetObject(self) -> None:
        meta, fh = self.emu.store.open_object(self.bucket, self.key)
        with fh:
            if not self._check_conditions(meta):
                return
            headers = self._object_headers(meta)
            overrides = {
                "response-content-type": "Content-Type",
                "response-content-language": "Content-Language",
                "response-expires": "Expires",
                "response-cache-control": "Cache-Control",
                "response-content-disposition": "Content-Disposition",
                "response-content-encoding": "Content-Encoding",
            }
            for param, header in overrides.items():
                if param in self.query:
                    headers = [(n, v) for n, v in headers if n.lower() != header.lower()]
                    headers.append((header, self.query[param]))
            start, end, status = 0, meta.size - 1, 200
            range_header = self.headers.get("Range")
            if range_header is not None:
                parsed = parse_range(range_header, meta.size)
                if parsed is None:
                    from qsyncd.emulator.server import HTTPError

                    raise HTTPError(416, "invalid_range", "the requested range cannot be satisfied")
                start, end = parsed
                status = 206
                headers.append(("Content-Range", f"bytes {start}-{end}/{meta.size}"))
            length = end - start + 1 if meta.size else 0
            self.start_response(status, headers, length)  # type: ignore[attr-defined]
            fh.seek(start)
            left = length
            while left > 0:
                chunk = fh.read(min(st.CHUNK, left))
                if not chunk:
                    self.close_connection = True
                    break
                self.write_body(chunk)  # type: ignore[attr-defined]
                left -= len(chunk)

    def op_DeleteObject(self) -> None:
        self.emu.store.delete_object(self.bucket, self.key)
        self.send_empty(204)  # type: ignore[attr-defined]

    def op_InitiateMultipartUpload(self) -> None:
        storage_class = self._storage_class()
        metadata = self._metadata()
        now = self.emu.now()
        upload_id = f"{int(now * 1e6):014x}{uuid.uuid4().hex[:18]}"
        self.upload_id = upload_id
        self.emu.store.initiate(
            self.bucket,
            UploadState(
                key=self.key,
                upload_id=upload_id,
                created=now,
                mime_type=self._mime(),
                storage_class=storage_class,
                metadata=metadata,
                headers=self._stored_headers(),
            ),
        )
        self.send_json(200, {"bucket": self.bucket, "key": self.key, "upload_id": upload_id})  # type: ignore[attr-defined]

    def op_UploadMultipart(self) -> None:
        upload_id = self.query.get("upload_id", "")
        raw_number = self.query.get("part_number", "")
        try:
            number = int(raw_number)
        except ValueError:
            raise self._err(400, "invalid_argument", "part_number must be an integer") from None
        if not 0 <= number <= st.MAX_PARTS:
            raise self._err(400, "invalid_argument", "part_number must be within 0..10000")
        if not upload_id:
            raise self._err(400, "invalid_argument", "upload_id is required")
        if self.headers.get("x-qs-copy-source"):
            raise self._err(501, "not_implemented", "part copy is not implemented by the emulator")
        self.emu.store.upload(self.bucket, upload_id, self.key)
        self._require_length(st.MAX_PART_SIZE)
        writer = self.emu.store.part_writer(self.bucket, upload_id, self.key)
        md5 = self._stream_into(writer, st.MAX_PART_SIZE)
        part = PartMeta(part_number=number, size=writer.size, etag=md5, created=self.emu.now())
        try:
            self.emu.store.commit_part(self.bucket, upload_id, self.key, writer.path, part)
        except BaseException:
            writer.discard()
            raise
        self.send_empty(201, [("ETag", f'"{md5}"')])  # type: ignore[attr-defined]

    def op_ListMultipart(self) -> None:
        upload_id = self.query.get("upload_id", "")
        limit = _int_param(self.query, "limit", 1000, 1000)
        marker_raw = self.query.get("part_number_marker", "")
        try:
            marker = int(marker_raw) if marker_raw != "" else None
        except ValueError:
            raise self._err(400, "invalid_argument", "part_number_marker must be an integer") from None
        parts = self.emu.store.list_parts(self.bucket, upload_id, self.key)
        total = len(parts)
        if marker is not None:
            parts = [p for p in parts if p.part_number > marker]
        self.send_json(
            200,
            {  # type: ignore[attr-defined]
                "count": total,
                "object_parts": [
                    {"part_number": p.part_number, "size": p.size, "created": rfc3339(p.created), "etag": p.etag}
                    for p in parts[:limit]
                ],
            },
        )

    def op_CompleteMultipartUpload(self) -> None:
        upload_id = self.query.get("upload_id", "")
        self.emu.store.upload(self.bucket, upload_id, self.key)
        doc = self._read_json_body()
        parts = doc.get("object_parts") if isinstance(doc, dict) else None
        if not isinstance(parts, list):
            raise self._err(400, "invalid_json", 'expected {"object_parts": [...]}')
        listed: list[dict[str, Any]] = []
        for entry in parts:
            if not isinstance(entry, dict):
                raise self._err(400, "invalid_json", "object_parts entries must be objects")
            number = entry.get("part_number")
            if isinstance(number, str) and number.isdigit():
                number = int(number)
            if not isinstance(number, int) or isinstance(number, bool):
                raise self._err(400, "invalid_argument", "part_number must be an integer")
            listed.append({"part_number": number, "etag": entry.get("etag"), "size": entry.get("size")})
        etag_header = self.headers.get("ETag")
        etag = etag_header.strip().strip('"') if etag_header else None
        self.emu.store.complete(self.bucket, upload_id, self.key, listed, etag or None)
        self.send_empty(201)  # type: ignore[attr-defined]

    def op_AbortMultipartUpload(self) -> None:
        self.emu.store.abort(self.bucket, self.query.get("upload_id", ""))
        self.send_empty(204)  # type: ignore[attr-defined]
