"""ListObjects over many objects (5,000 in CI, 50,000 in soak mode): correct paging and a restart that
reloads the index."""

from __future__ import annotations

from pathlib import Path

import pytest
from emulator_helpers import sdk_bucket

from qsyncd.emulator import Emulator


# 5,000 objects are 5 pages of 1000 interleaved over 7 prefixes, reloaded after a restart: the same paths as
# 50,000 (which take ~20 s to write on the 2-core machine), run in soak mode
@pytest.mark.parametrize("n", [5_000, pytest.param(50_000, marks=pytest.mark.slow)])
def test_listing_objects(tmp_path: Path, n: int) -> None:
    """With n objects, paging ListObjects by 1000 returns every key once, in order, and survives a restart."""
    from qsyncd.emulator.store import ObjectMeta

    root = tmp_path / "root"
    keys = [f"dir{i % 7}/file-{i:06d}" for i in range(n)]
    with Emulator(root, buckets=["test-bucket"], fsync=False) as emu:
        for key in keys:
            writer = emu.store.object_writer("test-bucket", key)
            writer.write(b"x")
            md5 = writer.finish()
            emu.store.commit_object(
                "test-bucket",
                writer.path,
                ObjectMeta(key=key, size=1, etag=md5, mime_type="text/plain", created=0.0, modified=0.0),
            )
    with Emulator(root) as emu:
        bucket = sdk_bucket(emu)
        seen: list[str] = []
        marker = ""
        while True:
            page = bucket.list_objects(limit="1000", marker=marker or None)
            seen.extend(k["key"] for k in page["keys"])
            if not page["has_more"]:
                break
            marker = page["next_marker"]
        assert sorted(keys) == seen
        top = bucket.list_objects(delimiter="/")
        assert [f"dir{i}/" for i in range(7)] == top["common_prefixes"]
