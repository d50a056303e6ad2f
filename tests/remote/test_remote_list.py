"""Contract tests of QingStorRemote.list_objects through the real SDK against the emulator (or live
QingStor, see conftest): paging, prefix + delimiter, the empty prefix, a missing bucket."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from qsynctest import md5_b64, md5_hex
from remote_support import Target

from qsyncd.errors import BucketMissing
from qsyncd.remote.base import ObjectInfo


def _put(remote, key: str, data: bytes) -> None:  # type: ignore[no-untyped-def]
    remote.put(key, io.BytesIO(data), len(data), md5_b64(data))


def test_list_pages_over_more_than_1000_keys(target: Target) -> None:
    """1,003 objects under one prefix come back complete, sorted and once each, over two pages."""
    remote = target.remote()
    keys = [target.key(f"many/{i:05d}") for i in range(1003)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: _put(remote, k, k.encode()), keys))
    before = len(target.emu.requests) if target.emu is not None else 0
    listed = remote.list_objects(target.key("many/"))
    assert keys == [o.key for o in listed]
    assert all((o.size, o.etag) == (len(o.key), md5_hex(o.key.encode())) for o in listed)
    if target.emu is not None:
        assert 2 == sum(r.operation == "ListObjects" for r in target.emu.requests[before:])


def test_list_with_prefix_and_delimiter_returns_only_direct_objects(target: Target) -> None:
    """With delimiter "/" only objects directly under the prefix are listed, with size and unquoted ETag."""
    remote = target.remote()
    data = b"direct object"
    _put(remote, target.key("d/a.txt"), data)
    _put(remote, target.key("d/b.txt"), b"")
    _put(remote, target.key("d/sub/c.txt"), b"nested")
    _put(remote, target.key("dx/d.txt"), b"sibling")
    listed = remote.list_objects(target.key("d/"), "/")
    assert [target.key("d/a.txt"), target.key("d/b.txt")] == [o.key for o in listed]
    a = listed[0]
    assert (a.size, a.etag, dict(a.metadata)) == (len(data), md5_hex(data), {})
    assert (0, md5_hex(b"")) == (listed[1].size, listed[1].etag)
    assert a.etag == remote.head(a.key).etag  # type: ignore[union-attr]
    everything = remote.list_objects(target.key("d"))
    assert 4 == len(everything)
    assert [] == remote.list_objects(target.key("nothing-here/"), "/")


def test_list_with_delimiter_pages_past_common_prefixes(target: Target) -> None:
    """Common prefixes count towards a page: objects after 1,000 sub-"directories" are still found."""
    remote = target.remote()
    subs = [target.key(f"wide/s{i:04d}/x") for i in range(1000)]
    tail = [target.key("wide/zz-1"), target.key("wide/zz-2")]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: _put(remote, k, b"x"), subs + tail))
    assert tail == [o.key for o in remote.list_objects(target.key("wide/"), "/")]


def test_list_empty_prefix_lists_the_bucket(target: Target) -> None:
    """An empty prefix lists from the bucket's root (here: the test's top-level objects via "/")."""
    if target.emu is None:
        pytest.skip("a live bucket may hold anything at its root")
    remote = target.remote()
    _put(remote, "top.bin", b"top")
    _put(remote, target.key("deeper.bin"), b"deep")
    assert [ObjectInfo("top.bin", 3, md5_hex(b"top"), content_type="application/octet-stream")] == [
        ObjectInfo(o.key, o.size, o.etag, content_type=o.content_type) for o in remote.list_objects("", "/")
    ]
    assert {"top.bin", target.key("deeper.bin")} == {o.key for o in remote.list_objects("")}


def test_list_missing_bucket_is_bucket_missing(target: Target) -> None:
    """list_objects() on a bucket that does not exist raises BucketMissing (ListObjects, 404)."""
    remote = target.remote(bucket="qsyncd-no-such-bucket-" + target.prefix[-13:-1])
    with pytest.raises(BucketMissing) as info:
        remote.list_objects(target.key("x/"), "/")
    assert (404, "ListObjects") == (info.value.status, info.value.operation)
