"""Which version of a local file this is: the one type every stage uses to say "the same file, unchanged".

A file's identity is what one ``stat`` says about its content: size, mtime and inode (what the ledger
records of an uploaded file) and ctime (which also moves when a write restores the mtime, so two stats
with the same four values mean nothing wrote to the file in between). Two comparisons cover every use:

- ``a == b``: unchanged between two stats (settling, reading a file for upload, deleting after upload);
- ``a.same_version(b)``: the same version as a ledger record, which keeps no ctime (restart, rescan,
  "already uploaded", multipart resume).

It is a ``NamedTuple`` because the scan builds one per file of the tree: a tuple is the cheapest object
Python makes, and comparing two is done in C.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class FileIdentity(NamedTuple):
    """Size, mtime, inode and ctime of a file, from one stat (``ctime_ns`` is 0 when unknown, as in a ledger record)."""

    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int = 0

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        """The identity ``os.stat``/``os.lstat``/``os.fstat`` reported."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    @classmethod
    def recorded(cls, size: int, mtime_ns: int, ino: int) -> FileIdentity:
        """The identity a ledger record keeps (no ctime)."""
        return cls(size, mtime_ns, ino, 0)

    def same_version(self, other: FileIdentity) -> bool:
        """Same size, mtime and inode: the version a record describes (ctime is not compared)."""
        return self[:3] == other[:3]
