"""Table tests of qsyncd.decide: skip or upload, and what to find out first."""

from __future__ import annotations

import pytest

from qsyncd.decide import ASK_REMOTE, HASH, UNKNOWN, decide
from qsyncd.identity import FileIdentity
from qsyncd.remote.base import ObjectInfo
from qsyncd.state import FileRecord

MD5 = "0123456789abcdef0123456789abcdef"
OTHER = "f" * 32
LOCAL = FileIdentity(100, 5_000, 42, 7_000)
REC = FileRecord(path="/r/a", key="a", size=100, mtime_ns=5_000, ino=42, md5=MD5, uploaded_at=1.0)
STALE = FileRecord(path="/r/a", key="a", size=90, mtime_ns=4_000, ino=42, md5=OTHER, uploaded_at=1.0)
MOVED = FileRecord(path="/r/a", key="old/a", size=100, mtime_ns=5_000, ino=42, md5=MD5, uploaded_at=1.0)
SAME = ObjectInfo("a", 100, MD5)
DIFF = ObjectInfo("a", 100, OTHER)
SHORT = ObjectInfo("a", 99, MD5)

CASES = [
    # (record, delete_after, remote, md5) -> (action, reason)
    pytest.param(REC, False, UNKNOWN, None, "skip", "ledger_match", id="ledger knows this version: no request"),
    pytest.param(None, False, UNKNOWN, None, "ask_remote", "", id="unknown file: ask the bucket"),
    pytest.param(STALE, False, UNKNOWN, None, "ask_remote", "", id="changed since upload: ask"),
    pytest.param(MOVED, False, UNKNOWN, None, "ask_remote", "", id="recorded under another key: ask"),
    pytest.param(None, False, None, None, "upload", "not_in_bucket", id="nothing in the bucket"),
    pytest.param(None, False, SHORT, None, "upload", "size_differs", id="another size: no hashing"),
    pytest.param(None, False, SAME, None, "hash", "", id="same size: hash to compare"),
    pytest.param(None, False, SAME, MD5, "skip", "remote_match", id="same size and MD5"),
    pytest.param(None, False, DIFF, MD5, "upload", "content_differs", id="same size, other MD5"),
    pytest.param(REC, True, UNKNOWN, None, "ask_remote", "", id="delete mode: the bucket must confirm"),
    pytest.param(REC, True, SAME, None, "skip", "ledger_match", id="delete mode: confirmed without hashing"),
    pytest.param(REC, True, DIFF, None, "hash", "", id="delete mode: object changed behind us, hash"),
    pytest.param(REC, True, None, None, "upload", "not_in_bucket", id="delete mode: object gone, upload again"),
]


@pytest.mark.parametrize(("record", "delete_after", "remote", "md5", "action", "reason"), CASES)
def test_decide(record, delete_after, remote, md5, action, reason) -> None:  # type: ignore[no-untyped-def]
    """Each row: what is known so far, and the next step."""
    d = decide(key="a", local=LOCAL, record=record, delete_after=delete_after, remote=remote, md5=md5)
    assert (action, reason) == (d.action, d.reason)


def test_the_next_steps_are_the_shared_constants() -> None:
    """ask_remote and hash carry no reason: they are steps, not verdicts."""
    assert ASK_REMOTE == decide(key="a", local=LOCAL, record=None)
    assert HASH == decide(key="a", local=LOCAL, record=None, remote=SAME)


def test_the_detail_says_why_for_a_person() -> None:
    """What `sync --dry-run` prints: sizes when they differ, and whether the file changed since its upload."""
    d = decide(key="a", local=LOCAL, record=STALE, remote=SHORT)
    assert "size differs (remote 99, local 100); changed since it was uploaded" == d.detail
    assert "not in the bucket" == decide(key="a", local=LOCAL, record=None, remote=None).detail
