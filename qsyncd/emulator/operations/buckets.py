"""Service and bucket operations: ListBuckets, Put/Head/Delete Bucket, statistics and the listings."""

from __future__ import annotations

from typing import Any

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Context, Request, Response
from qsyncd.emulator.operations.inputs import int_param, json_body
from qsyncd.emulator.wire import rfc3339, valid_bucket_name, valid_key

OWNER = {"id": "usr-qsyncdemulator", "name": "emulator"}


def list_buckets(req: Request, ctx: Context) -> Response:
    """GET / (a ``Location`` header other than the emulator's zone lists nothing)."""
    location = req.headers.get("Location")
    buckets = [] if location and location.lower() != ctx.zone else ctx.store.buckets.all()
    return Response.json(
        200,
        {
            "count": len(buckets),
            "buckets": [
                {"name": b.name, "location": ctx.zone, "url": f"{ctx.url}/{b.name}", "created": rfc3339(b.created)}
                for b in buckets
            ],
        },
    )


def put_bucket(req: Request, ctx: Context) -> Response:
    """PUT /<bucket>."""
    if not valid_bucket_name(req.bucket):
        raise EmulatorError(400, "invalid_bucket_name", "bucket names are 6-63 chars of [a-z0-9-]")
    ctx.store.buckets.create(req.bucket)
    return Response.empty(201, [("Location", f"/{req.bucket}")])


def head_bucket(req: Request, ctx: Context) -> Response:
    """HEAD /<bucket> (dispatch has checked that it exists)."""
    return Response.empty(200)


def delete_bucket(req: Request, ctx: Context) -> Response:
    """DELETE /<bucket>: 409 while it holds objects."""
    ctx.store.buckets.delete(req.bucket)
    return Response.empty(204)


def get_bucket_statistics(req: Request, ctx: Context) -> Response:
    """GET /<bucket>?stats."""
    count, size, classes = ctx.store.buckets.stats(req.bucket)
    state = ctx.store.buckets.get(req.bucket)
    return Response.json(
        200,
        {
            "name": req.bucket,
            "url": f"{ctx.url}/{req.bucket}",
            "location": ctx.zone,
            "created": rfc3339(state.created),
            "status": "active",
            "count": count,
            "size": size,
            "storage_classes": {
                sc: {"count": c, "size": s, "billing_size": s} for sc, (c, s) in sorted(classes.items())
            },
        },
    )


def list_objects(req: Request, ctx: Context) -> Response:
    """GET /<bucket>: one page of keys and common prefixes."""
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    marker = req.query.get("marker", "")
    limit = int_param(req.query, "limit", 100, 1000)
    objects, prefixes, has_more = ctx.store.objects.page(req.bucket, prefix, delimiter, marker, limit)
    last = max([o.key for o in objects[-1:]] + prefixes[-1:], default="")
    return Response.json(
        200,
        {
            "name": req.bucket,
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


def delete_multiple_objects(req: Request, ctx: Context) -> Response:
    """POST /<bucket>?delete with ``{"objects": [{"key": ...}], "quiet": bool}`` (Content-MD5 required)."""
    if req.headers.get("Content-MD5") is None:
        raise EmulatorError(400, "invalid_request", "Content-MD5 is required")
    doc = json_body(req)
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise EmulatorError(400, "invalid_json", 'expected {"objects": [...]}')
    quiet = doc.get("quiet")
    if quiet is not None and not isinstance(quiet, bool):
        raise EmulatorError(400, "invalid_json", "quiet must be a boolean or null")
    if len(doc["objects"]) > 1000:
        raise EmulatorError(400, "invalid_request", "at most 1000 objects per request")
    deleted: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    for entry in doc["objects"]:
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not valid_key(key):
            errors.append({"key": str(key), "code": "invalid_object_name", "message": "invalid key"})
            continue
        ctx.store.objects.delete(req.bucket, key)
        deleted.append({"key": key})
    out: dict[str, Any] = {"errors": errors}
    if not quiet:
        out["deleted"] = deleted
    return Response.json(200, out)


def list_multipart_uploads(req: Request, ctx: Context) -> Response:
    """GET /<bucket>?uploads: one page of unfinished uploads."""
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    key_marker = req.query.get("key_marker", "")
    upload_id_marker = req.query.get("upload_id_marker", "")
    limit = int_param(req.query, "limit", 200, 1000)
    uploads, prefixes, has_more = ctx.store.uploads.page(
        req.bucket, prefix, delimiter, key_marker, upload_id_marker, limit
    )
    next_key, next_id = "", ""
    if uploads and (not prefixes or uploads[-1].key >= prefixes[-1]):
        next_key, next_id = uploads[-1].key, uploads[-1].upload_id
    elif prefixes:
        next_key = prefixes[-1]
    return Response.json(
        200,
        {
            "name": req.bucket,
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
