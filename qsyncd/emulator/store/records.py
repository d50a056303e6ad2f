"""What the store records: an object (or one version of it), a part, an unfinished upload, a bucket.

``ObjectMeta``, ``PartMeta`` and ``UploadState`` (without its parts) are written as JSON exactly as
``dataclasses.asdict`` gives them, and read back with ``Cls(**json)``: renaming a field breaks the
stores already on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ObjectMeta:
    """Everything HEAD and listings say about one object."""

    key: str
    size: int
    etag: str  # unquoted
    mime_type: str
    created: float
    modified: float
    storage_class: str = "STANDARD"
    metadata: dict[str, str] = field(default_factory=dict)  # lower-case x-qs-meta-* names -> values
    headers: dict[str, str] = field(default_factory=dict)  # cache-control, content-encoding, ...
    data_file: str = ""  # a single-file object (PUT, copy)
    data_files: list[str] = field(default_factory=list)  # a completed multipart object: parts in order
    version_id: str = ""  # sortable (fixed-width hex stamp); "" for objects written before versioning
    null_version: bool = True  # the version's id on the wire is "null" (versioning off or suspended)
    delete_marker: bool = False  # a delete marker: no data, only in a versioned key's history

    def file_names(self) -> list[str]:
        """The names of the object's data files, in the order of its bytes (none for a delete marker)."""
        if self.delete_marker:
            return []
        return list(self.data_files) if self.data_files else [self.data_file]

    def wire_version_id(self) -> str:
        """The version id clients see: ``"null"`` for a null version, else the stamp."""
        return "null" if self.null_version or not self.version_id else self.version_id


@dataclass
class PartMeta:
    """One stored part of a multipart upload."""

    part_number: int
    size: int
    etag: str
    created: float
    data_file: str = ""


@dataclass
class UploadState:
    """One unfinished multipart upload."""

    key: str
    upload_id: str
    created: float
    mime_type: str
    storage_class: str = "STANDARD"
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    parts: dict[int, PartMeta] = field(default_factory=dict)


@dataclass
class BucketState:
    """One bucket and its in-memory indexes."""

    name: str
    created: float
    versioning: str = "DISABLED"  # DISABLED (never enabled), ENABLED or SUSPENDED
    keys: list[str] = field(default_factory=list)  # sorted; keys with a current (non-marker) version
    objects: dict[str, ObjectMeta] = field(default_factory=dict)  # the current version of each key
    versions: dict[str, list[ObjectMeta]] = field(default_factory=dict)  # older versions/markers, newest first
    uploads: dict[str, UploadState] = field(default_factory=dict)
