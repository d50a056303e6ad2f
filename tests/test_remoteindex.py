"""RemoteIndex (listings that stand in for HEADs): the index alone with a fake clock, the uploader using it,
and `qsyncd sync` listing a directory of new files instead of HEADing each, against the emulator."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import structlog
from qsynctest import BUCKET, REPO, FakeClock, json_events, write_config

from qsyncd.config import UploadConfig
from qsyncd.remote.base import ObjectInfo
from qsyncd.remote.qingstor import QingStorRemote
from qsyncd.remoteindex import RemoteIndex, parent_prefix
from qsyncd.source import b64
from qsyncd.state import Ledger
from qsyncd.upload import Uploader


def info(key: str, size: int = 3, etag: str = "0" * 32) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, etag=etag)


# ---------------------------------------------------------------- the index alone


def test_parent_prefix_is_everything_up_to_the_last_slash() -> None:
    """parent_prefix keeps the trailing "/" and is "" for a key at the bucket's root."""
    assert ("a/b/", "a/", "") == (parent_prefix("a/b/c.txt"), parent_prefix("a/x"), parent_prefix("top"))


def test_lookup_covers_present_keys_until_ttl_and_absent_ones_until_evicted() -> None:
    """A listing covers its prefix: present keys give their info for ttl, absent ones None for as long as it is kept."""
    clock = FakeClock()
    idx = RemoteIndex(ttl=300, clock=clock)
    assert idx.record_listing("d/", [info("d/a", 5, "ab" * 16)], clock.now)
    assert (True, info("d/a", 5, "ab" * 16)) == idx.lookup("d/a", clock.now)
    assert (True, None) == idx.lookup("d/new", clock.now)
    clock.now += 299.9
    assert (True, info("d/a", 5, "ab" * 16)) == idx.lookup("d/a")
    clock.now += 0.1
    assert (False, None) == idx.lookup("d/a")  # another writer may have deleted or replaced it: HEAD
    assert (True, None) == idx.lookup("d/new")  # a stale "absent" only ever costs the PUT a HEAD would
    assert 1 == len(idx)


def test_a_long_sync_sends_no_head_for_a_key_a_listing_answered() -> None:
    """Issue 21: listings made early in a scan still answer for the new files of their directory an hour later;
    on main they expired after 300 s and every file uploaded later cost a HEAD."""
    clock = FakeClock()
    idx = RemoteIndex(clock=clock)
    for d in range(50):
        assert idx.record_listing(f"d{d}/", [], clock.now)
    uncovered = 0
    for i in range(50 * 100):  # 5,000 uploads at about one a second
        key = f"d{i % 50}/f{i}"
        covered, found = idx.lookup(key)
        uncovered += not covered or found is not None
        idx.forget(key)  # uploaded
        clock.advance(0.7)
    assert 0 == uncovered
    assert (False, None) == idx.lookup("d0/f0")  # uploaded by this daemon: HEAD, never "absent"


def test_ttl_counts_from_when_the_listing_was_started() -> None:
    """A listing that took long to arrive is as old as its request: ttl counts from ``started``."""
    clock = FakeClock()
    idx = RemoteIndex(ttl=10, clock=clock)
    assert idx.record_listing("d/", [info("d/x")], now=clock.now + 6, started=clock.now)
    clock.now += 9.9
    assert (True, info("d/x")) == idx.lookup("d/x")
    clock.now += 0.1
    assert (False, None) == idx.lookup("d/x")
    assert not idx.record_listing("d/", [], now=clock.now, started=clock.now - 10)


def test_coverage_is_only_for_the_exact_parent_prefix() -> None:
    """A listing of "a/" covers "a/x" but not "a/sub/x", "ab/x" or "x"; objects below the prefix are not kept."""
    clock = FakeClock()
    idx = RemoteIndex(clock=clock)
    idx.record_listing("a/", [info("a/x"), info("a/sub/y"), info("b/z")], clock.now)
    assert (True, info("a/x")) == idx.lookup("a/x")
    assert (False, None) == idx.lookup("a/sub/y")
    assert (False, None) == idx.lookup("ab/x")
    assert (False, None) == idx.lookup("x")
    assert 1 == len(idx)
    idx.record_listing("", [info("x")], clock.now)
    assert (True, info("x")) == idx.lookup("x")
    assert (True, None) == idx.lookup("y")


def test_forget_uncovers_a_key_also_for_a_listing_started_before() -> None:
    """forget(key) makes the key uncovered, also when a listing started before the forget is recorded after it."""
    clock = FakeClock()
    idx = RemoteIndex(clock=clock)
    idx.record_listing("d/", [info("d/a"), info("d/b")], clock.now)
    idx.forget("d/a")
    assert (False, None) == idx.lookup("d/a")
    assert (True, info("d/b")) == idx.lookup("d/b")
    clock.now += 1
    started = clock.now
    clock.now += 1
    idx.forget("d/b")  # uploaded while a new listing of d/ was in flight
    clock.now += 1
    idx.record_listing("d/", [info("d/a"), info("d/b")], clock.now, started=started)
    assert (True, info("d/a")) == idx.lookup("d/a")  # forgotten before this listing started
    assert (False, None) == idx.lookup("d/b")


def test_a_forgotten_key_stays_uncovered_after_its_mark_expires() -> None:
    """The forget mark lives ttl seconds; the listing it concerns lives on, and must not call the key absent after."""
    clock = FakeClock()
    idx = RemoteIndex(ttl=10, clock=clock)
    idx.record_listing("d/", [], clock.now)
    idx.forget("d/a")  # uploaded after the listing
    started = clock.advance(1)
    clock.advance(1)
    idx.forget("d/b")  # uploaded while a new listing of e/ was in flight
    clock.advance(1)
    idx.record_listing("e/", [], clock.now, started=started)
    idx.forget("e/c")
    clock.advance(60)  # every mark has expired
    idx.forget("x/unrelated")
    assert [(False, None)] * 3 == [idx.lookup(k) for k in ("d/a", "d/b", "e/c")]
    assert (True, None) == idx.lookup("d/other")


def test_forget_marks_live_only_as_long_as_a_listing_may_be_in_flight() -> None:
    """A mark lives ``in_flight`` seconds, not ``ttl``: a first sync forgets every key it uploads, and marks kept
    for 300 s held 90,000 keys at 300 files/s. A listing that took longer than that to arrive is refused, so an
    expired mark can never be needed by it."""
    clock = FakeClock()
    idx = RemoteIndex(ttl=300, in_flight=5, clock=clock)
    started = clock.now
    clock.advance(1)
    idx.forget("d/a")  # uploaded while a listing of d/ is in flight
    clock.advance(3)
    for i in range(10):
        idx.forget(f"x/{i}")
    assert len(idx._forgotten) == 11
    clock.advance(2)  # the mark for d/a is 5 s old: expired
    idx.forget("x/late")
    assert list(idx._forgotten) == [*(f"x/{i}" for i in range(10)), "x/late"]
    assert not idx.record_listing("d/", [info("d/a")], clock.now, started=started)  # 6 s in flight: refused
    assert (False, None) == idx.lookup("d/a")
    assert (False, None) == idx.lookup("d/other")  # no listing of d/: HEAD
    started = clock.now
    clock.advance(4)  # within in_flight: kept, and present answers still count for ttl
    assert idx.record_listing("d/", [info("d/a")], clock.now, started=started)
    assert (True, info("d/a")) == idx.lookup("d/a")
    clock.advance(200)
    assert (True, info("d/a")) == idx.lookup("d/a")


def test_memory_is_bounded_by_max_entries() -> None:
    """Past max_entries the oldest listings are dropped; a listing larger than the cap is not kept at all."""
    clock = FakeClock()
    idx = RemoteIndex(max_entries=8, clock=clock)
    idx.record_listing("a/", [info(f"a/{i}") for i in range(3)], clock.now)
    idx.record_listing("b/", [info(f"b/{i}") for i in range(3)], clock.now)
    assert 6 == len(idx)
    idx.record_listing("c/", [info(f"c/{i}") for i in range(3)], clock.now)
    assert 6 == len(idx)
    assert (False, None) == idx.lookup("a/0")
    assert (True, info("b/0")) == idx.lookup("b/0")
    assert not idx.record_listing("c/", [info(f"c/{i}") for i in range(8)], clock.now)
    assert (False, None) == idx.lookup("c/0")


def test_empty_listings_and_forget_marks_count_against_the_bound() -> None:
    """Many empty directories cannot grow the index without bound; running out of room for forget marks drops
    the oldest mark (listings started before it are refused from then on) instead of every listing."""
    clock = FakeClock()
    idx = RemoteIndex(max_entries=10, clock=clock)
    for d in range(25):
        idx.record_listing(f"e{d}/", [], clock.now)
    assert [(False, None)] * 15 == [idx.lookup(f"e{d}/x") for d in range(15)]
    assert [(True, None)] * 10 == [idx.lookup(f"e{d}/x") for d in range(15, 25)]
    started = clock.advance(1)
    for i in range(12):
        clock.advance(1)
        idx.forget(f"z/{i}")
    assert (True, None) == idx.lookup("e24/x")  # still kept
    assert not idx.record_listing("z/", [], clock.now, started=started)  # it started before a dropped mark


def test_a_tree_listing_answers_for_every_prefix_below_it() -> None:
    """record_tree: what it found is kept per parent prefix (present answers for ttl), and any other prefix below
    it, listed or not, was empty (absent answers, kept as a listing's are); nothing outside it is covered."""
    clock = FakeClock()
    idx = RemoteIndex(ttl=300, clock=clock)
    found = [info("p/a/x", 5, "ab" * 16), info("p/a/b/y"), info("p/top"), info("q/outside")]
    assert idx.record_tree("p/", found, clock.now)
    assert (True, info("p/a/x", 5, "ab" * 16)) == idx.lookup("p/a/x")
    assert (True, info("p/a/b/y")) == idx.lookup("p/a/b/y")
    assert (True, info("p/top")) == idx.lookup("p/top")
    assert [(True, None)] * 3 == [idx.lookup(k) for k in ("p/a/new", "p/never/listed/z", "p/new")]
    assert [(False, None)] * 2 == [idx.lookup(k) for k in ("q/outside", "other/z")]
    clock.advance(300)
    assert (False, None) == idx.lookup("p/a/x")  # present: HEAD after ttl, as with any listing
    assert (True, None) == idx.lookup("p/never/listed/z")


def test_a_key_forgotten_under_a_tree_listing_stays_uncovered() -> None:
    """An upload under a tree listing uncovers its key, also after the forget mark has expired."""
    clock = FakeClock()
    idx = RemoteIndex(ttl=10, clock=clock)
    started = clock.now
    clock.advance(1)
    idx.forget("p/d/early")  # written while the tree listing was in flight
    assert idx.record_tree("p/", [], clock.now, started=started)
    idx.forget("p/d/late")
    clock.advance(120)  # both marks expired
    idx.forget("x/unrelated")
    assert [(False, None)] * 2 == [idx.lookup(k) for k in ("p/d/early", "p/d/late")]
    assert (True, None) == idx.lookup("p/d/other")
    assert not idx.record_tree("p/", [], clock.now, started=clock.now - 61)  # took longer than in_flight


def test_an_evicted_listing_leaves_a_hole_in_the_tree_over_it() -> None:
    """When the size bound drops a listing the tree found objects in, the tree no longer calls that prefix empty."""
    clock = FakeClock()
    idx = RemoteIndex(max_entries=12, clock=clock)
    assert idx.record_tree("p/", [info("p/a/1"), info("p/a/2"), info("p/b/1")], clock.now)
    clock.advance(1)
    assert idx.record_listing("z/", [info(f"z/{i}") for i in range(8)], clock.now)  # evicts p/a/ (the oldest)
    assert (False, None) == idx.lookup("p/a/1") == idx.lookup("p/a/new")  # unknown now: HEAD
    assert (True, None) == idx.lookup("p/c/new")  # still known to be empty
    assert not idx.record_tree("p/", [info(f"p/{i}/x") for i in range(6)], clock.now)  # over half the bound


def test_fresh_says_when_listing_a_prefix_again_would_tell_nothing_new() -> None:
    """The scan skips a directory's listing where the index already answers: below a tree listing, or a listing
    that found nothing, or one that found objects less than ttl / 2 ago."""
    clock = FakeClock()
    idx = RemoteIndex(ttl=300, clock=clock)
    idx.record_tree("p/", [info("p/full/a")], clock.now)
    idx.record_listing("empty/", [], clock.now)
    idx.record_listing("full/", [info("full/a")], clock.now)
    assert [True, True, True, True, False] == [
        idx.fresh(k) for k in ("p/", "p/deep/er/", "p/full/", "empty/", "other/")
    ]
    clock.advance(150)
    assert [True, False, True, True] == [idx.fresh(k) for k in ("p/deep/", "p/full/", "empty/", "p/")]
    assert not idx.fresh("full/")
    idx.clear()
    assert not idx.fresh("p/deep/")


def test_index_is_safe_from_many_threads() -> None:
    """Concurrent record/lookup/forget from several threads keep the entry count consistent."""
    clock = FakeClock()
    idx = RemoteIndex(max_entries=10_000, clock=clock)

    def work(n: int) -> None:
        for i in range(200):
            p = f"t{n}/{i % 7}/"
            idx.record_listing(p, [info(p + "k")], clock.now)
            idx.lookup(p + "k")
            idx.forget(p + "k")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0 == len(idx)


# ---------------------------------------------------------------- the uploader with an index


def _ops(emulator: Any, name: str) -> list[str]:
    return [r.key for r in emulator.requests if r.operation == name]


def test_uploader_uses_a_covering_listing_and_heads_otherwise(
    emulator: Any, remote: QingStorRemote, ledger: Ledger, tmp_path: Path
) -> None:
    """Covered keys cost no HEAD (absent: PUT; same content: skipped; same size other bytes: PUT); uncovered: HEAD."""
    clock = FakeClock()
    idx = RemoteIndex(clock=clock)
    up = Uploader(remote, ledger, UploadConfig(), log=structlog.get_logger(), index=idx)
    try:
        same, other = b"same bytes", b"old content"
        for key, data in (("d/same.bin", same), ("d/other.bin", other)):
            remote.put(key, io.BytesIO(data), len(data), b64(hashlib.md5(data).digest()))
        (tmp_path / "new.bin").write_bytes(b"new")
        (tmp_path / "same.bin").write_bytes(same)
        (tmp_path / "other.bin").write_bytes(b"new content")
        idx.record_listing("d/", remote.list_objects("d/", "/"), clock.now)
        emulator.clear_requests()
        outs = {n: up.upload(str(tmp_path / n), "d/" + n) for n in ("new.bin", "same.bin", "other.bin")}
        assert ("uploaded", "skipped", "remote_match", "uploaded") == (
            outs["new.bin"].action,
            outs["same.bin"].action,
            outs["same.bin"].reason,
            outs["other.bin"].action,
        )
        assert [] == _ops(emulator, "HeadObject")
        assert ["d/new.bin", "d/other.bin"] == sorted(_ops(emulator, "PutObject"))
        assert b"new content" == emulator.object_bytes(BUCKET, "d/other.bin")
        # uploaded keys are forgotten: the (now stale) listing no longer speaks for them
        assert (False, None) == idx.lookup("d/new.bin")
        emulator.clear_requests()
        (tmp_path / "late.bin").write_bytes(b"late")
        (tmp_path / "same2.bin").write_bytes(same)
        remote.put("d/same2.bin", io.BytesIO(same), len(same), b64(hashlib.md5(same).digest()))
        clock.now += 301  # older than ttl: "absent" is still trusted, "present" costs a HEAD again
        idx.record_listing("d/", remote.list_objects("d/", "/"), clock.now - 301, started=clock.now - 301)
        emulator.clear_requests()
        assert "uploaded" == up.upload(str(tmp_path / "late.bin"), "d/late.bin").action
        assert ([], ["d/late.bin"]) == (_ops(emulator, "HeadObject"), _ops(emulator, "PutObject"))
        assert "skipped" == up.upload(str(tmp_path / "same2.bin"), "d/same2.bin").action
        assert (["d/same2.bin"], ["d/late.bin"]) == (_ops(emulator, "HeadObject"), _ops(emulator, "PutObject"))
    finally:
        up.close()


# ---------------------------------------------------------------- `qsyncd sync` end to end


def _sync(cfg: Path) -> subprocess.CompletedProcess[str]:
    """`qsyncd sync` of ``cfg`` with JSON events; it must exit 0."""
    res = subprocess.run(
        [sys.executable, "-m", "qsyncd", "sync", "-c", str(cfg), "--no-progress", "--log-format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(REPO),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert 0 == res.returncode, res.stdout + res.stderr
    return res


def test_sync_lists_a_directory_instead_of_heading_each_new_file(
    emulator: Any, remote: QingStorRemote, tmp_path: Path
) -> None:
    """`qsyncd sync` of 50 new files in one directory: 1 ListObjects, 0 HEAD, 50 PUT; a matching
    object is still skipped."""
    root = tmp_path / "drop"
    (root / "cam").mkdir(parents=True)
    new = {f"cam/{i:03d}.jpg": os.urandom(1000 + i) for i in range(50)}
    for rel, data in new.items():
        (root / rel).write_bytes(data)
    match = os.urandom(2048)  # already in the bucket with the same content: must be skipped, not PUT
    (root / "cam/zz-match.jpg").write_bytes(match)
    remote.put("p/cam/zz-match.jpg", io.BytesIO(match), len(match), b64(hashlib.md5(match).digest()))
    old = os.path.getmtime(root / "cam/000.jpg") - 3600
    for f in (root / "cam").iterdir():
        os.utime(f, (old, old))  # lying in the directory for an hour: no quiet period to wait out
    cfg = write_config(tmp_path / "q.toml", endpoint=emulator.url, watch=root, state=tmp_path / "state", prefix="p/")
    emulator.clear_requests()
    res = _sync(cfg)
    ok = [r for r in emulator.requests if r.status < 300]
    assert 1 == sum(r.operation == "ListObjects" for r in emulator.requests)
    out = res.stdout + "\n" + res.stderr
    # if a HEAD was sent, say why: every warning and error the sync logged, and what the emulator saw
    why = [e for e in json_events(out) if e.get("level") in ("warning", "error")] or out[-3000:]
    seen = [(r.operation, r.key, r.status) for r in emulator.requests]
    assert [] == [r.key for r in emulator.requests if r.operation == "HeadObject"], (why, seen)
    assert sorted("p/" + k for k in new) == sorted(r.key for r in ok if r.operation == "PutObject")
    for rel, data in new.items():
        assert data == emulator.object_bytes(BUCKET, "p/" + rel)
    skipped = json_events(res.stdout + "\n" + res.stderr, "upload_skipped")
    assert [("p/cam/zz-match.jpg", "remote_match")] == [(e["key"], e["reason"]) for e in skipped]


def test_a_first_sync_lists_its_prefix_once_not_each_directory(
    emulator: Any, remote: QingStorRemote, tmp_path: Path
) -> None:
    """A first `qsyncd sync` of 12 directories of 9 new files each: one ListObjects of the whole prefix (there
    was one per directory), no HEAD; an object already there with the same bytes is skipped, one with other
    bytes is replaced. The second sync, with the ledger full, lists nothing. (Listing each directory of
    this tree sent 12 ListObjects.)"""
    root = tmp_path / "drop"
    files = {f"d{d:02d}/{i}.jpg": os.urandom(500 + 9 * d + i) for d in range(12) for i in range(9)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    same, other = files["d03/0.jpg"], b"not these bytes"
    remote.put("p/d03/0.jpg", io.BytesIO(same), len(same), b64(hashlib.md5(same).digest()))
    remote.put("p/d04/1.jpg", io.BytesIO(other), len(other), b64(hashlib.md5(other).digest()))
    old = os.path.getmtime(root / "d00/0.jpg") - 3600
    for f in root.rglob("*.jpg"):
        os.utime(f, (old, old))  # no quiet period to wait out
    cfg = write_config(tmp_path / "q.toml", endpoint=emulator.url, watch=root, state=tmp_path / "state", prefix="p/")

    emulator.clear_requests()
    res = _sync(cfg)
    out = res.stdout + "\n" + res.stderr
    seen = [(r.operation, r.key, r.status) for r in emulator.requests if r.operation != "PutObject"]
    assert 1 == sum(r.operation == "ListObjects" for r in emulator.requests), seen
    # no HEAD for a new file; the one object being replaced is looked at before it is overwritten (on_change)
    assert {"p/d04/1.jpg"} >= {r.key for r in emulator.requests if r.operation == "HeadObject"}, seen
    put = sorted(r.key for r in emulator.requests if r.operation == "PutObject" and r.key.startswith("p/"))
    assert sorted("p/" + k for k in files if k != "d03/0.jpg") == put
    for rel, data in files.items():
        assert data == emulator.object_bytes(BUCKET, "p/" + rel)
    skipped = json_events(out, "upload_skipped")
    assert [("p/d03/0.jpg", "remote_match")] == [(e["key"], e["reason"]) for e in skipped]
    emulator.clear_requests()
    _sync(cfg)
    assert [] == [(r.operation, r.key) for r in emulator.requests if r.operation in ("ListObjects", "HeadObject")]


def test_list_tree_gives_up_on_a_crowded_prefix_and_skips_a_dated_one(tmp_path: Path) -> None:
    """list_tree lists at most `limit` keys (then the scan lists directory by directory, as before); a templated
    prefix sends nothing; a failed listing is logged and changes nothing."""
    from qsynctest.memremote import MemRemote

    from qsyncd.config import WatchConfig
    from qsyncd.errors import Unreachable
    from qsyncd.service.listing import list_tree
    from qsyncd.service.roots import Roots

    remote = MemRemote()
    for i in range(5):
        remote.put(f"p/d{i}/x", io.BytesIO(b"x"), 1, b64(hashlib.md5(b"x").digest()))
    log = structlog.get_logger()
    roots = Roots(
        (WatchConfig(path=tmp_path, prefix="p/"), WatchConfig(path=tmp_path / "dated", prefix="{mtime:%Y}/")), log
    )
    plain, dated = roots.get(str(tmp_path)), roots.get(str(tmp_path / "dated"))
    assert plain is not None and dated is not None
    idx = RemoteIndex(clock=lambda: 0.0)
    remote.store.calls.clear()
    assert not list_tree(plain, remote=remote, index=idx, clock=lambda: 0.0, log=log, limit=4)
    assert (False, None) == idx.lookup("p/new/y")
    assert list_tree(plain, remote=remote, index=idx, clock=lambda: 0.0, log=log, limit=5)
    assert (True, None) == idx.lookup("p/new/y") and idx.lookup("p/d0/x")[1] is not None
    assert not list_tree(dated, remote=remote, index=RemoteIndex(clock=lambda: 0.0), clock=lambda: 0.0, log=log)
    assert [("list_objects", "p/")] * 2 == remote.store.calls
    remote.store.fail("list_objects", Unreachable("no route", code="unreachable", operation="ListObjects"))
    assert not list_tree(plain, remote=remote, index=RemoteIndex(clock=lambda: 0.0), clock=lambda: 0.0, log=log)


def test_the_scan_lists_the_tree_only_when_it_has_new_files_and_not_again_once_crowded(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A scan with no new file sends no listing; one with new files sends the one tree listing; a prefix
    found too crowded is listed directory by directory, and this process does not try its tree again."""
    from qsynctest.memremote import MemRemote
    from qsynctest.scanning import make_scanner

    from qsyncd.config import WatchConfig
    from qsyncd.service import listing
    from qsyncd.service.roots import Roots
    from qsyncd.service.scanner import Scanner

    def scanner(root: Path, remote: MemRemote) -> Scanner:
        roots = Roots((WatchConfig(path=root, prefix="p/"),), structlog.get_logger())
        return make_scanner(roots, tmp_path / f"state-{root.name}", remote, list_directories=True)

    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    for d in ("a", "b"):
        (full / d).mkdir(parents=True)
        for i in range(9):
            (full / d / f"{i}").write_bytes(b"x")
    remote = MemRemote()
    for i in range(4):
        remote.put(f"p/z/{i}", io.BytesIO(b"x"), 1, b64(hashlib.md5(b"x").digest()))
    remote.store.calls.clear()
    scanner(empty, remote).scan(str(empty), str(empty), "startup")
    assert [] == remote.store.calls
    scanner(full, remote).scan(str(full), str(full), "startup")
    assert [("list_objects", "p/")] == remote.store.calls
    remote.store.calls.clear()
    monkeypatch.setattr(listing, "TREE_KEYS", 3)
    crowded = scanner(full, remote)
    crowded.scan(str(full), str(full), "startup")
    assert ["p/", "p/a/", "p/b/"] == sorted(key for _, key in remote.store.calls)
    remote.store.calls.clear()
    crowded.index.clear()
    crowded.scan(str(full), str(full), "periodic")
    assert ["p/a/", "p/b/"] == sorted(key for _, key in remote.store.calls)


def test_hints_the_tree_listing_answers_for_skip_the_listing_threads(tmp_path: Path, monkeypatch: Any) -> None:
    """Under a fresh tree listing a directory's hints go on from the scan's own thread (no listing, no hand-off
    to a listing thread); a directory that is listed has its hints released by the listing thread."""
    import threading

    from qsynctest.memremote import MemRemote
    from qsynctest.scanning import make_scanner

    from qsyncd.config import WatchConfig
    from qsyncd.service import listing
    from qsyncd.service.roots import Roots
    from qsyncd.watch import Hint

    root = tmp_path / "tree"
    for d in ("a", "b"):
        (root / d).mkdir(parents=True)
        for i in range(9):
            (root / d / f"{i}").write_bytes(b"x")
    seen: list[tuple[str, str]] = []

    def emit(hint: Hint) -> None:
        seen.append((threading.current_thread().name, os.path.basename(os.path.dirname(hint.path))))

    def scan(state: str) -> MemRemote:
        remote = MemRemote()
        remote.put("p/z/0", io.BytesIO(b"x"), 1, b64(hashlib.md5(b"x").digest()))  # one key elsewhere
        remote.store.calls.clear()
        roots = Roots((WatchConfig(path=root, prefix="p/"),), structlog.get_logger())
        make_scanner(roots, tmp_path / state, remote, emit=emit, list_directories=True).scan(
            str(root), str(root), "startup"
        )
        return remote

    me = threading.current_thread().name
    assert [("list_objects", "p/")] == scan("one").store.calls
    assert sorted(seen) == sorted([(me, "a")] * 9 + [(me, "b")] * 9)
    seen.clear()
    monkeypatch.setattr(listing, "TREE_KEYS", 0)  # the prefix is crowded now: each directory is listed
    assert ["p/", "p/a/", "p/b/"] == sorted(key for _, key in scan("two").store.calls)
    assert len(seen) == 18 and all(name.startswith("scan-list") for name, _ in seen), seen
