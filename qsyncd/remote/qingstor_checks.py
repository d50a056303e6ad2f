"""Arguments of QingStor requests, checked before anything is built or sent, and the headers of a new object.

The SDK's own validation misses what matters (an empty ``upload_id`` silently turns UploadMultipart,
ListMultipart and Abort into plain object PUT/GET/DELETE, ``/work/shared/qingstor-api.md`` §7.3), so
every argument that breaks the ``Remote`` contract is refused here with ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

MAX_PART_NUMBER = 10000
MAX_KEY_BYTES = 1023
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA")
_META_KEY_RE = re.compile(r"^[A-Za-z0-9._-]+$")
HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
_PRINTABLE_RE = re.compile(r"[\x20-\x7e]*")


def normalise_etag(etag: str | None) -> str:
    """``"ABC"`` / ``W/"abc"`` / ``abc`` -> ``abc``."""
    if not etag:
        return ""
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').strip().lower()


def check_key(key: str, *, max_bytes: int = MAX_KEY_BYTES, store: str = "QingStor") -> None:
    """A key is a non-empty ``str`` of at most ``max_bytes`` bytes of UTF-8 (QingStor: 1023)."""
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty str")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"object key {key!r} is not valid UTF-8") from None
    if len(encoded) > max_bytes:
        raise ValueError(f"object key is {len(encoded)} bytes; {store} allows at most {max_bytes}")


def check_upload_id(upload_id: str) -> None:
    """An upload id is a non-empty ``str`` (without this the SDK sends a plain object request)."""
    if not isinstance(upload_id, str) or not upload_id.strip():
        raise ValueError("upload_id must be a non-empty str")


def check_part_number(part_number: int) -> None:
    """A part number is an ``int`` in 0..10000."""
    if isinstance(part_number, bool) or not isinstance(part_number, int):
        raise ValueError(f"part_number must be an int, got {type(part_number).__name__}")
    if not 0 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"part_number must be in 0..{MAX_PART_NUMBER}, got {part_number}")


def check_md5_b64(md5_b64: str) -> None:
    """A Content-MD5 value is the Base64 of a 16-byte digest."""
    try:
        raw = base64.b64decode(md5_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("md5_b64 must be the Base64 of a 16-byte MD5 digest") from None
    if len(raw) != 16:
        raise ValueError("md5_b64 must be the Base64 of a 16-byte MD5 digest")


def check_size(size: int) -> None:
    """A size is an ``int`` >= 0."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0, got {size!r}")


def meta_headers(metadata: Mapping[str, str] | None) -> dict[str, str] | None:
    """Validate user metadata for ``x_qs_meta_data`` (names come back lower-cased from HEAD)."""
    if not metadata:
        return None
    out: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_KEY_RE.match(name) or len(name) > 512:
            raise ValueError(f"metadata name {name!r} must be 1..512 chars of [A-Za-z0-9._-]")
        if not isinstance(value, str) or not _PRINTABLE_RE.fullmatch(value):
            raise ValueError(f"metadata value of {name!r} must be printable ASCII")
        if value != value.strip():
            raise ValueError(f"metadata value of {name!r} must not start or end with spaces")
        out[name] = value
    return out


def object_headers(content_type: str, metadata: Mapping[str, str] | None, storage_class: str | None) -> dict[str, str]:
    """Content-Type, ``x-qs-meta-*`` and ``x-qs-storage-class`` headers of a new object (validated)."""
    check_storage_class(storage_class)
    check_content_type(content_type)
    headers = {"content-type": content_type or "application/octet-stream"}
    for name, value in (meta_headers(metadata) or {}).items():
        headers[f"x-qs-meta-{name.lower()}"] = value
    if storage_class is not None:
        headers["x-qs-storage-class"] = storage_class
    return headers


def check_content_type(content_type: str) -> None:
    """http.client encodes header values as latin-1 and requests rejects CR/LF: refuse them here."""
    if not isinstance(content_type, str) or not _PRINTABLE_RE.fullmatch(content_type):
        raise ValueError(f"content_type must be printable ASCII, got {content_type!r}")


def check_storage_class(storage_class: str | None) -> None:
    """``None`` (the bucket's default) or one of ``STORAGE_CLASSES``."""
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise ValueError(f"storage_class must be one of {STORAGE_CLASSES}, got {storage_class!r}")


def check_settings(
    bucket: str, zone: str, access_key_id: str, secret_access_key: str, timeouts: tuple[float, float]
) -> None:
    """The settings of a ``QingStorRemote``, refused with ``ValueError`` before anything is made."""
    if not isinstance(bucket, str) or not bucket:
        raise ValueError("bucket must be a non-empty str")
    if not isinstance(zone, str):
        raise ValueError("zone must be a str ('' for no zone prefix, e.g. a local emulator)")
    if not access_key_id or not secret_access_key:
        raise ValueError("access_key_id and secret_access_key must be non-empty")
    if min(timeouts) <= 0:
        raise ValueError("connect_timeout and read_timeout must be > 0 (0 would mean no timeout)")
