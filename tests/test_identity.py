"""Tests for qsyncd.identity: one type says "the same file, unchanged" for every stage."""

from __future__ import annotations

import os
from pathlib import Path

from qsyncd.identity import FileIdentity
from qsyncd.state import FileRecord


def test_of_copies_size_mtime_inode_and_ctime(tmp_path: Path) -> None:
    """FileIdentity.of(stat) holds size, mtime_ns, inode and ctime_ns."""
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    st = os.stat(p)
    assert FileIdentity(3, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) == FileIdentity.of(st)


def test_a_write_that_restores_the_mtime_still_changes_the_identity(tmp_path: Path) -> None:
    """Same size and mtime after a rewrite (os.utime back): ctime differs, so "unchanged" is False,
    while the ledger's notion (size, mtime, inode) still calls it the same version."""
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    before = FileIdentity.of(os.stat(p))
    os.utime(p, ns=(before.mtime_ns, before.mtime_ns + 1))  # touch: ctime moves
    p.write_bytes(b"xyz")
    os.utime(p, ns=(before.mtime_ns, before.mtime_ns))
    after = FileIdentity.of(os.stat(p))
    assert before != after
    assert before.same_version(after)


def test_same_version_compares_with_a_ledger_record() -> None:
    """A record keeps no ctime: same size, mtime and inode is the same version; any of them differing is not."""
    rec = FileRecord(path="/r/a", key="a", size=10, mtime_ns=5, ino=7, md5="0" * 32, uploaded_at=0.0)
    assert FileIdentity(10, 5, 7, 0) == rec.identity
    assert FileIdentity(10, 5, 7, 99).same_version(rec.identity)
    for other in (FileIdentity(11, 5, 7, 99), FileIdentity(10, 6, 7, 99), FileIdentity(10, 5, 8, 99)):
        assert not other.same_version(rec.identity)
