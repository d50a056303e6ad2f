"""The periodic verify as it was before it streamed: the whole listing in a dict, each root's records in
another, ``check_file`` per record. The tests of ``verify.audit`` and ``reverify.compare`` (the merge in
key order) check that the merge finds exactly what this finds."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from qsyncd.config import WatchConfig
from qsyncd.remote.base import ObjectInfo, Remote
from qsyncd.state import FileRecord, Ledger
from qsyncd.verify import Finding, check_file, list_prefixes

Found = tuple[str, str, str, str]  # (root, path, kind, reason)


def audit_dict(records: Iterable[FileRecord], objects: dict[str, ObjectInfo], before: float) -> list[Finding]:
    """The old ``verify.audit``: a dict lookup per record, findings by path."""
    out: list[Finding] = []
    for rec in records:
        if rec.uploaded_at >= before:
            continue
        found = check_file(
            path=rec.path, key=rec.key, local=rec.identity, record=rec, remote=objects.get(rec.key), md5=rec.md5
        )
        if isinstance(found, Finding):
            out.append(found)
    return sorted(out, key=lambda f: f.path or "")


def compare_dict(
    remote: Remote, ledger: Ledger, watches: Sequence[WatchConfig], before: float
) -> tuple[list[Found], tuple[int, int, int]]:
    """The old ``reverify.compare``: what it lost, in its order, and (records, checked, objects)."""
    objects = {o.key: o for p in list_prefixes(watches) for o in remote.list_objects(p)}
    lost: list[Found] = []
    records = checked = 0
    for w in watches:
        known = ledger.uploaded_under(str(w.path))
        records += len(known)
        checked += sum(r.uploaded_at < before for r in known.values())
        lost += [(str(w.path), f.path or "", f.kind, f.reason) for f in audit_dict(known.values(), objects, before)]
    return lost, (records, checked, len(objects))


def put_object(remote: Remote, key: str, data: bytes) -> str:
    """PUT ``data`` under ``key``; returns its MD5 (the ETag)."""
    digest = hashlib.md5(data)
    remote.put(key, io.BytesIO(data), len(data), base64.b64encode(digest.digest()).decode())
    return digest.hexdigest()


def lost_and_found(
    remote: Remote, delete: Callable[[str], None], ledger: Ledger, base: Path, top: str
) -> tuple[tuple[WatchConfig, ...], float]:
    """A bucket and a ledger where a verify round has something to find at every place a page or a chunk
    can end: returns the watches (roots under ``base``, prefixes under ``top``) and the round's ``before``.

    Three roots: ``w1`` under ``<top>bk/``, ``w2`` under ``<top>bk/two/`` (one listing covers both),
    ``w3`` under ``<top>other/``. Objects deleted next to each other and at the ends, one resized, one
    overwritten; objects no record names between the records (and one key sorting before them all); a
    record whose key is under no listed prefix (its watch's prefix changed); a key held by records of
    two roots; a record under no root; a record newer than ``before``. ``delete`` removes an object
    behind qsyncd's back (the store's own client)."""
    watches = (
        WatchConfig(path=base / "w1", prefix=f"{top}bk/"),
        WatchConfig(path=base / "w2", prefix=f"{top}bk/two/"),
        WatchConfig(path=base / "w3", prefix=f"{top}other/"),
    )
    before = 2_000_000_000.0

    def record(root: str, name: str, key: str, data: bytes, *, at: float = before - 100) -> None:
        ledger.record_uploaded(
            FileRecord(str(base / root / name), key, len(data), 1, 2, hashlib.md5(data).hexdigest(), at)
        )

    for i in range(12):
        key, data = f"{top}bk/f{i:02d}", f"file {i}".encode()
        put_object(remote, key, data)
        record("w1", f"f{i:02d}", key, data)
        if i in (1, 4, 7):
            put_object(remote, f"{top}bk/f{i:02d}-extra", b"no record names me")
    put_object(remote, f"{top}bk/!", b"a key before every record")  # not "<top>bk/" itself: SeaweedFS 4.48
    # lists a page of one entry that is the prefix itself as the last page (IsTruncated false)
    for i in (0, 2, 3, 5, 11):
        delete(f"{top}bk/f{i:02d}")
    put_object(remote, f"{top}bk/f06", b"file 6 resized")
    put_object(remote, f"{top}bk/f08", b"FILE 8")  # same size, other bytes
    record("w1", "moved", f"{top}old/moved", b"under no listed prefix")
    for name in ("a", "b", "c"):
        data = name.encode() * 3
        put_object(remote, f"{top}bk/two/{name}", data)
        record("w2", name, f"{top}bk/two/{name}", data)
    delete(f"{top}bk/two/b")
    put_object(remote, f"{top}other/x", b"x")
    record("w3", "x", f"{top}other/x", b"x")
    record("w3", "y", f"{top}other/y", b"y")  # never listed
    record("w3", "shared3", f"{top}bk/f03", b"file 3")  # w1's f03 too: both lost
    record("w3", "shared4", f"{top}bk/f04", b"file 4")
    record("elsewhere", "z", f"{top}bk/zz", b"zz")  # no watch root holds it: not looked at
    record("w1", "new", f"{top}bk/new", b"new", at=before)  # uploaded as the listing began: next round
    return watches, before
