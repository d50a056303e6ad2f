"""Tests for qsyncd.verify: the pure comparison of disk, ledger and bucket (tables), and the gathering."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qsynctest.audit_oracle import audit_dict

from qsyncd.config import WatchConfig
from qsyncd.identity import FileIdentity
from qsyncd.remote.base import ObjectInfo
from qsyncd.state import FileRecord
from qsyncd.verify import NEED_HASH, Result, audit, check_file, extras, list_prefixes, to_repair, verify

MD5 = "0" * 31 + "a"
OTHER = "0" * 31 + "b"
LOCAL = FileIdentity.recorded(10, 1_000, 7)
KEY = "p/x"


def rec(*, key: str = KEY, size: int = 10, mtime_ns: int = 1_000, md5: str = MD5, path: str = "/r/x") -> FileRecord:
    return FileRecord(path, key, size, mtime_ns, 7, md5, 1_700_000_000.0)


def obj(*, size: int = 10, etag: str = MD5, key: str = KEY) -> ObjectInfo:
    return ObjectInfo(key, size, etag)


# (record, remote, md5 hashed) -> (kind, reason), None for intact, NEED_HASH when it must hash
CASES: list[tuple[str, FileRecord | None, ObjectInfo | None, str | None, Any]] = [
    ("ledger vouches, bucket agrees: no hash", rec(), obj(), None, None),
    ("deleted behind qsyncd's back", rec(), None, None, ("missing", "deleted_from_bucket")),
    ("changed since upload, not in bucket", rec(mtime_ns=5), None, None, ("missing", "not_uploaded_yet")),
    ("never uploaded", None, None, None, ("missing", "never_uploaded")),
    ("size differs", rec(), obj(size=11), None, ("changed", "size_differs")),
    ("overwritten in the bucket, same size", rec(), obj(etag=OTHER), None, ("changed", "content_differs")),
    ("ledger does not vouch: hash first", None, obj(), None, NEED_HASH),
    ("ledger has another key: hash first", rec(key="old/x"), obj(), None, NEED_HASH),
    ("hashed, matches", None, obj(), MD5, None),
    ("hashed, differs", None, obj(), OTHER, ("changed", "content_differs")),
    ("rehash beats a vouching ledger", rec(), obj(), OTHER, ("changed", "content_differs")),
    (
        "a multipart ETag (S3, another tool): no MD5",
        rec(),
        obj(etag=MD5[:31] + "c-3"),
        None,
        ("changed", "md5_unknown"),
    ),
]


@pytest.mark.parametrize(("record", "remote", "md5", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check_file(record: FileRecord | None, remote: ObjectInfo | None, md5: str | None, want: Any) -> None:
    got = check_file(path="/r/x", key=KEY, local=LOCAL, record=record, remote=remote, md5=md5)
    if want is None or want is NEED_HASH:
        assert want is got
    else:
        assert got is not None and got is not NEED_HASH
        assert want == (got.kind, got.reason)  # type: ignore[union-attr]
        assert got.detail  # type: ignore[union-attr]


# the daemon's periodic verify: a ledger record against the listing (no disk) -> (kind, reason) or None
AUDIT: list[tuple[str, FileRecord, ObjectInfo | None, Any]] = [
    ("listed as recorded", rec(), obj(), None),
    ("not listed", rec(), None, ("missing", "deleted_from_bucket")),
    ("listed with another size", rec(), obj(size=9), ("changed", "size_differs")),
    ("listed with another ETag", rec(), obj(etag=OTHER), ("changed", "content_differs")),
    ("listed with no MD5 (multipart, another tool)", rec(), obj(etag=MD5[:31] + "c-2"), ("changed", "md5_unknown")),
    ("another key listed, not this one", rec(key="p/y"), obj(), ("missing", "deleted_from_bucket")),
]


@pytest.mark.parametrize(("record", "remote", "want"), [c[1:] for c in AUDIT], ids=[c[0] for c in AUDIT])
def test_audit(record: FileRecord, remote: ObjectInfo | None, want: Any) -> None:
    objects = [] if remote is None else [remote]
    got = [(f.kind, f.reason, r) for f, r in audit([record], objects, before=record.uploaded_at + 1)]
    assert ([] if want is None else [(*want, record)]) == got


def test_audit_leaves_records_newer_than_the_listing_alone() -> None:
    """A record written after the listing started may be absent from it: it waits for the next round."""
    assert [] == list(audit([rec()], [], before=rec().uploaded_at))
    assert ["/r/a", "/r/x"] == [f.path for f, _ in audit([rec(path="/r/a"), rec()], [], before=2e9)]


ALPHABET = ["a", "b", "/", " ", "+", "%", "\u00e9", "\uff5e", "\U0001f600"]


@pytest.mark.parametrize("seed", range(40))
def test_audit_merges_to_what_a_lookup_per_record_finds(seed: int) -> None:
    """The merge of records and listing in key order finds what the old dict lookup finds, record for
    record: objects listed before, between, after and among the records, keys shared by two records,
    records newer than the listing, objects gone or changed (sizes and ETags drawn at random)."""
    rnd = random.Random(seed)
    keys = sorted({"".join(rnd.choices(ALPHABET, k=rnd.randint(1, 4))) for _ in range(rnd.randint(0, 40))})
    size, md5, at = [1, 2], [MD5, OTHER], [1.0, 3.0]
    records = [
        FileRecord(f"/r/{i}", rnd.choice(keys), rnd.choice(size), 5, 7, rnd.choice(md5), rnd.choice(at))
        for i in range(rnd.randint(0, 30) if keys else 0)
    ]
    listed = [ObjectInfo(k, rnd.choice(size), rnd.choice(md5)) for k in keys if rnd.random() < 0.7]
    ordered = sorted(records, key=lambda r: r.key)
    merged = sorted(((f, r.path) for f, r in audit(ordered, listed, before=2.0)), key=lambda fp: fp[1])
    assert audit_dict(records, {o.key: o for o in listed}, 2.0) == [f for f, _ in merged]
    assert all(f.path == p for f, p in merged)


def test_audit_reads_the_listing_to_its_end_and_each_object_once() -> None:
    seen: list[str] = []

    def listing() -> Iterator[ObjectInfo]:
        for key in ("a", "p/x", "q", "r"):
            seen.append(key)
            yield obj(key=key)

    assert [] == list(audit([rec()], listing(), before=2e9))
    assert ["a", "p/x", "q", "r"] == seen


def test_extras_say_whose_key_it_was(tmp_path: Path) -> None:
    here = tmp_path / "here"
    here.write_text("x")
    objects = {k: obj(key=k) for k in ("a", "b", "c", "d")}
    records = [rec(key="b", path=str(tmp_path / "gone")), rec(key="c", path=str(here))]
    found = extras(objects, expected={"a"}, records=records)
    assert [("b", "gone_from_disk"), ("c", "key_moved"), ("d", "not_on_disk")] == [(f.key, f.reason) for f in found]
    assert all(f.kind == "extra" for f in found)


@pytest.mark.parametrize(
    ("prefixes", "listed"),
    [
        (["a/", "b/"], ["a/", "b/"]),
        (["a/", "a/b/"], ["a/"]),
        (["", "a/"], [""]),
        (["cam/{mtime:%Y}/", "cam/"], ["cam/"]),
        (["cam/{mtime:%Y}/", "cam/{mtime:%m}/"], ["cam/"]),
    ],
)
def test_list_prefixes_lists_each_part_once(prefixes: list[str], listed: list[str]) -> None:
    watches = [WatchConfig(path=Path(f"/w{i}"), prefix=p) for i, p in enumerate(prefixes)]
    assert listed == list_prefixes(watches)


def test_result_ok_ignores_extras_only() -> None:
    res = Result(findings=extras({"z": obj(key="z")}, expected=(), records=()))
    assert res.ok and "1 extra" in res.render()
    res.findings.append(check_file(path="/r/x", key=KEY, local=LOCAL, record=None, remote=None, md5=None))  # type: ignore[arg-type]
    assert not res.ok and ["/r/x"] == to_repair(res)
    assert not Result(problems=["watch root /w does not exist"]).ok


class _Listing:
    def __init__(self, objects: list[ObjectInfo]) -> None:
        self.objects, self.calls = objects, []  # type: ignore[var-annotated]

    def iter_objects(self, prefix: str, delimiter: str = "", *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        self.calls.append((prefix, delimiter))
        return iter([o for o in self.objects if o.key.startswith(prefix)])


def test_verify_walks_with_the_daemons_rules_and_hashes_only_unvouched_files(tmp_path: Path, ledger: Any) -> None:
    """Excluded and temp files are not expected; a file the ledger vouches for is not read; others are."""
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    (root / "d" / "ok.txt").write_bytes(b"ok")
    (root / "new.txt").write_bytes(b"new")
    (root / "skip.part").write_bytes(b"temp")
    os.mkfifo(root / "pipe")
    st = os.stat(root / "d" / "ok.txt")
    ledger.record_uploaded(
        FileRecord(str(root / "d" / "ok.txt"), "p/d/ok.txt", 2, st.st_mtime_ns, st.st_ino, "f" * 32, 1.0)
    )
    new_md5 = hashlib.md5(b"new").hexdigest()
    remote = _Listing([ObjectInfo("p/d/ok.txt", 2, "f" * 32), ObjectInfo("p/new.txt", 3, new_md5)])
    cfg: Any = type("Cfg", (), {"watches": (WatchConfig(path=root, prefix="p/", exclude=("*.part",)),)})()
    res = verify(cfg, remote, ledger)  # type: ignore[arg-type]
    assert res.ok, res.render()
    assert (2, 1, 2) == (res.files, res.hashed, res.objects)
    assert [("p/", "")] == remote.calls  # one recursive listing


def test_kept_versions_are_not_extra(tmp_path: Path, ledger: Any) -> None:
    """Objects under kept_prefix (on_change = "keep") are past versions, not strays: with prefix "" the
    listing sees them, and verify does not list them as extra; a real stray still is."""
    root = tmp_path / "w"
    root.mkdir()
    remote = _Listing(
        [ObjectInfo(".qsyncd-kept/a.txt@20261203T000000Z-ffffffff", 2, "f" * 32), ObjectInfo("x", 1, "0" * 32)]
    )
    cfg: Any = type("Cfg", (), {"watches": (WatchConfig(path=root),)})()
    res = verify(cfg, remote, ledger)  # type: ignore[arg-type]
    assert [f.key for f in res.of_kind("extra")] == ["x"]
