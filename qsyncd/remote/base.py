"""The contract every object store behind qsyncd fulfils.

Keys are ``str`` (valid UTF-8, 1..1023 bytes when encoded). ETags and MD5s are lower-case hex
without quotes. Bodies are binary file-like objects that yield exactly ``size`` bytes from
``read()``; the remote streams them and never holds a whole object in memory.

Errors are ``qsyncd.errors`` types only, classified by consequence: ``NotFound`` (this object or upload
does not exist), ``StoreRefused`` (every request will fail: ``CredentialsRejected`` for a wrong key, a
bad signature or a skewed clock, ``BucketMissing``), ``AuthError``/``BadRequest`` (permanent for this
request), ``TransientError``/``Unreachable`` (retry later). No SDK exception escapes an implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD says about an object."""

    key: str
    size: int
    etag: str  # unquoted lower-case hex; for multipart objects whatever Complete sent
    content_type: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-qs-meta-* without the prefix


@dataclass(frozen=True)
class PartInfo:
    """One stored part of a multipart upload (part numbers are 0-based)."""

    part_number: int
    size: int
    etag: str  # unquoted lower-case hex MD5 of the part


@dataclass(frozen=True)
class UploadInfo:
    """One multipart upload that was initiated and neither completed nor aborted."""

    key: str
    upload_id: str
    created: str  # RFC 3339 as the server sent it


@runtime_checkable
class Remote(Protocol):
    """One bucket of an object store.

    Every method is safe to call from several threads at once. Every method is idempotent
    except ``initiate`` (each call creates a new upload).
    """

    def probe(self) -> None:
        """Check that the bucket exists and the credentials work (HEAD bucket)."""

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's info, or ``None`` when it does not exist."""

    def put(
        self,
        key: str,
        body: BinaryIO,
        size: int,
        md5_b64: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> str:
        """Store ``size`` bytes from ``body`` under ``key`` with ``Content-MD5: md5_b64``.

        Returns the ETag the server reports. A body that does not match the MD5 raises
        ``BadRequest`` (code ``bad_digest``) and stores nothing.
        """

    def initiate(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> str:
        """Start a multipart upload; returns its upload id."""

    def upload_part(self, key: str, upload_id: str, part_number: int, body: BinaryIO, size: int, md5_b64: str) -> str:
        """Store one part (0-based ``part_number``) with ``Content-MD5``; returns its ETag.

        An unknown upload id raises ``NotFound`` (code ``upload_not_exists``).
        """

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """All stored parts of an upload, sorted by part number (pages through the listing)."""

    def complete(self, key: str, upload_id: str, parts: Sequence[PartInfo], etag: str) -> None:
        """Assemble ``parts`` (ascending) into the object; ``etag`` (hex MD5) becomes its ETag."""

    def abort(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts. Succeeds if it is already gone."""

    def list_uploads(self, prefix: str = "") -> list[UploadInfo]:
        """All unfinished multipart uploads whose key starts with ``prefix`` (pages through)."""

    def list_objects(self, prefix: str, delimiter: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key (pages through ListObjects).

        Pages with ``limit`` ``"1000"``, ``marker`` = the last name of the previous page, while
        ``has_more`` is true. With a ``delimiter`` (e.g. ``"/"``) keys that contain it after
        ``prefix`` are rolled up into common prefixes, which are not returned: the result is the
        objects directly "in" ``prefix``. ``ObjectInfo`` has ``key``, ``size`` and ``etag``
        (unquoted lower-case hex, the same value HEAD reports); ``content_type`` may be set and
        ``metadata`` is empty (listings do not carry it). A missing bucket raises ``BucketMissing``.
        """
