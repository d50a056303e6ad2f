"""The uploader's renames and on_change (qsyncd.reuse) against the in-memory remote: one stage, no sleeps.

The same behaviour over real HTTP (the emulator and SeaweedFS, the real daemon) is in
tests/e2e/test_e2e_history.py; this module covers each rule and its corner cases quickly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import structlog
from qsynctest.memremote import MemRemote

from qsyncd.changes import ChangeRules
from qsyncd.config import UploadConfig
from qsyncd.errors import ChangeRefused
from qsyncd.state import Ledger
from qsyncd.upload import Uploader

MiB = 1 << 20
SETTINGS = UploadConfig(multipart_threshold=8 * MiB, part_size=4 * MiB, retry_initial_seconds=0.01)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, MemRemote, Ledger, Uploader]:
    root = tmp_path / "root"
    root.mkdir()
    remote = MemRemote()
    ledger = Ledger(tmp_path / "state")
    return root, remote, ledger, Uploader(remote, ledger, SETTINGS, log=structlog.get_logger(), wall=lambda: 1e9)


def rules(root: Path, **kw: str) -> ChangeRules:
    base = {"renames": "copy", "on_change": "keep", "kept_prefix": ".k/"}
    return ChangeRules(root=str(root), **{**base, **kw})  # type: ignore[arg-type]


def calls(remote: MemRemote, *methods: str) -> list[str]:
    return [m for m, _ in remote.store.calls if m in methods]


@pytest.mark.parametrize(("renames", "action", "old_key_stays"), [("copy", "copied", True), ("move", "moved", False)])
def test_a_renamed_file_is_copied_or_moved_not_sent(
    world: tuple[Path, MemRemote, Ledger, Uploader], renames: str, action: str, old_key_stays: bool
) -> None:
    root, remote, ledger, up = world
    data = os.urandom(50_000)
    (root / "a").write_bytes(data)
    up.upload(str(root / "a"), "a", rules=rules(root, renames=renames))
    (root / "a").rename(root / "b")
    remote.store.calls.clear()
    out = up.upload(str(root / "b"), "b", rules=rules(root, renames=renames))
    assert (out.action, out.source_key, out.bytes_sent) == (action, "a", 0)
    assert calls(remote, "put", "upload_part") == [], "a renamed file's bytes went up again"
    objects = remote.store.objects()
    assert objects["b"] == data and ("a" in objects) == old_key_stays
    assert ledger.get(str(root / "b")) is not None
    assert (ledger.get(str(root / "a")) is not None) == old_key_stays  # a move takes the old record along


def test_renames_upload_sends_the_bytes(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    root, _remote, _, up = world
    (root / "a").write_bytes(os.urandom(5000))
    up.upload(str(root / "a"), "a", rules=rules(root, renames="upload"))
    (root / "a").rename(root / "b")
    assert up.upload(str(root / "b"), "b", rules=rules(root, renames="upload")).action == "uploaded"


def test_move_copies_while_the_old_file_is_still_there(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    root, remote, _, up = world
    data = os.urandom(5000)
    (root / "a").write_bytes(data)
    up.upload(str(root / "a"), "a", rules=rules(root, renames="move"))
    (root / "b").write_bytes(data)  # a copy, not a rename: "a" still needs its object
    assert up.upload(str(root / "b"), "b", rules=rules(root, renames="move")).action == "copied"
    assert set(remote.store.objects()) == {"a", "b"}


def test_an_inode_alone_is_never_trusted(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    """A new file with other bytes is uploaded even if it looks like the old one (size, inode, mtime)."""
    root, remote, _ledger, up = world
    (root / "a").write_bytes(b"x" * 5000)
    up.upload(str(root / "a"), "a", rules=rules(root))
    st = os.stat(root / "a")
    (root / "a").rename(root / "b")
    (root / "b").write_bytes(b"y" * 5000)  # same inode and size: other bytes
    os.utime(root / "b", ns=(st.st_atime_ns, st.st_mtime_ns))
    out = up.upload(str(root / "b"), "b", rules=rules(root))
    assert out.action == "uploaded" and remote.store.objects()["b"] == b"y" * 5000


def test_a_changed_file_keeps_its_previous_version(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    root, remote, ledger, up = world
    old, new = os.urandom(3000), os.urandom(3000)
    (root / "f").write_bytes(old)
    up.upload(str(root / "f"), "f", rules=rules(root))
    (root / "f").write_bytes(new)
    out = up.upload(str(root / "f"), "f", rules=rules(root))
    assert out.action == "uploaded" and out.kept.startswith(".k/f@20010909T014640Z-")
    objects = remote.store.objects()
    assert objects["f"] == new and objects[out.kept] == old
    assert [k["kept_key"] for k in ledger.kept_versions("f")] == [out.kept]


def test_a_versioned_bucket_keeps_it_itself(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    root, remote, _, up = world
    remote.store.versioning[remote.bucket] = "enabled"
    (root / "f").write_bytes(b"1" * 100)
    up.upload(str(root / "f"), "f", rules=rules(root))
    (root / "f").write_bytes(b"2" * 100)
    assert up.upload(str(root / "f"), "f", rules=rules(root)).kept == "bucket_versioning"
    (root / "f").write_bytes(b"3" * 100)
    up.upload(str(root / "f"), "f", rules=rules(root))
    assert set(remote.store.objects()) == {"f"}, "with versioning no copy is made"
    assert calls(remote, "versioning") == ["versioning"], "versioning is asked once, not per file"


def test_refuse_leaves_the_bucket_alone(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    root, remote, _ledger, up = world
    (root / "f").write_bytes(b"good" * 100)
    up.upload(str(root / "f"), "f", rules=rules(root, on_change="refuse"))
    (root / "f").write_bytes(b"evil" * 100)
    with pytest.raises(ChangeRefused, match='on_change = "refuse"'):
        up.upload(str(root / "f"), "f", rules=rules(root, on_change="refuse"))
    assert remote.store.objects() == {"f": b"good" * 100}


def test_overwrite_replaces_and_keeps_nothing(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    root, remote, _, up = world
    (root / "f").write_bytes(b"1" * 100)
    up.upload(str(root / "f"), "f", rules=rules(root, on_change="overwrite"))
    (root / "f").write_bytes(b"2" * 100)
    assert up.upload(str(root / "f"), "f", rules=rules(root, on_change="overwrite")).kept == ""
    assert remote.store.objects() == {"f": b"2" * 100}


def test_a_rename_chain_keeps_only_the_dropped_version(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    """logrotate: .2 -> .3 and .1 -> .2 over names in use; only the version that left the disk is kept."""
    root, remote, _, up = world
    r = rules(root)
    versions = {n: os.urandom(4000 + n) for n in (1, 2, 3)}
    for n, data in versions.items():
        (root / f"log.{n}").write_bytes(data)
        up.upload(str(root / f"log.{n}"), f"log.{n}", rules=r)
    (root / "log.3").unlink()
    (root / "log.2").rename(root / "log.3")
    (root / "log.1").rename(root / "log.2")
    outs = [up.upload(str(root / f"log.{n}"), f"log.{n}", rules=r) for n in (3, 2)]
    assert [o.action for o in outs] == ["copied", "copied"]
    objects = remote.store.objects()
    kept = {k: v for k, v in objects.items() if k.startswith(".k/")}
    assert list(kept.values()) == [versions[3]], "exactly the dropped version is kept"
    assert (objects["log.3"], objects["log.2"]) == (versions[2], versions[1])


def test_a_vanished_donor_means_upload(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    root, remote, _, up = world
    (root / "a").write_bytes(b"z" * 5000)
    up.upload(str(root / "a"), "a", rules=rules(root))
    with remote.store.lock:
        del remote.store._objects[remote.bucket]["a"]  # deleted behind qsyncd's back
    (root / "a").rename(root / "b")
    assert up.upload(str(root / "b"), "b", rules=rules(root)).action == "uploaded"


def test_a_large_renamed_file_is_copied_part_by_part(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    remote = MemRemote(max_copy_size=5 * MiB)
    up = Uploader(remote, Ledger(tmp_path / "state"), SETTINGS, log=structlog.get_logger())
    data = os.urandom(12 * MiB)
    (root / "big").write_bytes(data)
    assert up.upload(str(root / "big"), "big", rules=rules(root)).action == "uploaded"
    (root / "big").rename(root / "big2")
    remote.store.calls.clear()
    assert up.upload(str(root / "big2"), "big2", rules=rules(root)).action == "copied"
    assert calls(remote, "put", "upload_part") == []
    assert remote.store.objects()["big2"] == data and remote.store.parts("big2") > 1


def test_a_dry_run_says_a_renamed_file_would_be_copied(world: tuple[Path, MemRemote, Ledger, Uploader]) -> None:
    from qsyncd.dryrun import examine

    root, remote, _, up = world
    (root / "a").write_bytes(b"q" * 5000)
    up.upload(str(root / "a"), "a", rules=rules(root))
    (root / "a").rename(root / "b")
    remote.store.calls.clear()
    d = examine(up, str(root / "b"), "b", rules=rules(root))
    assert (d.action, d.reason) == ("upload", "renamed") and "as a: copied there" in d.detail
    assert calls(remote, "put", "copy", "move") == [], "a dry run writes nothing"
    assert "as a: moved there" in examine(up, str(root / "b"), "b", rules=rules(root, renames="move")).detail
    assert examine(up, str(root / "b"), "b", rules=rules(root, renames="upload")).reason == "not_in_bucket"
