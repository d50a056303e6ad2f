"""Where the store keeps what, under its root directory.

::

    buckets/<bucket>/bucket.json                      {"name", "created"}
    buckets/<bucket>/objects/<h[:2]>/<h>.json         object metadata (h = sha256 of the UTF-8 key;
    buckets/<bucket>/objects/<h[:2]>/<h>.<id>.data    the key itself lives inside the JSON)
    buckets/<bucket>/objects/<h[:2]>/<h>.<id>.<i>.data  part i of a completed multipart object
    buckets/<bucket>/objects/<h[:2]>/<h>.v-<version>.json  a noncurrent version or a delete marker
    buckets/<bucket>/uploads/<upload_id>/upload.json  the upload (key, content type, metadata...)
    buckets/<bucket>/uploads/<upload_id>/part-<n>.json + part-<n>.<id>.data
    buckets/.trash-<id>/                              a deleted bucket on its way out

Keys never become file names, so no key can escape the root.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def key_hash(key: str) -> str:
    """The file-name-safe name of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Layout:
    """The paths of buckets, objects and uploads under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.buckets = self.root / "buckets"

    def bucket_dir(self, bucket: str) -> Path:
        """``buckets/<bucket>``."""
        return self.buckets / bucket

    def object_dir(self, bucket: str, key: str) -> Path:
        """The directory of the key's JSON and data files."""
        return self.bucket_dir(bucket) / "objects" / key_hash(key)[:2]

    def object_json(self, bucket: str, key: str) -> Path:
        """The key's metadata file: the commit point of every object write."""
        return self.object_dir(bucket, key) / f"{key_hash(key)}.json"

    def version_json(self, bucket: str, key: str, version_id: str) -> Path:
        """The record of a noncurrent version (or delete marker) of a key (``version_id`` as on the wire)."""
        return self.object_dir(bucket, key) / f"{key_hash(key)}.v-{version_id}.json"

    def upload_dir(self, bucket: str, upload_id: str) -> Path:
        """The directory of one unfinished upload and its parts."""
        return self.bucket_dir(bucket) / "uploads" / upload_id
