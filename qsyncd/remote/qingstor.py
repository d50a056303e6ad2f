"""``QingStorRemote``: the ``Remote`` contract for one QingStor bucket, on two transports.

Requests sent a few times per upload (HEAD bucket, Initiate, ListMultipart, Complete, Abort,
ListMultipartUploads) are built and signed by qingstor-sdk 2.6.0 (``qingstor_sdk``, the only module
that imports it); the four sent once per file or part (HeadObject, PutObject, UploadMultipart,
ListObjects) are signed by qsyncd and sent on the same session's pool (``qingstor_fast``). Both check
the success status exactly (PutObject 201, UploadMultipart 201, Initiate 200, Complete 201, Abort 204,
Head 200, List 200) and turn anything else into a ``qsyncd.errors`` type (``qingstor_reply``,
QingStor's codes in ``translate``). Arguments are checked first (``qingstor_checks``): the SDK's
"validation" never notices a missing ``upload_id``/``part_number``. Copy, move and the versioning
state are in ``qingstor_copy`` (copy and move hand-signed, part copy built by the SDK).

This module holds what the API's answers mean: paging and the parsing of listings.

* ListObjects pages with ``limit`` 1000 (``iter_objects``'s ``page_size``) and ``marker`` =
  ``next_marker`` (or the last key or common prefix of the page) while ``has_more`` is true; each page
  is sorted, a key at or before the last one yielded is dropped (a server whose marker is inclusive),
  and its quoted ``etag`` values are unquoted. ``iter_objects`` yields a page before it asks for the next.

Decisions where the API is not confirmed: ListMultipart has no ``has_more``; paging continues
while a page is full (``limit`` 1000) or ``has_more`` is true, with ``part_number_marker`` = the
last part number seen, and duplicate part numbers are dropped (safe whether the marker is
inclusive or exclusive). Abort treats 404 ``upload_not_exists`` as success (already gone). A
HEAD 401/403 has no body and therefore no error code; a diagnostic ``ListObjects limit=1`` is
sent to learn the code so the message can say which credential is wrong.
"""

from __future__ import annotations

import base64
import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from qsyncd.remote.base import LIST_PAGE, Body, ObjectInfo, PartInfo, UploadInfo, check_page_size
from qsyncd.remote.body import SizedBody
from qsyncd.remote.copies import MAX_COPY_SIZE, check_limit
from qsyncd.remote.endpoint import Endpoint, ZoneSite, parse_endpoint
from qsyncd.remote.qingstor_checks import (
    HEX32_RE,
    check_content_type,
    check_key,
    check_md5_b64,
    check_part_number,
    check_settings,
    check_size,
    check_storage_class,
    check_upload_id,
    meta_headers,
    normalise_etag,
    object_headers,
)
from qsyncd.remote.qingstor_copy import QingStorCopies
from qsyncd.remote.qingstor_fast import FastTransport
from qsyncd.remote.qingstor_reply import Judge, Reply, invalid_response
from qsyncd.remote.qingstor_sdk import Clients, SdkTransport, diagnose_auth_code
from qsyncd.remote.signature import Signer

LIST_LIMIT = 1000


class QingStorRemote:
    """One QingStor bucket, safe for concurrent use from many threads."""

    needs_md5_at_initiate = False  # Complete takes the whole-file MD5 as the object's ETag

    def __init__(
        self,
        *,
        endpoint: str,
        zone: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_copy_size: int = MAX_COPY_SIZE,
    ) -> None:
        self._endpoint = parse_endpoint(endpoint)
        check_settings(bucket, zone, access_key_id, secret_access_key, (connect_timeout, read_timeout))
        self._zone = zone
        self._bucket_name = bucket
        self._access_key_id = access_key_id
        timeout = (float(connect_timeout), float(read_timeout))
        site = ZoneSite(self._endpoint, zone)
        self._clients = Clients(site, bucket, access_key_id, secret_access_key)
        judge = Judge(bucket, zone, site.base_url, functools.partial(diagnose_auth_code, self._clients, timeout))
        self._sdk = SdkTransport(self._clients, timeout, judge, site.contacted)
        self._fast = FastTransport(
            self._clients, site, bucket, Signer(access_key_id, secret_access_key), timeout, judge
        )
        self._copies = QingStorCopies(self, self._sdk, self._fast, bucket, check_limit(max_copy_size))

    def __repr__(self) -> str:
        return (
            f"QingStorRemote(endpoint={str(self._endpoint)!r}, zone={self._zone!r}, "
            f"bucket={self._bucket_name!r}, access_key_id={self._access_key_id!r})"
        )

    def __enter__(self) -> QingStorRemote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        """The endpoint as ``scheme://host[:port]``."""
        return str(self._endpoint)

    def close(self) -> None:
        """Close every thread's HTTP session; later calls open new ones."""
        self._clients.close()

    # ---- Remote -------------------------------------------------------------------------------

    def probe(self) -> None:
        """Check that the bucket exists and the credentials work (HEAD bucket)."""
        self._sdk.head_bucket()

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's info, or ``None`` when it does not exist (HEAD object 404)."""
        check_key(key)
        result = self._fast.send("HeadObject", "HEAD", key, {}, 200, missing_ok=lambda status, _code: status == 404)
        if result is None:
            return None
        headers = result.headers
        metadata = {
            name.lower()[len("x-qs-meta-") :]: value
            for name, value in headers.items()
            if name.lower().startswith("x-qs-meta-")
        }
        try:
            size = int(headers.get("Content-Length", ""))
        except ValueError:
            raise invalid_response("HeadObject", key, result, "no valid Content-Length") from None
        return ObjectInfo(
            key=key,
            size=size,
            etag=normalise_etag(headers.get("ETag")),
            content_type=headers.get("Content-Type", ""),
            metadata=metadata,
        )

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
        """Store ``size`` bytes of ``body`` under ``key`` (PutObject, 201); return its ETag."""
        check_key(key)
        check_size(size)
        check_md5_b64(md5_b64)
        headers = object_headers(content_type, metadata, storage_class)
        headers["content-length"] = str(size)
        headers["content-md5"] = md5_b64
        result = self._fast.sent("PutObject", "PUT", key, headers, 201, body=SizedBody(body, size) if size else None)
        return normalise_etag(result.headers.get("ETag")) or base64.b64decode(md5_b64).hex()

    def initiate(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
        md5_hex: str | None = None,
    ) -> str:
        """Start a multipart upload (InitiateMultipartUpload, 200); return its upload id (``md5_hex`` is
        not needed: Complete sets the ETag)."""
        check_key(key)
        check_storage_class(storage_class)
        check_content_type(content_type)
        result = self._sdk.initiate(
            key, content_type or "application/octet-stream", meta_headers(metadata), storage_class
        )
        upload_id = result.get("upload_id")
        if not isinstance(upload_id, str) or not upload_id:
            raise invalid_response(
                "InitiateMultipartUpload",
                key,
                result,
                "no upload_id in the body (is its Content-Type exactly application/json?)",
            )
        return upload_id

    def upload_part(self, key: str, upload_id: str, part_number: int, body: Body, size: int, md5_b64: str) -> str:
        """Store one 0-based part (UploadMultipart, 201); return its ETag."""
        check_key(key)
        check_upload_id(upload_id)
        check_part_number(part_number)
        check_size(size)
        check_md5_b64(md5_b64)
        result = self._fast.sent(
            "UploadMultipart",
            "PUT",
            key,
            {"content-length": str(size), "content-md5": md5_b64, "content-type": "application/octet-stream"},
            201,
            query=(("part_number", str(part_number)), ("upload_id", upload_id)),
            body=SizedBody(body, size) if size else None,
        )
        return normalise_etag(result.headers.get("ETag")) or base64.b64decode(md5_b64).hex()

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """All stored parts of an upload, ascending, paging through ListMultipart (200)."""
        check_key(key)
        check_upload_id(upload_id)
        parts: dict[int, PartInfo] = {}
        marker: str | None = None
        while True:
            result = self._sdk.list_parts_page(key, upload_id, LIST_LIMIT, marker)
            page = result.get("object_parts") or []
            new = 0
            try:
                for item in page:
                    number = int(item["part_number"])
                    if number not in parts:
                        new += 1
                    parts[number] = PartInfo(
                        part_number=number,
                        size=int(item.get("size", 0)),
                        etag=normalise_etag(item.get("etag")),
                    )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise invalid_response("ListMultipart", key, result, f"malformed object_parts ({exc!r})") from None
            has_more = result.get("has_more")
            more = bool(has_more) if has_more is not None else len(page) >= LIST_LIMIT
            if not page or not more or new == 0:
                break
            marker = str(max(parts))
        return [parts[n] for n in sorted(parts)]

    def complete(self, key: str, upload_id: str, parts: Sequence[PartInfo], etag: str) -> None:
        """Assemble ``parts`` (strictly ascending) into the object (CompleteMultipart, 201).

        ``etag`` (hex MD5 of the whole file) is sent quoted as the ``ETag`` request header and
        becomes the object's ETag.
        """
        check_key(key)
        check_upload_id(upload_id)
        if not parts:
            raise ValueError("complete() needs at least one part")
        numbers = [p.part_number for p in parts]
        for number in numbers:
            check_part_number(number)
        if any(a >= b for a, b in itertools.pairwise(numbers)):
            raise ValueError(f"parts must be strictly ascending by part_number, got {numbers}")
        whole = normalise_etag(etag)
        if not HEX32_RE.match(whole):
            raise ValueError("etag must be a 32-digit hex MD5")
        object_parts: list[dict[str, Any]] = [
            {"part_number": p.part_number, "etag": normalise_etag(p.etag), "size": p.size} for p in parts
        ]
        self._sdk.complete(key, upload_id, whole, object_parts)

    def abort(self, key: str, upload_id: str) -> None:
        """Discard an upload (AbortMultipartUpload, 204); an upload already gone is fine."""
        check_key(key)
        check_upload_id(upload_id)
        self._sdk.abort(key, upload_id)

    def list_uploads(self, prefix: str = "") -> list[UploadInfo]:
        """All unfinished multipart uploads under ``prefix``, paging ListMultipartUploads (200)."""
        if not isinstance(prefix, str):
            raise ValueError("prefix must be a str")
        uploads: dict[tuple[str, str], UploadInfo] = {}
        key_marker: str | None = None
        id_marker: str | None = None
        while True:
            result = self._sdk.list_uploads_page(prefix, LIST_LIMIT, key_marker, id_marker)
            page = result.get("uploads") or []
            new = 0
            last: tuple[str, str] | None = None
            try:
                for item in page:
                    last = ident = (str(item["key"]), str(item["upload_id"]))
                    if ident not in uploads:
                        new += 1
                    uploads[ident] = UploadInfo(key=ident[0], upload_id=ident[1], created=str(item.get("created", "")))
            except (KeyError, TypeError, AttributeError) as exc:
                raise invalid_response("ListMultipartUploads", prefix, result, f"malformed uploads ({exc!r})") from None
            if last is None or not result.get("has_more") or new == 0:
                break
            key_marker = str(result.get("next_key_marker") or last[0])
            id_marker = str(result.get("next_upload_id_marker") or last[1])
        return sorted(uploads.values(), key=lambda u: (u.key, u.upload_id))

    def copy(self, source: str, key: str, *, etag: str, size: int) -> str:
        """Server-side copy, conditional on the source's ETag (``qingstor_copy``); the new object's ETag."""
        return self._copies.copy(source, key, etag, size)

    def move(self, source: str, key: str, *, etag: str, size: int) -> str:
        """Server-side move (one PUT with ``x-qs-move-source``, ``qingstor_copy``); the new object's ETag."""
        return self._copies.move(source, key, etag, size)

    def versioning(self) -> str:
        """The bucket's versioning state (GET ?versioning): "enabled", "suspended" or "off"."""
        return self._copies.versioning()

    def list_objects(self, prefix: str, delimiter: str = "") -> list[ObjectInfo]:
        """Every object under ``prefix`` (common prefixes left out), paging ListObjects (200)."""
        return list(self.iter_objects(prefix, delimiter))

    def iter_objects(self, prefix: str, delimiter: str = "", *, page_size: int = LIST_PAGE) -> Iterator[ObjectInfo]:
        """The objects under ``prefix`` one ListObjects page (200) at a time, in key order."""
        if not isinstance(prefix, str) or not isinstance(delimiter, str):
            raise ValueError("prefix and delimiter must be str")
        check_page_size(page_size)
        return self._pages(prefix, delimiter, page_size)

    def _pages(self, prefix: str, delimiter: str, page_size: int) -> Iterator[ObjectInfo]:
        marker: str | None = None
        yielded = ""  # the last key yielded: a page is sorted, and keys at or before it are not sent again
        while True:
            params = {"prefix": prefix, "delimiter": delimiter, "limit": str(page_size), "marker": marker}
            result = self._fast.sent(
                "ListObjects",
                "GET",
                prefix,
                {},
                200,
                query=[(name, value) for name, value in params.items() if value],
                bucket_level=True,
            )
            page, prefixes, last = _listed(prefix, result)
            fresh = [o for o in page if o.key > yielded]
            has_more = result.get("has_more")
            more = bool(has_more) if has_more is not None else len(page) + len(prefixes) >= page_size
            next_marker = str(result.get("next_marker") or last)
            yield from fresh
            if fresh:
                yielded = fresh[-1].key
            # Stop when a page brings nothing new and the marker does not move (a server ignoring it).
            if not more or not next_marker or (not fresh and next_marker == marker):
                break
            marker = next_marker


def _listed(prefix: str, result: Reply) -> tuple[list[ObjectInfo], list[str], str]:
    """One ListObjects page: its objects sorted by key, its common prefixes, the last name of either."""
    page = result.get("keys") or []
    prefixes = result.get("common_prefixes") or []
    try:
        objects = sorted(
            (
                ObjectInfo(
                    key=str(item["key"]),
                    size=int(item.get("size", 0)),
                    etag=normalise_etag(item.get("etag")),
                    content_type=str(item.get("mime_type") or ""),
                )
                for item in page
            ),
            key=lambda o: o.key,
        )
        names = [str(cp) for cp in prefixes]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise invalid_response("ListObjects", prefix, result, f"malformed keys ({exc!r})") from None
    last = max([o.key for o in objects[-1:]] + names, default="")
    return objects, names, last


__all__ = ["Endpoint", "QingStorRemote", "normalise_etag", "parse_endpoint"]
