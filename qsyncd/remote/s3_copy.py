"""Copy, move and the versioning state on S3: ``Remote.copy``/``move``/``versioning`` for ``S3Remote``.

It sends through ``S3Remote``'s botocore client (``call(operation, key, **params)``, errors already
``qsyncd.errors`` types) and imports no botocore itself.

The caller names the source by what ``S3Remote.head`` reports: the whole-file MD5 from
``x-amz-meta-md5chksum`` (``s3_meta``), not the store's ETag, which for a multipart object is
``md5(part MD5s)-N``. So a copy first HEADs the source and compares the reported MD5 and the size with
the caller's (``SourceChanged`` if they differ, ``NotFound`` if it is gone), then copies conditional on
the store's real ETag (``CopySourceIfMatch``), so a source replaced between the HEAD and the copy fails
with 412 (``SourceChanged``) instead of being copied:

* up to ``max_copy_size`` (5 GiB): CopyObject with ``MetadataDirective=COPY``, which keeps the content
  type and every ``x-amz-meta-*``, ``md5chksum`` among them, so ``head(key)`` reports the same MD5;
* above it: CreateMultipartUpload with the source's content type and metadata (and ``md5chksum``:
  the source's, or its plain-MD5 ETag), UploadPartCopy per byte range (``CopySourceRange``,
  ``CopySourceIfMatch``), CompleteMultipartUpload with the ETags the part copies returned (SeaweedFS
  4.48 answers a part copy that spans chunks with ``<hex>-N``, not the part's MD5, so they are passed
  on as given, not checked);
* move: the copy, then DeleteObject of the source (S3 has no move); a failed delete raises its error
  and leaves the copy in place;
* versioning: GetBucketVersioning's ``Status`` (``Enabled``/``Suspended``; absent: never enabled).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from qsyncd.errors import NotFound, SourceChanged, TransientError
from qsyncd.remote.base import PartInfo
from qsyncd.remote.copies import check_copy, copy_by_parts, source_changed, source_missing
from qsyncd.remote.qingstor_checks import normalise_etag
from qsyncd.remote.s3_meta import MD5_META, b64, reported_md5

Call = Callable[..., dict[str, Any]]  # (operation, key, **params) -> botocore's answer
_HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
_STATES = {"Enabled": "enabled", "Suspended": "suspended", "": "off"}


class S3Copies:
    """The server-side requests of one ``S3Remote``."""

    def __init__(self, call: Call, bucket: str, max_copy_size: int, check_key: Callable[[str], None]) -> None:
        self._call = call
        self._bucket = bucket
        self._limit = max_copy_size
        self._check_key = check_key

    def copy(self, source: str, key: str, etag: str, size: int, operation: str = "CopyObject") -> str:
        """``Remote.copy``: HEAD, then CopyObject (or the part copies above the limit), both conditional."""
        tag = check_copy(source, key, etag, size, self._check_key)
        try:
            head = self._call("HeadObject", source, Key=source)
        except NotFound as err:
            raise source_missing(err, operation, source, key) from None
        metadata = {str(k).lower(): str(v) for k, v in (head.get("Metadata") or {}).items()}
        real = normalise_etag(head.get("ETag"))
        found = (reported_md5(real, metadata), int(head.get("ContentLength") or 0))
        if found != (tag, size):
            detail = f"ETag {found[0]}, {found[1]} bytes instead of {tag}, {size} bytes"
            raise source_changed(operation, source, key, detail)
        where = {"CopySource": {"Bucket": self._bucket, "Key": source}, "CopySourceIfMatch": f'"{real}"'}
        try:
            if size <= self._limit:
                reply = self._call("CopyObject", key, Key=key, MetadataDirective="COPY", **where)
                return reported_md5(normalise_etag((reply.get("CopyObjectResult") or {}).get("ETag")), metadata)
            if MD5_META not in metadata and _HEX32_RE.match(real):
                metadata[MD5_META] = b64(real)  # a single-PUT source: its ETag is its MD5
            content_type = str(head.get("ContentType") or "application/octet-stream")
            return self._by_parts(key, size, where, content_type, metadata)
        except SourceChanged as err:
            raise source_changed(operation, source, key, f"its ETag is no longer {real}", err) from None
        except NotFound as err:
            if err.code == "upload_not_exists":
                raise
            raise source_missing(err, operation, source, key) from None

    def _by_parts(self, key: str, size: int, where: dict[str, Any], content_type: str, metadata: dict[str, str]) -> str:
        completed: dict[str, Any] = {}

        def initiate() -> str:
            reply = self._call("CreateMultipartUpload", key, Key=key, ContentType=content_type, Metadata=metadata)
            return str(reply.get("UploadId") or "")

        def copy_part(upload_id: str, number: int, first: int, last: int) -> str:
            reply = self._call(
                "UploadPartCopy",
                key,
                Key=key,
                UploadId=upload_id,
                PartNumber=number + 1,
                CopySourceRange=f"bytes={first}-{last}",
                **where,
            )
            return str((reply.get("CopyPartResult") or {}).get("ETag") or "")

        def complete(upload_id: str, parts: Sequence[PartInfo]) -> None:
            upload = {"Parts": [{"ETag": p.etag, "PartNumber": p.part_number + 1} for p in parts]}
            completed.update(
                self._call("CompleteMultipartUpload", key, Key=key, UploadId=upload_id, MultipartUpload=upload)
            )

        def abort(upload_id: str) -> None:
            self._call("AbortMultipartUpload", key, Key=key, UploadId=upload_id)

        copy_by_parts(size, self._limit, initiate=initiate, copy_part=copy_part, complete=complete, abort=abort)
        return reported_md5(normalise_etag(completed.get("ETag")), metadata)

    def move(self, source: str, key: str, etag: str, size: int) -> str:
        """``Remote.move``: the copy, then DeleteObject of the source (its error, if any, is raised)."""
        new = self.copy(source, key, etag, size, operation="MoveObject")
        self._call("DeleteObject", source, Key=source)
        return new

    def versioning(self) -> str:
        """``Remote.versioning``: GetBucketVersioning; a store without it (501 NotImplemented) is "off"."""
        try:
            reply = self._call("GetBucketVersioning", "")
        except TransientError as err:
            if err.status == 501 or err.code == "NotImplemented":
                return "off"
            raise
        status = str(reply.get("Status") or "")
        state = _STATES.get(status)
        if state is None:
            raise TransientError(
                f"GetBucketVersioning failed: the store reports an unknown versioning status {status!r}",
                code="invalid_response",
                operation="GetBucketVersioning",
            )
        return state
