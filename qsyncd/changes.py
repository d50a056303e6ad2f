"""What to do when a file's bytes are already in the bucket elsewhere, or another version is under its key.

Two pure decisions, asked by the uploader once ``qsyncd.decide`` has said "upload" (the bucket does not
hold this version under this key):

- ``protect``: the bucket holds another version under the key (``[[watch]] on_change``).
  ``"keep"`` (the default) keeps that object before it is replaced: by the bucket's own versioning when
  it is enabled, otherwise as a server-side copy under ``kept_key`` (``kept_prefix`` + key +
  ``@<UTC time>-<first 8 hex of its ETag>``); ``"refuse"`` leaves the bucket as it is and reports the
  file; ``"overwrite"`` replaces it.
- ``reuse_via``: a ledger record (a donor) says these bytes (the same size and MD5) are already in the
  bucket under another key: the same file renamed, or a copy (``[[watch]] renames``). The MD5 is always
  checked, an inode alone is never trusted: a new file can get the inode of a deleted one.
  ``"copy"`` (the default) copies that object server-side and leaves the old key alone;
  ``"move"`` moves it, unless the old file is still on disk with those bytes (then it is a copy too)
  or the donor is a kept version (never moved: it is the only copy of a replaced version);
  ``"upload"`` always sends the bytes.

``Donor`` is what the ledger found; the executor is ``qsyncd.reuse``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

Protect = Literal["overwrite", "keep_copy", "keep_versioned", "refuse"]
Via = Literal["copy", "move", "upload"]

KEPT_STAMP = "%Y%m%dT%H%M%SZ"  # the UTC time of the replacement, in a kept object's name
KEPT_ETAG_CHARS = 8  # hex digits of the replaced object's ETag that follow it (two replacements in one second)


@dataclass(frozen=True)
class ChangeRules:
    """A watch root's ``renames``, ``on_change`` and ``kept_prefix`` (``root`` bounds the donor search)."""

    root: str
    renames: Literal["copy", "move", "upload"] = "upload"
    on_change: Literal["keep", "overwrite", "refuse"] = "overwrite"
    kept_prefix: str = ""


OLD_BEHAVIOUR = ChangeRules(root="/")  # send every file's bytes and replace what is there


@dataclass(frozen=True)
class Donor:
    """An object in the bucket that holds a file's bytes: an uploaded file's (``kind="file"``) or a kept version's."""

    kind: Literal["file", "kept"]
    key: str
    size: int
    md5: str
    path: str  # the file it came from
    ino: int
    mtime_ns: int
    by: Literal["identity", "content"]  # same MD5 and size, and also the same inode and mtime (a rename); or not


def protect(on_change: str, *, versioned: bool) -> Protect:
    """How to treat the other version the bucket holds under a file's key before it is replaced."""
    if on_change == "refuse":
        return "refuse"
    if on_change == "keep":
        return "keep_versioned" if versioned else "keep_copy"
    return "overwrite"


def reuse_via(renames: str, donor: Donor | None, *, source_on_disk: bool) -> Via:
    """Whether to send a file's bytes or copy/move the donor object that already holds them.

    ``source_on_disk``: the donor's file is still there with those bytes (a copy or a hard link, not a rename).
    """
    if donor is None or renames == "upload":
        return "upload"
    if renames == "move" and donor.kind == "file" and not source_on_disk:
        return "move"
    return "copy"


def kept_key(kept_prefix: str, key: str, etag: str, when: float) -> str:
    """The name a replaced object is kept under: ``<kept_prefix><key>@<UTC time>-<ETag[:8]>``."""
    stamp = datetime.datetime.fromtimestamp(when, datetime.UTC).strftime(KEPT_STAMP)
    return f"{kept_prefix}{key}@{stamp}-{etag[:KEPT_ETAG_CHARS]}"
