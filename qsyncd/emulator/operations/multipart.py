"""Multipart operations: Initiate, UploadMultipart (also part copy), ListMultipart, Complete and Abort."""

from __future__ import annotations

import uuid
from typing import Any

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Context, Request, Response
from qsyncd.emulator.operations.inputs import (
    int_param,
    json_body,
    metadata,
    mime_type,
    require_length,
    storage_class,
    stored_headers,
    stream_into,
)
from qsyncd.emulator.operations.objects import check_copy_conditions, split_source
from qsyncd.emulator.operations.versioning import version_headers
from qsyncd.emulator.store import CHUNK, MAX_PART_SIZE, MAX_PARTS, PartMeta, UploadState
from qsyncd.emulator.wire import parse_range, rfc3339


def initiate_multipart_upload(req: Request, ctx: Context) -> Response:
    """POST /<bucket>/<key>?uploads: a fresh upload id (creation time first, so ids sort by age)."""
    sclass = storage_class(req)
    meta_headers = metadata(req)
    now = ctx.now()
    upload_id = f"{int(now * 1e6):014x}{uuid.uuid4().hex[:18]}"
    ctx.store.uploads.initiate(
        req.bucket,
        UploadState(
            key=req.key,
            upload_id=upload_id,
            created=now,
            mime_type=mime_type(req),
            storage_class=sclass,
            metadata=meta_headers,
            headers=stored_headers(req),
        ),
    )
    return Response.json(200, {"bucket": req.bucket, "key": req.key, "upload_id": upload_id}, upload_id=upload_id)


def upload_multipart(req: Request, ctx: Context) -> Response:
    """PUT /<bucket>/<key>?upload_id=..&part_number=..: store one part (replacing one of that number)."""
    upload_id = req.query.get("upload_id", "")
    try:
        number = int(req.query.get("part_number", ""))
    except ValueError:
        raise EmulatorError(400, "invalid_argument", "part_number must be an integer") from None
    if not 0 <= number <= MAX_PARTS:
        raise EmulatorError(400, "invalid_argument", "part_number must be within 0..10000")
    if not upload_id:
        raise EmulatorError(400, "invalid_argument", "upload_id is required")
    uploads = ctx.store.uploads
    uploads.get(req.bucket, upload_id, req.key)
    source = req.headers.get("x-qs-copy-source")
    if source:
        return _copy_part(req, ctx, upload_id, number, source)
    require_length(req, MAX_PART_SIZE)
    writer = uploads.part_writer(req.bucket, upload_id, req.key)
    md5 = stream_into(req, writer, MAX_PART_SIZE)
    part = PartMeta(part_number=number, size=writer.size, etag=md5, created=ctx.now())
    try:
        uploads.commit_part(req.bucket, upload_id, req.key, writer.path, part)
    except BaseException:
        writer.discard()
        raise
    return Response.empty(201, [("ETag", f'"{md5}"')])


def _copy_part(req: Request, ctx: Context, upload_id: str, number: int, source: str) -> Response:
    """UploadMultipart with ``x-qs-copy-source`` (and ``x-qs-copy-range: bytes=a-b``): the part is that
    range of the source object (all of it without a range), at most 5 GiB."""
    sbucket, skey, version = split_source(source)
    if not skey:
        raise EmulatorError(400, "invalid_argument", "the copy source must be /<bucket>/<key>")
    try:
        if version is None:
            src_meta, fh = ctx.store.objects.open(sbucket, skey)
        else:
            src_meta, fh = ctx.store.objects.open_version(sbucket, skey, version)
    except EmulatorError:
        raise EmulatorError(404, "object_not_exists", "the source object does not exist") from None
    with fh:
        check_copy_conditions(req, src_meta)
        start, end = 0, src_meta.size - 1
        wanted = req.headers.get("x-qs-copy-range")
        if wanted is not None:
            parsed = parse_range(wanted, src_meta.size)
            if parsed is None:
                raise EmulatorError(416, "invalid_range", "the copy range cannot be satisfied")
            start, end = parsed
        if end - start + 1 > MAX_PART_SIZE:
            raise EmulatorError(400, "entity_too_large", "a part is at most 5 GiB")
        writer = ctx.store.uploads.part_writer(req.bucket, upload_id, req.key)
        try:
            fh.seek(start)
            left = end - start + 1
            while left > 0 and (chunk := fh.read(min(CHUNK, left))):
                writer.write(chunk)
                left -= len(chunk)
            md5 = writer.finish()
            part = PartMeta(part_number=number, size=writer.size, etag=md5, created=ctx.now())
            ctx.store.uploads.commit_part(req.bucket, upload_id, req.key, writer.path, part)
        except BaseException:
            writer.discard()
            raise
    headers = [("ETag", f'"{md5}"')]
    if wanted is not None:
        headers.append(("x-qs-content-copy-range", f"bytes {start}-{end}/{src_meta.size}"))
    return Response.empty(201, headers)


def list_multipart(req: Request, ctx: Context) -> Response:
    """GET /<bucket>/<key>?upload_id=..: the parts above ``part_number_marker``."""
    upload_id = req.query.get("upload_id", "")
    limit = int_param(req.query, "limit", 1000, 1000)
    marker_raw = req.query.get("part_number_marker", "")
    try:
        marker = int(marker_raw) if marker_raw != "" else None
    except ValueError:
        raise EmulatorError(400, "invalid_argument", "part_number_marker must be an integer") from None
    parts = ctx.store.uploads.parts(req.bucket, upload_id, req.key)
    total = len(parts)
    if marker is not None:
        parts = [p for p in parts if p.part_number > marker]
    return Response.json(
        200,
        {
            "count": total,
            "object_parts": [
                {"part_number": p.part_number, "size": p.size, "created": rfc3339(p.created), "etag": p.etag}
                for p in parts[:limit]
            ],
        },
    )


def complete_multipart_upload(req: Request, ctx: Context) -> Response:
    """POST /<bucket>/<key>?upload_id=.. with ``{"object_parts": [...]}``: the parts become the object."""
    upload_id = req.query.get("upload_id", "")
    ctx.store.uploads.get(req.bucket, upload_id, req.key)
    doc = json_body(req)
    parts = doc.get("object_parts") if isinstance(doc, dict) else None
    if not isinstance(parts, list):
        raise EmulatorError(400, "invalid_json", 'expected {"object_parts": [...]}')
    listed: list[dict[str, Any]] = []
    for entry in parts:
        if not isinstance(entry, dict):
            raise EmulatorError(400, "invalid_json", "object_parts entries must be objects")
        number = entry.get("part_number")
        if isinstance(number, str) and number.isdigit():
            number = int(number)
        if not isinstance(number, int) or isinstance(number, bool):
            raise EmulatorError(400, "invalid_argument", "part_number must be an integer")
        listed.append({"part_number": number, "etag": entry.get("etag"), "size": entry.get("size")})
    etag_header = req.headers.get("ETag")
    etag = etag_header.strip().strip('"') if etag_header else None
    stored = ctx.store.uploads.complete(req.bucket, upload_id, req.key, listed, etag or None)
    return Response.empty(201, version_headers(ctx, req.bucket, stored))


def abort_multipart_upload(req: Request, ctx: Context) -> Response:
    """DELETE /<bucket>/<key>?upload_id=..: 204, also for an unknown upload."""
    ctx.store.uploads.abort(req.bucket, req.query.get("upload_id", ""))
    return Response.empty(204)
