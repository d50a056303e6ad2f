"""What the store records: an object, a part, an unfinished upload, a bucket with its indexes.

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

    def file_names(self) -> list[str]:
        """The names of the object's data files, in the order of its bytes."""
        return list(self.data_files) if self.data_files else [self.data_file]


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
    keys: list[str] = field(default_factory=list)  # sorted
    objects: dict[str, ObjectMeta] = field(default_factory=dict)
    uploads: dict[str, UploadState] = field(default_factory=dict)
