"""``S3Remote``: the ``Remote`` contract on an S3-compatible store (AWS S3, MinIO, Ceph RGW, R2, SeaweedFS,
QingStor's S3 endpoint), through botocore. This is the only module that imports botocore.

How it sends:

* one botocore client per remote (botocore clients are thread-safe), SigV4, ``max_pool_connections``
  kept-alive connections, botocore's retries off (``total_max_attempts`` 1: qsyncd retries at a higher
  level), ``connect_timeout``/``read_timeout`` on every request;
* ``request_checksum_calculation`` and ``response_checksum_validation`` are ``"when_required"``:
  botocore >= 1.36 otherwise adds CRC32 trailers (aws-chunked bodies) that several S3-compatible stores
  reject or store into the object (boto3#4392, #4435). Integrity comes from ``Content-MD5`` instead,
  on every PutObject and UploadPart; the store refuses a body that does not match it (``BadDigest``).
  The payload is not SHA-256 signed (``payload_signing_enabled`` off, also on plain HTTP), which saves a
  second read of every body: the signed ``Content-MD5`` header already pins the bytes;
* bodies are the caller's file objects behind ``_ExactBody`` (exactly ``size`` bytes, ``tell``/``seek``
  relative to where the body starts, ``ShortBodyError`` when the file ends early, which aborts the
  request mid-body so nothing truncated is stored);
* botocore's loggers are pinned to WARNING: at DEBUG botocore logs every request's headers, which hold
  the signature. Messages are built in ``s3_translate.py`` from status, code and request id only.

qsyncd's part numbers are 0-based, S3's are 1-based: part ``n`` is S3 part ``n + 1`` (0..9999).
A part number sent twice is listed twice by SeaweedFS 4.48, in no defined order: ``list_parts`` keeps
the first entry of each number, and ``complete`` checks the store's ETag against the parts it named,
so a stale entry can cost a resend or a failed Complete, never a wrong object.

"Same bytes, skip" stays honest: the whole-file MD5 in the object's metadata.
An S3 object's ETag is the MD5 of its bytes only for a single PutObject (and not even then with SSE-KMS
or SSE-C); a multipart object's ETag is ``md5(part MD5s)-N``, which says nothing about the file without
knowing the part size. So every object qsyncd writes carries ``x-amz-meta-md5chksum``: the Base64 MD5 of
the whole object, the name and form rclone's S3 backend uses (objects either tool wrote are recognised
by the other). S3 metadata is fixed when the object is written and replaced with it, so it cannot go
stale. The rules:

* HEAD reports as ``etag`` the metadata MD5 when it is there, else the server's ETag (a plain MD5, or
  ``<hex>-N`` for a multipart object written by someone else, which never equals a file's MD5: such an
  object is uploaded again rather than skipped on a guess);
* a listing does not carry metadata: ``listed_md5`` (``s3_meta.py``) is the rule for one listed ETag. A plain 32-digit
  hex ETag is the object's MD5 (a single PutObject); ``<hex>-N`` (multipart) or any other form says
  nothing about the bytes, so that entry is completed with a HEAD. ``iter_objects`` (and
  ``list_objects``) thus report the same ``etag`` as HEAD does, as the contract says, at one request
  per multipart object listed (few, large objects), sent when the caller reaches that entry; small
  files, the many, cost nothing more. This is what keeps ``qsyncd verify`` and
  the daemon's periodic verify honest on S3 with one listing per prefix and no HEAD per file;
* the MD5 must be known when the upload is initiated (metadata cannot be added at Complete), so
  ``initiate`` takes ``md5_hex`` and ``needs_md5_at_initiate`` tells the uploader to hash the file
  first (the same one pass that hashes every part, so nothing is read or hashed twice);
* ``complete`` checks the ETag the store returns against ``md5(part MD5s)-N`` (every part was stored
  under its Content-MD5, so the object is exactly those parts in order). If the upload was initiated
  without an MD5, it then copies the object onto itself (``CopyObject``, ``MetadataDirective=REPLACE``,
  only if its ETag is still the one just completed) to add the metadata; that costs a server-side copy
  and works up to 5 GiB, and the uploader never needs it.

Listings are in ``s3_list.py`` (ListObjectsV2; V1 only for a store without it). Copy, move and the
versioning state are in ``s3_copy.py`` (a copy keeps ``md5chksum``, so the copy reports the same
MD5); the ``md5chksum`` helpers are in ``s3_meta.py``.

Trust: the metadata is what the writer said. qsyncd only writes it from the bytes it hashed and sent
under Content-MD5; an object written by another tool with a wrong ``md5chksum`` would be wrongly
skipped, as rclone would skip it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import itertools
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from qsyncd import __version__
from qsyncd.errors import NotFound, PermanentError, RemoteError, TransientError
from qsyncd.remote import s3_fast
from qsyncd.remote.base import LIST_PAGE, Body, ObjectInfo, PartInfo, UploadInfo, check_page_size
from qsyncd.remote.body import ShortBodyError, short_body_in, shrank
from qsyncd.remote.copies import MAX_COPY_SIZE, check_limit
from qsyncd.remote.endpoint import Endpoint, parse_endpoint
from qsyncd.remote.qingstor_checks import check_key, normalise_etag
from qsyncd.remote.s3_copy import S3Copies
from qsyncd.remote.s3_fast_calls import list_fast, put_fast
from qsyncd.remote.s3_list import S3Listing
from qsyncd.remote.s3_meta import MD5_META, b64, listed_md5, reported_md5, user_metadata
from qsyncd.remote.s3_translate import status_error, transport_error

LIST_LIMIT = 1000
MAX_PART_NUMBER = 9999  # 0-based: S3 allows parts 1..10000
S3_MAX_KEY_BYTES = 1024  # bytes of UTF-8 in a key
ADDRESSING_STYLES = ("auto", "path", "virtual")
STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
)
_HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
_META_KEY_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_PRINTABLE_RE = re.compile(r"[\x20-\x7e]*")
_REFUSED_WITHOUT_BODY = (301, 400, 401, 403)  # a HEAD refused: ask a GET for the error code


class _ExactBody(io.RawIOBase):
    """Exactly ``size`` bytes of ``fileobj`` from its current position, as botocore wants a body:
    ``read``, ``tell``/``seek`` relative to the start (botocore rewinds with ``seek(0)``) and ``len``."""

    def __init__(self, fileobj: Body, size: int) -> None:
        super().__init__()
        self._file = fileobj
        self._size = size
        self._pos = 0
        self._start = fileobj.tell() if _seekable(fileobj) else None

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._start is not None

    def read(self, n: int | None = -1) -> bytes:
        left = self._size - self._pos
        if left <= 0:
            return b""
        want = left if n is None or n < 0 else min(n, left)
        data = self._file.read(want)
        if not data:
            raise ShortBodyError(self._pos, self._size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._pos + offset, io.SEEK_END: self._size + offset}[whence]
        if target == self._pos:
            return self._pos
        if self._start is None or not 0 <= target <= self._size:
            raise io.UnsupportedOperation("this body cannot be rewound")
        self._file.seek(self._start + target)
        self._pos = target
        return self._pos


def _seekable(fileobj: Body) -> bool:
    """A ``Body`` can ``tell``/``seek``; one that has ``seekable()`` may say it cannot."""
    probe = getattr(fileobj, "seekable", None)
    try:
        return bool(probe()) if callable(probe) else True
    except (OSError, ValueError):
        return False


def multipart_etag(part_md5_hexes: Sequence[str]) -> str:
    """The ETag S3 gives a multipart object: the MD5 of the parts' binary MD5s, ``-`` and the count."""
    joined = b"".join(bytes.fromhex(h) for h in part_md5_hexes)
    return f"{hashlib.md5(joined).hexdigest()}-{len(part_md5_hexes)}"


def _check_key(key: str) -> None:
    check_key(key, max_bytes=S3_MAX_KEY_BYTES, store="S3")


def _check_upload(upload_id: str, part_number: int | None = None) -> None:
    if not isinstance(upload_id, str) or not upload_id.strip():
        raise ValueError("upload_id must be a non-empty str")
    if part_number is not None and (
        isinstance(part_number, bool) or not isinstance(part_number, int) or not 0 <= part_number <= MAX_PART_NUMBER
    ):
        raise ValueError(f"part_number must be an int in 0..{MAX_PART_NUMBER}, got {part_number!r}")


def _check_body(size: int, md5_b64: str) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0, got {size!r}")
    try:
        raw = base64.b64decode(md5_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != 16:
        raise ValueError("md5_b64 must be the Base64 of a 16-byte MD5 digest")


def _check_settings(bucket: str, region: str, access_key_id: str, secret_access_key: str, style: str) -> None:
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("bucket must be a non-empty str")
    if not isinstance(region, str) or not region:
        raise ValueError("region must be a non-empty str (e.g. us-east-1 for a local server)")
    if not access_key_id or not secret_access_key:
        raise ValueError("access_key_id and secret_access_key must be non-empty")
    if style not in ADDRESSING_STYLES:
        raise ValueError(f"addressing_style must be one of {ADDRESSING_STYLES}, got {style!r}")


def _object_params(
    content_type: str, metadata: Mapping[str, str] | None, storage_class: str | None, md5_b64: str | None
) -> dict[str, Any]:
    """ContentType, Metadata (with ``md5chksum``) and StorageClass of a new object, validated."""
    if not isinstance(content_type, str) or not _PRINTABLE_RE.fullmatch(content_type):
        raise ValueError(f"content_type must be printable ASCII, got {content_type!r}")
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise ValueError(f"storage_class must be one of {STORAGE_CLASSES}, got {storage_class!r}")
    meta: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not isinstance(name, str) or not _META_KEY_RE.match(name) or len(name) > 512:
            raise ValueError(f"metadata name {name!r} must be 1..512 chars of [A-Za-z0-9._-]")
        if not isinstance(value, str) or not _PRINTABLE_RE.fullmatch(value) or value != value.strip():
            raise ValueError(f"metadata value of {name!r} must be printable ASCII without outer spaces")
        meta[name.lower()] = value
    if md5_b64 is not None:
        meta[MD5_META] = md5_b64
    params: dict[str, Any] = {"ContentType": content_type or "application/octet-stream"}
    if meta:
        params["Metadata"] = meta
    if storage_class is not None:
        params["StorageClass"] = storage_class
    return params


class _Botocore:
    """The one botocore client of an ``S3Remote``: made on first use, every call translated into
    ``qsyncd.errors`` (botocore clients are thread-safe; this only guards making and closing it)."""

    def __init__(
        self, endpoint: Endpoint, bucket: str, region: str, credentials: tuple[str, str], config: dict[str, Any]
    ) -> None:
        self._endpoint = str(endpoint)
        self.bucket = bucket
        self._region = region
        self._credentials = credentials
        self._config = config
        self._lock = threading.Lock()
        self._client: Any = None
        self._contacted = ""

    @property
    def contacted(self) -> str:
        """The ``scheme://host[:port]`` requests really went to (the bucket in front with virtual-hosted
        addressing), recorded from each request's URL; the endpoint until the first request."""
        return self._contacted or self._endpoint

    def _note_url(self, request: Any, **_: Any) -> None:
        parts = urlsplit(str(getattr(request, "url", "")))
        if parts.scheme and parts.netloc:
            self._contacted = f"{parts.scheme}://{parts.netloc}"

    def client(self) -> Any:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                # imported here: a sync that needs no botocore call (plain HTTP, ``s3_fast``) starts ~0.25 s sooner
                import botocore.session
                from botocore.config import Config

                self._client = botocore.session.get_session().create_client(
                    "s3",
                    region_name=self._region,
                    endpoint_url=self._endpoint,
                    aws_access_key_id=self._credentials[0],
                    aws_secret_access_key=self._credentials[1],
                    config=Config(**self._config),
                )
                self._client.meta.events.register("before-send.s3", self._note_url)
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def call(self, operation: str, key: str, **params: Any) -> dict[str, Any]:
        """Send one S3 operation (botocore's method is ``operation`` in snake case) on the bucket."""
        method: Callable[..., dict[str, Any]] = getattr(self.client(), _snake(operation))
        try:
            return method(Bucket=self.bucket, **params)
        except ClientError as exc:
            raise self._refused(exc, operation, key) from None
        except (BotoCoreError, OSError) as exc:
            short = short_body_in(exc)
            if short is not None:
                raise shrank(operation, key, short) from None
            raise transport_error(exc, operation=operation, key=key, endpoint=self.contacted) from None
        except ShortBodyError as exc:
            raise shrank(operation, key, exc) from None

    def _refused(self, exc: ClientError, operation: str, key: str) -> RemoteError:
        response: Mapping[str, Any] = getattr(exc, "response", {}) or {}
        error = response.get("Error") or {}
        meta = response.get("ResponseMetadata") or {}
        status = int(meta.get("HTTPStatusCode") or 0)
        code = str(error.get("Code") or "")
        if code.isdigit():  # botocore's stand-in when the response had no body (HEAD)
            code = ""
        message = str(error.get("Message") or "")
        if not code and status in _REFUSED_WITHOUT_BODY and operation in ("HeadBucket", "HeadObject"):
            code, message = self._diagnose()
        return status_error(
            status=status,
            code=code,
            message=message,
            request_id=str(meta.get("RequestId") or ""),
            operation=operation,
            key=key,
            endpoint=self.contacted,
            bucket=self.bucket,
            region=self._region,
        )

    def _diagnose(self) -> tuple[str, str]:
        """A HEAD's refusal has no body: ask ListObjects (one key) for the S3 error code."""
        try:
            self.client().list_objects(Bucket=self.bucket, MaxKeys=1)
        except ClientError as exc:
            error = (getattr(exc, "response", {}) or {}).get("Error") or {}
            code = str(error.get("Code") or "")
            return ("" if code.isdigit() else code), str(error.get("Message") or "")
        except (BotoCoreError, OSError):
            pass
        return "", ""


def _config(region: str, addressing_style: str, timeouts: tuple[float, float], max_connections: int) -> dict[str, Any]:
    """The botocore client's settings, as ``botocore.config.Config``'s keywords (see the module docstring:
    no retries, no CRC trailers, SigV4)."""
    return {
        "signature_version": "s3v4",
        "region_name": region,
        "connect_timeout": timeouts[0],
        "read_timeout": timeouts[1],
        "retries": {"total_max_attempts": 1},
        "max_pool_connections": max_connections,
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "s3": {"addressing_style": addressing_style, "payload_signing_enabled": False},
        "user_agent_extra": f"qsyncd/{__version__}",
    }


class S3Remote:
    """One bucket of an S3-compatible store, safe for concurrent use from many threads."""

    needs_md5_at_initiate = True  # the whole-file MD5 goes into the metadata at initiate (module docstring)

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        addressing_style: str = "auto",
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_connections: int = 32,
        max_copy_size: int = MAX_COPY_SIZE,
    ) -> None:
        self._endpoint = parse_endpoint(endpoint)
        _check_settings(bucket, region, access_key_id, secret_access_key, addressing_style)
        if connect_timeout <= 0 or read_timeout <= 0 or max_connections < 1:
            raise ValueError("timeouts must be positive and max_connections at least 1")
        self._bucket = bucket
        self._region = region
        self._config = _config(region, addressing_style, (connect_timeout, read_timeout), max_connections)
        self._boto = _Botocore(self._endpoint, bucket, region, (access_key_id, secret_access_key), self._config)
        self._copies = S3Copies(self._boto.call, bucket, check_limit(max_copy_size), _check_key)
        self._fast = (
            s3_fast.FastS3(
                self._endpoint,
                bucket,
                s3_fast.SigV4(access_key_id, secret_access_key, region),
                timeout=(connect_timeout, read_timeout),
                maxsize=max_connections,
                agent=f"qsyncd/{__version__}",
            )
            if s3_fast.usable(self._endpoint, addressing_style)
            else None
        )
        self._listing = S3Listing(self._list_call)
        logging.getLogger("botocore").setLevel(logging.WARNING)  # DEBUG logs carry the signature

    def __repr__(self) -> str:
        return f"S3Remote(endpoint={self.endpoint!r}, region={self._region!r}, bucket={self._bucket!r})"

    @property
    def endpoint(self) -> str:
        """The endpoint as ``scheme://host[:port]``."""
        return str(self._endpoint)

    @property
    def contacted(self) -> str:
        """The ``scheme://host[:port]`` requests really went to (see ``_Botocore.contacted``)."""
        return self._boto.contacted

    def _client(self) -> Any:
        """The botocore client (tests hook its events)."""
        return self._boto.client()

    def _call(self, operation: str, key: str, **params: Any) -> dict[str, Any]:
        return self._boto.call(operation, key, **params)

    def _list_call(self, operation: str, key: str, **params: Any) -> dict[str, Any]:
        """A listing: ListObjectsV2 and ListMultipartUploads by ``s3_fast`` where it is usable, the rest by botocore."""
        fast = self._fast
        if fast is not None and operation == "ListObjectsV2":
            delimiter, token = str(params.get("Delimiter", "")), str(params.get("ContinuationToken", ""))
            send = partial(fast.list_v2, key, delimiter, int(params["MaxKeys"]), token)
            return list_fast(send, s3_fast.parse_list_v2, operation, key, self.endpoint, self._bucket, self._region)
        if fast is not None and operation == "ListMultipartUploads":
            markers = str(params.get("KeyMarker", "")), str(params.get("UploadIdMarker", ""))
            send = partial(fast.list_uploads, key, int(params["MaxUploads"]), *markers)
            return list_fast(
                send, s3_fast.parse_list_uploads, operation, key, self.endpoint, self._bucket, self._region
            )
        return self._boto.call(operation, key, **params)

    def close(self) -> None:
        """Close the connections; later calls open new ones."""
        self._boto.close()
        if self._fast is not None:
            self._fast.close()

    # ---- Remote -------------------------------------------------------------------------------

    def create_bucket(self) -> None:
        """Create the bucket (not part of ``Remote``: the daemon never creates one; the demo and tests do)."""
        self._call("CreateBucket", "")

    def probe(self) -> None:
        """Check that the bucket exists and the credentials work (HeadBucket)."""
        self._call("HeadBucket", "")

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info (``etag`` is its whole-file MD5 where known, see above), or ``None``."""
        found = self._head(key)
        return None if found is None else found[0]

    def _head(self, key: str) -> tuple[ObjectInfo, bool] | None:
        """HEAD: the info (``md5chksum`` left out of its metadata) and whether ``md5chksum`` was there."""
        _check_key(key)
        try:
            reply = self._call("HeadObject", key, Key=key)
        except NotFound:
            return None
        metadata = {str(k).lower(): str(v) for k, v in (reply.get("Metadata") or {}).items()}
        info = ObjectInfo(
            key=key,
            size=int(reply.get("ContentLength") or 0),
            etag=reported_md5(normalise_etag(reply.get("ETag")), metadata),
            content_type=str(reply.get("ContentType") or ""),
            metadata=user_metadata(metadata),
        )
        return info, MD5_META in metadata

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
        """Store ``size`` bytes of ``body`` under ``key`` (PutObject with Content-MD5); return its ETag."""
        _check_key(key)
        _check_body(size, md5_b64)
        params = _object_params(content_type, metadata, storage_class, md5_b64)
        if self._fast is not None:
            return put_fast(self._fast, key, body, size, md5_b64, params, self.endpoint, self._bucket, self._region)
        reply = self._call(
            "PutObject",
            key,
            Key=key,
            Body=_ExactBody(body, size) if size else b"",
            ContentLength=size,
            ContentMD5=md5_b64,
            **params,
        )
        return normalise_etag(reply.get("ETag")) or base64.b64decode(md5_b64).hex()

    def initiate(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
        md5_hex: str | None = None,
    ) -> str:
        """Start a multipart upload (CreateMultipartUpload); ``md5_hex`` is the whole object's MD5."""
        _check_key(key)
        md5_b64 = None
        if md5_hex is not None:
            if not _HEX32_RE.match(md5_hex):
                raise ValueError("md5_hex must be a 32-digit lower-case hex MD5")
            md5_b64 = base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii")
        params = _object_params(content_type, metadata, storage_class, md5_b64)
        reply = self._call("CreateMultipartUpload", key, Key=key, **params)
        upload_id = reply.get("UploadId")
        if not isinstance(upload_id, str) or not upload_id:
            raise TransientError(
                f"CreateMultipartUpload {key!r} failed: the store's answer has no UploadId",
                code="invalid_response",
                operation="CreateMultipartUpload",
                key=key,
            )
        return upload_id

    def upload_part(self, key: str, upload_id: str, part_number: int, body: Body, size: int, md5_b64: str) -> str:
        """Store one 0-based part (UploadPart ``part_number + 1``, Content-MD5); return its ETag."""
        _check_key(key)
        _check_upload(upload_id, part_number)
        _check_body(size, md5_b64)
        reply = self._call(
            "UploadPart",
            key,
            Key=key,
            UploadId=upload_id,
            PartNumber=part_number + 1,
            Body=_ExactBody(body, size) if size else b"",
            ContentLength=size,
            ContentMD5=md5_b64,
        )
        return normalise_etag(reply.get("ETag")) or base64.b64decode(md5_b64).hex()

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """All stored parts of an upload, ascending (ListParts, paged by PartNumberMarker)."""
        _check_key(key)
        _check_upload(upload_id)
        parts: dict[int, PartInfo] = {}
        marker = 0
        while True:
            reply = self._call(
                "ListParts", key, Key=key, UploadId=upload_id, MaxParts=LIST_LIMIT, PartNumberMarker=marker
            )
            page = reply.get("Parts") or []
            for item in page:
                number = int(item["PartNumber"]) - 1
                if number not in parts:  # SeaweedFS lists every upload of a part number (see above)
                    parts[number] = PartInfo(number, int(item.get("Size") or 0), normalise_etag(item.get("ETag")))
            nxt = int(reply.get("NextPartNumberMarker") or 0)
            if not page or not reply.get("IsTruncated") or nxt <= marker:
                break
            marker = nxt
        return [parts[n] for n in sorted(parts)]

    def complete(self, key: str, upload_id: str, parts: Sequence[PartInfo], etag: str) -> None:
        """Assemble ``parts`` (ascending) into the object; afterwards HEAD reports ``etag`` (the whole MD5)."""
        _check_key(key)
        _check_upload(upload_id)
        if not parts:
            raise ValueError("complete() needs at least one part")
        numbers = [p.part_number for p in parts]
        for number in numbers:
            _check_upload(upload_id, number)
        if any(a >= b for a, b in itertools.pairwise(numbers)):
            raise ValueError(f"parts must be strictly ascending by part_number, got {numbers}")
        whole = normalise_etag(etag)
        if not _HEX32_RE.match(whole):
            raise ValueError("etag must be a 32-digit hex MD5")
        part_md5s = [normalise_etag(p.etag) for p in parts]
        upload = {"Parts": [{"ETag": f'"{m}"', "PartNumber": n + 1} for n, m in zip(numbers, part_md5s, strict=True)]}
        reply = self._call("CompleteMultipartUpload", key, Key=key, UploadId=upload_id, MultipartUpload=upload)
        returned = normalise_etag(reply.get("ETag"))
        expected = multipart_etag(part_md5s)
        if "-" in returned and returned != expected:
            raise PermanentError(
                f"CompleteMultipartUpload {key!r}: the store reports ETag {returned}, but the parts sent make "
                f"{expected}: the object is not the parts that were uploaded",
                code="verify_failed",
                operation="CompleteMultipartUpload",
                key=key,
            )
        found = self._head(key)
        if found is not None and not found[1]:
            _add_md5(self._boto, key, found[0], returned or found[0].etag, whole)

    def abort(self, key: str, upload_id: str) -> None:
        """Discard an upload (AbortMultipartUpload); one already gone is fine."""
        _check_key(key)
        _check_upload(upload_id)
        try:
            self._call("AbortMultipartUpload", key, Key=key, UploadId=upload_id)
        except NotFound:
            pass

    def list_uploads(self, prefix: str = "") -> list[UploadInfo]:
        """All unfinished multipart uploads under ``prefix`` (ListMultipartUploads, paged)."""
        if not isinstance(prefix, str):
            raise ValueError("prefix must be a str")
        uploads: dict[tuple[str, str], UploadInfo] = {}
        markers: dict[str, str] = {}
        while True:
            reply = self._list_call("ListMultipartUploads", prefix, Prefix=prefix, MaxUploads=LIST_LIMIT, **markers)
            page = reply.get("Uploads") or []
            new = 0
            for item in page:
                ident = (str(item["Key"]), str(item["UploadId"]))
                new += ident not in uploads
                uploads[ident] = UploadInfo(ident[0], ident[1], _rfc3339(item.get("Initiated")))
            if not page or not reply.get("IsTruncated") or new == 0:
                break
            last = max(uploads)
            markers = {
                "KeyMarker": str(reply.get("NextKeyMarker") or last[0]),
                "UploadIdMarker": str(reply.get("NextUploadIdMarker") or last[1]),
            }
        return sorted(uploads.values(), key=lambda u: (u.key, u.upload_id))

    def copy(self, source: str, key: str, *, etag: str, size: int) -> str:
        """Server-side copy (HEAD, then CopyObject or part copies, ``s3_copy``); the new object's ETag."""
        return self._copies.copy(source, key, etag, size)

    def move(self, source: str, key: str, *, etag: str, size: int) -> str:
        """The copy, then DeleteObject of the source (``s3_copy``); the new object's ETag."""
        return self._copies.move(source, key, etag, size)

    def versioning(self) -> str:
        """The bucket's versioning state (GetBucketVersioning): "enabled", "suspended" or "off"."""
        return self._copies.versioning()

    def list_objects(self, prefix: str, delimiter: str = "") -> list[ObjectInfo]:
        """Every object under ``prefix`` (common prefixes left out), sorted, with HEAD's ``etag`` (ListObjects)."""
        return list(self.iter_objects(prefix, delimiter))

    def iter_objects(self, prefix: str, delimiter: str = "", *, page_size: int = LIST_PAGE) -> Iterator[ObjectInfo]:
        """The objects under ``prefix`` one ListObjects page at a time, in key order, with HEAD's ``etag``:
        a multipart entry is HEADed when the caller reaches it, one at a time (``listed_md5``)."""
        if not isinstance(prefix, str) or not isinstance(delimiter, str):
            raise ValueError("prefix and delimiter must be str")
        check_page_size(page_size)
        return self._listing.objects(prefix, delimiter, page_size, self.head)


def _add_md5(boto: _Botocore, key: str, info: ObjectInfo, etag: str, whole: str) -> None:
    """Copy a just-completed object onto itself with ``md5chksum`` added (upload initiated without it),
    only if its ETag is still ``etag`` (nobody wrote the key since)."""
    if info.size > MAX_COPY_SIZE:
        raise PermanentError(
            f"CompleteMultipartUpload {key!r}: the upload was started without the file's MD5 and the object "
            f"is larger than 5 GiB, so it cannot be copied to add it",
            code="md5_missing",
            operation="CopyObject",
            key=key,
        )
    params = _object_params(info.content_type, info.metadata, None, b64(whole))
    boto.call(
        "CopyObject",
        key,
        Key=key,
        CopySource={"Bucket": boto.bucket, "Key": key},
        CopySourceIfMatch=f'"{etag}"',
        MetadataDirective="REPLACE",
        **params,
    )


_SNAKE_RE = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(operation: str) -> str:
    """``HeadObject`` -> ``head_object`` (botocore's client method names)."""
    return _SNAKE_RE.sub("_", operation).lower()


def _rfc3339(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")


__all__ = ["MD5_META", "S3Remote", "listed_md5", "multipart_etag", "reported_md5"]
