"""Object operations: PutObject (also copy and move), HeadObject, GetObject, DeleteObject.

Each takes ``version_id`` where QingStor does (GET, HEAD, DELETE, and a copy source ending in
``?version_id=``) and answers with ``x-qs-version-id`` once the bucket's versioning is on."""

from __future__ import annotations

from urllib.parse import unquote

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Context, Request, Response
from qsyncd.emulator.operations.inputs import (
    metadata,
    mime_type,
    require_length,
    storage_class,
    stored_headers,
    stream_into,
)
from qsyncd.emulator.operations.versioning import version_headers
from qsyncd.emulator.store import ObjectMeta
from qsyncd.emulator.wire import http_date, parse_date, parse_range

MAX_OBJECT_SIZE = 5 * 1024 * 1024 * 1024
RESPONSE_OVERRIDES = {  # GetObject query parameter -> the response header it replaces
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def object_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    """The headers HEAD and GET answer with for an object."""
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


def not_modified(req: Request, meta: ObjectMeta) -> Response | None:
    """Evaluate the If-* headers: a 304 answer, None to go on, or raise 412."""
    etag = f'"{meta.etag}"'
    if_match = req.headers.get("If-Match")
    if if_match is not None:
        tags = [t.strip() for t in if_match.split(",")]
        if "*" not in tags and etag not in tags and meta.etag not in tags:
            raise EmulatorError(412, "precondition_failed", "If-Match failed")
    ius = req.headers.get("If-Unmodified-Since")
    if ius is not None and if_match is None:
        when = parse_date(ius)
        if when is not None and int(meta.modified) > when:
            raise EmulatorError(412, "precondition_failed", "If-Unmodified-Since failed")
    inm = req.headers.get("If-None-Match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        if "*" in tags or etag in tags or meta.etag in tags:
            return Response.empty(304, [("ETag", etag)])
    ims = req.headers.get("If-Modified-Since")
    if ims is not None and inm is None:
        when = parse_date(ims)
        if when is not None and int(meta.modified) <= when:
            return Response.empty(304, [("ETag", etag)])
    return None


def put_object(req: Request, ctx: Context) -> Response:
    """PUT /<bucket>/<key>: store the body, or copy/move with ``x-qs-copy-source`` / ``x-qs-move-source``."""
    if req.headers.get("x-qs-fetch-source"):
        raise EmulatorError(501, "not_implemented", "x-qs-fetch-source is not implemented by the emulator")
    sclass = storage_class(req)
    meta_headers = metadata(req)
    source = req.headers.get("x-qs-copy-source") or req.headers.get("x-qs-move-source")
    if source:
        return _copy_or_move(req, ctx, source, sclass, meta_headers)
    require_length(req, MAX_OBJECT_SIZE)
    writer = ctx.store.objects.writer(req.bucket, req.key)
    md5 = stream_into(req, writer, MAX_OBJECT_SIZE)
    now = ctx.now()
    meta = ObjectMeta(
        key=req.key,
        size=writer.size,
        etag=md5,
        mime_type=mime_type(req),
        created=now,
        modified=now,
        storage_class=sclass,
        metadata=meta_headers,
        headers=stored_headers(req),
    )
    try:
        stored = ctx.store.objects.commit(req.bucket, writer.path, meta)
    except BaseException:
        writer.discard()
        raise
    return Response.empty(201, [("ETag", f'"{md5}"'), *version_headers(ctx, req.bucket, stored)])


def check_copy_conditions(req: Request, src_meta: ObjectMeta, header: str = "x-qs-copy-source") -> None:
    """412 if an ``<header>-if-match`` / ``-if-none-match`` header fails for the source: ``x-qs-copy-source-*``
    for a copy or part copy, ``x-qs-move-source-*`` for a move (docs ``copy.md``, ``move.md``)."""
    etag = f'"{src_meta.etag}"'
    cond = req.headers.get(f"{header}-if-match")
    if cond is not None and cond.strip() not in (etag, src_meta.etag):
        raise EmulatorError(412, "precondition_failed", f"{header} If-Match failed")
    cond = req.headers.get(f"{header}-if-none-match")
    if cond is not None and cond.strip() in (etag, src_meta.etag):
        raise EmulatorError(412, "precondition_failed", f"{header} If-None-Match failed")


def split_source(source: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id or None) of an ``x-qs-copy-source`` / ``x-qs-move-source`` value.

    The value is URL-encoded (Python quotes the ``?`` too); a trailing ``?version_id=<id>`` names a
    version (docs ``bucket/version``), so a key that itself ends so cannot be copied."""
    path = unquote(source)
    version: str | None = None
    head, sep, tail = path.rpartition("?version_id=")
    if sep and tail and "/" not in tail:
        path, version = head, tail
    sbucket, _, skey = path.lstrip("/").partition("/")
    return sbucket, skey, version


def _copy_or_move(req: Request, ctx: Context, source: str, sclass: str, meta_headers: dict[str, str]) -> Response:
    move = bool(req.headers.get("x-qs-move-source"))
    sbucket, skey, version = split_source(source)
    if not skey:
        raise EmulatorError(400, "invalid_argument", "the copy source must be /<bucket>/<key>")
    if move and version is not None:
        raise EmulatorError(400, "invalid_argument", "x-qs-move-source cannot name a version")
    try:
        if version is None:
            src_meta = ctx.store.objects.head(sbucket, skey)
        else:
            src_meta = ctx.store.objects.version(sbucket, skey, version)
    except EmulatorError as err:
        if err.status == 405:
            raise EmulatorError(400, "invalid_argument", "the copy source version is a delete marker") from None
        raise EmulatorError(404, "object_not_exists", "the source object does not exist") from None
    header = "x-qs-move-source" if move else "x-qs-copy-source"
    check_copy_conditions(req, src_meta, header)
    if not move and src_meta.size > MAX_OBJECT_SIZE:  # copy.md: one copy is at most 5 GiB (move.md says none)
        raise EmulatorError(400, "entity_too_large", "an object over 5 GiB is copied part by part (part copy)")
    replace = (req.headers.get("x-qs-metadata-directive") or "COPY").upper() == "REPLACE"
    now = ctx.now()
    meta = ObjectMeta(
        key=req.key,
        size=0,
        etag="",
        mime_type=mime_type(req) if replace else src_meta.mime_type,
        created=now,
        modified=now,
        storage_class=sclass if req.headers.get("x-qs-storage-class") else src_meta.storage_class,
        metadata=meta_headers if replace else dict(src_meta.metadata),
        headers=stored_headers(req) if replace else dict(src_meta.headers),
    )
    stored = ctx.store.objects.copy(
        sbucket, skey, req.bucket, meta, version, check=lambda opened: check_copy_conditions(req, opened, header)
    )
    if move and (sbucket, skey) != (req.bucket, req.key):
        ctx.store.objects.delete(sbucket, skey)
    return Response.empty(201, [("ETag", f'"{stored.etag}"'), *version_headers(ctx, req.bucket, stored)])


def _current_or_version(req: Request, ctx: Context) -> ObjectMeta:
    """The version ``version_id`` names, else the current one (404 with ``x-qs-delete-marker`` if
    the newest version is a delete marker)."""
    version = req.query.get("version_id")
    if version:
        return ctx.store.objects.version(req.bucket, req.key, version)
    try:
        return ctx.store.objects.head(req.bucket, req.key)
    except EmulatorError as err:
        _mark_hidden(req, ctx, err)
        raise


def _mark_hidden(req: Request, ctx: Context, err: EmulatorError) -> None:
    """Add ``x-qs-delete-marker`` to a 404 for a key whose newest version is a delete marker."""
    if err.status == 404:
        marker = ctx.store.objects.hiding_marker(req.bucket, req.key)
        if marker is not None:
            err.headers = [("x-qs-delete-marker", "true"), ("x-qs-version-id", marker.wire_version_id())]


def head_object(req: Request, ctx: Context) -> Response:
    """HEAD /<bucket>/<key>: the object's headers and length, no body."""
    meta = _current_or_version(req, ctx)
    headers = object_headers(meta) + version_headers(ctx, req.bucket, meta)
    return not_modified(req, meta) or Response(200, headers, meta.size)


def get_object(req: Request, ctx: Context) -> Response:
    """GET /<bucket>/<key>: the data (or a ``Range`` of it), streamed from the open data file."""
    version = req.query.get("version_id")
    if version:
        meta, fh = ctx.store.objects.open_version(req.bucket, req.key, version)
    else:
        try:
            meta, fh = ctx.store.objects.open(req.bucket, req.key)
        except EmulatorError as err:
            _mark_hidden(req, ctx, err)
            raise
    try:
        early = not_modified(req, meta)
        if early is not None:
            fh.close()
            return early
        headers = object_headers(meta) + version_headers(ctx, req.bucket, meta)
        for param, header in RESPONSE_OVERRIDES.items():
            if param in req.query:
                headers = [(n, v) for n, v in headers if n.lower() != header.lower()]
                headers.append((header, req.query[param]))
        start, end, status = 0, meta.size - 1, 200
        range_header = req.headers.get("Range")
        if range_header is not None:
            parsed = parse_range(range_header, meta.size)
            if parsed is None:
                raise EmulatorError(416, "invalid_range", "the requested range cannot be satisfied")
            start, end = parsed
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{meta.size}"))
        fh.seek(start)
    except BaseException:
        fh.close()
        raise
    return Response(status, headers, end - start + 1 if meta.size else 0, stream=fh)


def delete_object(req: Request, ctx: Context) -> Response:
    """DELETE /<bucket>/<key>: 204 whether or not it existed.

    With ``version_id``: that version is removed for good. Without, in a versioned bucket: a delete
    marker becomes the newest version (answered with ``x-qs-delete-marker`` and its version id)."""
    version = req.query.get("version_id")
    if version:
        removed = ctx.store.objects.delete_version(req.bucket, req.key, version)
        headers = [("x-qs-version-id", version)]
        if removed is not None and removed.delete_marker:
            headers.insert(0, ("x-qs-delete-marker", "true"))
        return Response.empty(204, headers)
    _existed, marker = ctx.store.objects.delete_latest(req.bucket, req.key)
    if marker is None:
        return Response.empty(204)
    return Response.empty(204, [("x-qs-delete-marker", "true"), ("x-qs-version-id", marker.wire_version_id())])
