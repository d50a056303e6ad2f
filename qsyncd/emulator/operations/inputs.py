"""What a request carries, read and checked for the operations: headers, parameters and bodies.

Every check raises :class:`~qsyncd.emulator.errors.EmulatorError` with the status and code the
operation answers with. A body is read only after ``Request.begin_body`` (which sends
``100 Continue`` to a client that waits for it), so a request refused on its headers never has
its body sent.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Request
from qsyncd.emulator.store import CHUNK, BodyWriter
from qsyncd.emulator.wire import STORAGE_CLASSES, BadChunking, IncompleteBody, check_metadata, decode_md5

MAX_JSON_BODY = 16 * 1024 * 1024
STORED_HEADERS = ("cache-control", "content-encoding", "content-disposition", "content-language", "expires")


def int_param(query: dict[str, str], name: str, default: int, maximum: int) -> int:
    """An integer query parameter: ``default`` if absent or not positive, at most ``maximum``."""
    raw = query.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise EmulatorError(400, "invalid_argument", f"{name} must be an integer") from None
    if value <= 0:
        return default
    return min(value, maximum)


def storage_class(req: Request) -> str:
    """``x-qs-storage-class`` (STANDARD when absent or empty)."""
    value = req.headers.get("x-qs-storage-class")
    if value is None or value == "":
        return "STANDARD"
    if value not in STORAGE_CLASSES:
        raise EmulatorError(400, "invalid_argument", "x-qs-storage-class must be STANDARD or STANDARD_IA")
    return value


def metadata(req: Request) -> dict[str, str]:
    """The ``x-qs-meta-*`` headers, checked against the metadata rules."""
    meta, code = check_metadata(list(req.headers.items()))
    if code is not None:
        raise EmulatorError(400, code, "x-qs-meta-* headers break the metadata rules")
    return meta


def stored_headers(req: Request) -> dict[str, str]:
    """The standard headers an object keeps and answers with (Cache-Control, Content-Encoding...)."""
    out = {}
    for name in STORED_HEADERS:
        value = req.headers.get(name)
        if value:
            out[name] = value
    return out


def mime_type(req: Request) -> str:
    """``Content-Type``, or ``application/octet-stream`` when absent or empty."""
    value = req.headers.get("Content-Type", "")
    return value.strip() or "application/octet-stream"


def require_length(req: Request, maximum: int) -> int | None:
    """Validate the declared length before any body is read; returns it (None for chunked)."""
    if not req.has_length:
        raise EmulatorError(411, "invalid_request", "Content-Length is required")
    if req.body.chunked:
        return None
    assert req.body.length is not None
    if req.body.length > maximum:
        raise EmulatorError(400, "entity_too_large", "the body is larger than 5 GiB")
    return req.body.length


def content_md5(req: Request) -> bytes | None:
    """The binary digest ``Content-MD5`` gives (Base64 or hex), None without the header."""
    value = req.headers.get("Content-MD5")
    if value is None:
        return None
    raw = decode_md5(value)
    if raw is None:
        raise EmulatorError(400, "bad_digest", "Content-MD5 is neither the Base64 of 16 bytes nor 32 hex digits")
    return raw


def stream_into(req: Request, writer: BodyWriter, maximum: int) -> str:
    """Copy the request body into ``writer``; checks size and Content-MD5; returns the MD5 hex.

    On any failure the writer's temp file is discarded."""
    expected = content_md5(req)
    req.begin_body()
    try:
        while True:
            chunk = req.body.read(CHUNK)
            if not chunk:
                break
            writer.write(chunk)
            if writer.size > maximum:
                raise EmulatorError(400, "entity_too_large", "the body is larger than 5 GiB")
    except IncompleteBody:
        writer.discard()
        raise EmulatorError(
            400, "incomplete_body", "the body is shorter than Content-Length", close_connection=True
        ) from None
    except BadChunking:
        writer.discard()
        raise EmulatorError(400, "invalid_request", "malformed chunked body", close_connection=True) from None
    except BaseException:
        writer.discard()
        raise
    if expected is not None and writer.md5_digest() != expected:
        writer.discard()
        raise EmulatorError(400, "bad_digest", "Content-MD5 does not match the body")
    try:
        return writer.finish()
    except BaseException:
        writer.discard()
        raise


def json_body(req: Request) -> Any:
    """The request body parsed as JSON (at most 16 MiB; Content-MD5 checked if given)."""
    if req.body.length is not None and req.body.length > MAX_JSON_BODY:
        raise EmulatorError(400, "invalid_request", "request body too large")
    req.begin_body()
    parts: list[bytes] = []
    total = 0
    try:
        while chunk := req.body.read(CHUNK):
            parts.append(chunk)
            total += len(chunk)
            if total > MAX_JSON_BODY:
                raise EmulatorError(400, "invalid_request", "request body too large")
    except (IncompleteBody, BadChunking):
        raise EmulatorError(
            400, "incomplete_body", "the body is shorter than Content-Length", close_connection=True
        ) from None
    raw = b"".join(parts)
    expected = content_md5(req)
    if expected is not None and hashlib.md5(raw).digest() != expected:
        raise EmulatorError(400, "bad_digest", "Content-MD5 does not match the body")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EmulatorError(400, "invalid_json", "the body is not valid JSON") from None
