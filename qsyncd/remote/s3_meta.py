"""The whole-file MD5 qsyncd keeps in an S3 object's metadata (``x-amz-meta-md5chksum``), read and written.

A multipart S3 object's ETag is ``md5(part MD5s)-N``, so every object qsyncd writes carries the
Base64 MD5 of its bytes under ``md5chksum`` (rclone's name and form); ``S3Remote.head`` reports it as
the object's ETag (``reported_md5``), and ``listed_md5`` says which listed ETags need that HEAD. The
uploads (``s3.py``) and the copies (``s3_copy.py``) share these helpers.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

MD5_META = "md5chksum"  # x-amz-meta-md5chksum: Base64 MD5 of the whole object (rclone's name and form)
_MD5_HEX_RE = re.compile(r"^[0-9a-f]{32}$")


def listed_md5(etag: str) -> str | None:
    """The MD5 a listing entry's (normalised) ETag vouches for, or ``None`` when only a HEAD can tell.

    A plain 32-digit hex ETag is the MD5 of a single PutObject's bytes; a multipart ETag
    (``<hex>-N``: ``md5(part MD5s)-N``), an empty one or any other form is not, and the whole-file MD5
    is then in ``md5chksum``, which listings do not carry (``reported_md5`` reads it from a HEAD).
    """
    return etag if _MD5_HEX_RE.match(etag) else None


def reported_md5(etag: str, metadata: Mapping[str, str]) -> str:
    """What qsyncd takes as an object's MD5: ``x-amz-meta-md5chksum`` if valid, else its ETag."""
    value = metadata.get(MD5_META, "")
    try:
        raw = base64.b64decode(value, validate=True) if value else b""
    except (binascii.Error, ValueError):
        raw = b""
    return raw.hex() if len(raw) == 16 else etag


def b64(md5_hex: str) -> str:
    """The Base64 form of a hex MD5 (as ``md5chksum`` and Content-MD5 carry it)."""
    return base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii")


def user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The metadata without ``md5chksum`` (what ``ObjectInfo.metadata`` shows)."""
    return {k: v for k, v in metadata.items() if k != MD5_META}
