"""MD5 digests as the store and its headers spell them: hex (ETag), base64 (Content-MD5), of a file."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path


def md5_hex(data: bytes) -> str:
    """Lower-case hex MD5 (an ETag without quotes)."""
    return hashlib.md5(data).hexdigest()


def md5_b64(data: bytes) -> str:
    """Base64 of the binary MD5 (the Content-MD5 header value)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def md5_file(path: Path) -> str:
    """Lower-case hex MD5 of a file's bytes, read 1 MiB at a time."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
