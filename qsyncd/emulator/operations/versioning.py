"""Bucket versioning operations: PUT/GET Bucket Versioning (``?versioning``), List Object Versions (``?versions``).

The object side of versioning (``version_id`` on GET/HEAD/DELETE, ``x-qs-version-id`` answers,
copying a version) lives with the object operations; the rules are listed in
:mod:`qsyncd.emulator.operations`.
"""

from __future__ import annotations

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Context, Request, Response
from qsyncd.emulator.operations.buckets import OWNER
from qsyncd.emulator.operations.inputs import int_param, json_body
from qsyncd.emulator.store import ObjectMeta
from qsyncd.emulator.store.listing import page_versions
from qsyncd.emulator.wire import rfc3339

SETTABLE = ("ENABLED", "SUSPENDED")


def version_headers(ctx: Context, bucket: str, meta: ObjectMeta) -> list[tuple[str, str]]:
    """``x-qs-version-id`` of ``meta`` once the bucket's versioning has been enabled (or suspended)."""
    if ctx.store.buckets.get(bucket).versioning == "DISABLED":
        return []
    return [("x-qs-version-id", meta.wire_version_id())]


def put_bucket_versioning(req: Request, ctx: Context) -> Response:
    """PUT /<bucket>?versioning with ``{"status": "ENABLED" | "SUSPENDED"}``: 200."""
    doc = json_body(req)
    status = doc.get("status") if isinstance(doc, dict) else None
    if not isinstance(status, str) or status.upper() not in SETTABLE:
        raise EmulatorError(400, "invalid_argument", 'status must be "ENABLED" or "SUSPENDED"')
    ctx.store.buckets.set_versioning(req.bucket, status.upper())
    return Response.empty(200)


def get_bucket_versioning(req: Request, ctx: Context) -> Response:
    """GET /<bucket>?versioning: ``{"status": "DISABLED" | "ENABLED" | "SUSPENDED"}``."""
    return Response.json(200, {"status": ctx.store.buckets.get(req.bucket).versioning})


def list_object_versions(req: Request, ctx: Context) -> Response:
    """GET /<bucket>?versions: one page of every version and delete marker, by key, newest first."""
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    key_marker = req.query.get("key_marker", "") or req.query.get("key-marker", "")
    vid_marker = req.query.get("version_id_marker", "") or req.query.get("version-id-marker", "")
    limit = int_param(req.query, "limit", 100, 1000)
    entries = ctx.store.objects.all_versions(req.bucket, prefix)
    page, prefixes, has_more = page_versions(entries, prefix, delimiter, key_marker, vid_marker, limit)
    next_key, next_vid = "", ""
    if page and (not prefixes or page[-1][0].key >= prefixes[-1]):
        next_key, next_vid = page[-1][0].key, page[-1][0].wire_version_id()
    elif prefixes:
        next_key = prefixes[-1]
    return Response.json(
        200,
        {
            "name": req.bucket,
            "owner": OWNER,
            "prefix": prefix,
            "delimiter": delimiter,
            "key_marker": key_marker,
            "version_id_marker": vid_marker,
            "limit": limit,
            "has_more": has_more,
            "next_key_marker": next_key,
            "next_version_id_marker": next_vid,
            "keys": [
                {
                    "key": meta.key,
                    "version_id": meta.wire_version_id(),
                    "is_latest": latest,
                    "delete_marker": meta.delete_marker,
                    "size": meta.size,
                    "etag": meta.etag,
                    "mime_type": meta.mime_type,
                    "encrypted": False,
                    "storage_class": meta.storage_class,
                    "created": rfc3339(meta.created),
                    "modified": rfc3339(meta.modified),
                }
                for meta, latest in page
            ],
            "common_prefixes": prefixes,
        },
    )
