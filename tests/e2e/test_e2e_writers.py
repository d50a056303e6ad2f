"""E2E: how real writers put files into the watched tree (slow writes, temp+rename, cp, rsync, mkdir -p, append)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from e2e_support import assert_remote_equals, ok, op_counts, requests_for
from qsynctest import md5_hex


def _uploads_of(emu, key: str) -> int:
    """Successful whole-object writes of ``key``: PUTs plus completed multipart uploads."""
    return op_counts(emu, "PutObject")[key] + op_counts(emu, "CompleteMultipartUpload")[key]


def test_slow_writer_uploaded_once_after_close(setup):
    """A file written over ~4 s is uploaded once, after the close, with its final content."""
    d = setup.daemon()
    path = setup.root / "slow.log"
    chunks = []
    with open(path, "wb") as f:
        for i in range(8):
            chunk = f"line {i} ".encode() * 200 + os.urandom(64)
            chunks.append(chunk)
            f.write(chunk)
            f.flush()
            time.sleep(0.5)
            assert requests_for(setup.emu, "slow.log") == [], "the file was touched remotely while still open"
        before_close = len(setup.emu.requests)
    setup.wait_uploaded(d, ["slow.log"])
    assert all(r.key != "slow.log" for r in setup.emu.requests[:before_close])
    assert op_counts(setup.emu, "PutObject")["slow.log"] == 1
    assert_remote_equals(setup.emu, "slow.log", b"".join(chunks))
    # nothing more arrives later either
    time.sleep(1.5)
    assert op_counts(setup.emu, "PutObject", only_ok=False)["slow.log"] == 1


def test_temp_name_then_rename(setup):
    """Written as x.part (held long enough to settle) then renamed: x arrives, x.part is never sent."""
    d = setup.daemon()
    tmp = setup.root / "x.part"
    data = os.urandom(5000)
    tmp.write_bytes(data)
    time.sleep(1.5)  # three quiet periods: an unexcluded temp file would have been uploaded by now
    os.rename(tmp, setup.root / "x")
    setup.wait_uploaded(d, ["x"])
    assert_remote_equals(setup.emu, "x", data)
    assert requests_for(setup.emu, "x.part") == []
    assert op_counts(setup.emu, "PutObject")["x"] == 1


def _make_source(base: Path) -> dict[str, bytes]:
    base.mkdir()
    (base / "sub").mkdir()
    files = {
        "a.txt": os.urandom(3 * 1024),
        "b.bin": os.urandom(7 * 1024 + 13),
        "sub/c.dat": os.urandom(1024),
        "big.bin": os.urandom(20 * 1024 * 1024 + 12345),
    }
    for rel, data in files.items():
        (base / rel).write_bytes(data)
    return files


def test_cp_and_rsync(setup):
    """Files copied in by cp and by rsync (a few KiB and one ~20 MiB multipart) arrive intact, once."""
    if shutil.which("rsync") is None:
        setup.shared.require_in_ci("rsync is not installed")
    setup.config(upload={"multipart_threshold": "8MiB", "part_size": "4MiB"})
    d = setup.daemon()
    files = _make_source(setup.tmp / "src")
    subprocess.run(["cp", "-r", str(setup.tmp / "src"), str(setup.root / "cp")], check=True)
    subprocess.run(["rsync", "-a", str(setup.tmp / "src") + "/", str(setup.root / "rs") + "/"], check=True)
    keys = [f"{top}/{rel}" for top in ("cp", "rs") for rel in files]
    setup.wait_uploaded(d, keys, timeout=90)
    for key in keys:
        assert_remote_equals(setup.emu, key, files[key.split("/", 1)[1]])
        assert _uploads_of(setup.emu, key) == 1, key
    for top in ("cp", "rs"):
        big = f"{top}/big.bin"
        assert op_counts(setup.emu, "CompleteMultipartUpload")[big] == 1, "20 MiB must go up as multipart"
        parts = {r.part_number for r in requests_for(setup.emu, big, ("UploadMultipart",)) if ok(r)}
        assert parts == set(range(6)), parts  # 20 MiB + 12345 bytes in 4 MiB parts
    # rsync writes ".big.bin.XXXXXX" and renames it: no temp name may reach the bucket
    stray = {r.key for r in setup.emu.requests if r.key and r.key not in keys}
    assert stray == set(), stray


def test_files_in_new_nested_directories(setup):
    """Files written at once into dirs made by `mkdir -p` (no close event for them) arrive."""
    d = setup.daemon()
    expect: dict[str, bytes] = {}
    for top in ("a", "x"):
        deep = setup.root / top / "b" / "c"
        subprocess.run(["mkdir", "-p", str(deep)], check=True)
        for i in range(3):
            for rel in (f"{top}/b/c/f{i}", f"{top}/b/g{i}", f"{top}/h{i}"):
                data = os.urandom(100 + i)
                (setup.root / rel).write_bytes(data)
                expect[rel] = data
    setup.wait_uploaded(d, list(expect), timeout=45)
    for key, data in expect.items():
        assert_remote_equals(setup.emu, key, data)
        assert op_counts(setup.emu, "PutObject")[key] == 1, key


def test_append_after_upload_is_uploaded_again(setup):
    """A file appended to after its upload is uploaded again; the remote holds the final content."""
    d = setup.daemon()
    path = setup.root / "grow.csv"
    first = b"a,b,c\n" * 100
    path.write_bytes(first)
    setup.wait_uploaded(d, ["grow.csv"])
    assert_remote_equals(setup.emu, "grow.csv", first)
    with open(path, "ab") as f:
        f.write(b"d,e,f\n" * 50)
    final = path.read_bytes()
    d.wait_event("upload_finished", pred=lambda e: e.get("key") == "grow.csv", count=2, timeout=30)
    assert_remote_equals(setup.emu, "grow.csv", final)
    assert op_counts(setup.emu, "PutObject")["grow.csv"] == 2


def test_moved_in_from_outside_the_tree(setup):
    """A file and a whole directory moved in from outside the tree (no close event) arrive promptly."""
    setup.config(settle={"max_wait_seconds": 300})
    d = setup.daemon()
    outside = setup.tmp / "elsewhere"
    (outside / "dir" / "sub").mkdir(parents=True)
    expect = {"moved.bin": os.urandom(4000), "dir/a.txt": os.urandom(10), "dir/sub/b.txt": os.urandom(20)}
    (outside / "moved.bin").write_bytes(expect["moved.bin"])
    (outside / "dir" / "a.txt").write_bytes(expect["dir/a.txt"])
    (outside / "dir" / "sub" / "b.txt").write_bytes(expect["dir/sub/b.txt"])
    os.rename(outside / "moved.bin", setup.root / "moved.bin")
    os.rename(outside / "dir", setup.root / "dir")
    # well below max_wait_seconds: waiting for a close that never comes would time out here
    setup.wait_uploaded(d, list(expect), timeout=30)
    for key, data in expect.items():
        assert_remote_equals(setup.emu, key, data)
        assert op_counts(setup.emu, "PutObject")[key] == 1, key


def test_rewritten_during_multipart_upload(setup):
    """A file changed while its multipart upload is in flight ends up remote as its final content, never a mix."""
    from qsyncd.emulator import Fault

    setup.config(upload={"multipart_threshold": "4MiB", "part_size": "4MiB"})
    setup.emu.inject(Fault(latency=0.3, operation="UploadMultipart", count=None))
    d = setup.daemon()
    path = setup.root / "moving.bin"
    tmp = setup.tmp / "moving.tmp"
    tmp.write_bytes(os.urandom(16 * 1024 * 1024))
    os.rename(tmp, path)
    d.wait_event("multipart_started", timeout=30)
    setup.shared.wait_for(
        lambda: any(ok(r) for r in requests_for(setup.emu, "moving.bin", ("UploadMultipart",))),
        timeout=30,
        what="one part stored",
    )
    with open(path, "r+b") as f:  # rewrite the start in place, same size
        f.write(b"NEW HEADER" * 1000)
    setup.emu.clear_faults()
    final = path.read_bytes()
    d.wait_event(
        "upload_finished", timeout=60, pred=lambda e: e.get("key") == "moving.bin" and e.get("md5") == md5_hex(final)
    )
    assert_remote_equals(setup.emu, "moving.bin", final)


def test_empty_file_and_rename_of_uploaded_file(setup):
    """An empty file uploads as an empty object; a renamed uploaded file is copied server-side under the new
    key (renames = "copy", the default): no byte is sent again, and the old key stays."""
    d = setup.daemon()
    (setup.root / "empty.dat").write_bytes(b"")
    (setup.root / "old-name.txt").write_bytes(b"renamed content")
    setup.wait_uploaded(d, ["empty.dat", "old-name.txt"])
    os.rename(setup.root / "old-name.txt", setup.root / "new-name.txt")
    ev = d.wait_event("object_copied", timeout=30, pred=lambda e: e.get("key") == "new-name.txt")[0]
    assert ev["source_key"] == "old-name.txt", ev
    assert_remote_equals(setup.emu, "empty.dat", b"")
    assert_remote_equals(setup.emu, "new-name.txt", b"renamed content")
    assert_remote_equals(setup.emu, "old-name.txt", b"renamed content")
    puts = [r for r in setup.emu.requests if r.key == "new-name.txt" and r.operation == "PutObject"]
    assert [r.bytes_in for r in puts] == [0], "the renamed file's bytes went up again"


def test_same_content_rewritten_or_touched_is_not_sent_again(setup):
    """Rewriting a file with identical bytes, or only touching it, costs a HEAD, not a second PUT."""
    setup.config(settle={"rescan_interval_seconds": 1.0})
    d = setup.daemon()
    data = os.urandom(3000)
    (setup.root / "same.bin").write_bytes(data)
    (setup.root / "touched.bin").write_bytes(data[:100])
    setup.wait_uploaded(d, ["same.bin", "touched.bin"])
    (setup.root / "same.bin").write_bytes(data)  # new mtime, same bytes
    os.utime(setup.root / "touched.bin", (1_600_000_000, 1_600_000_000))  # attributes only: found by a rescan
    for key in ("same.bin", "touched.bin"):
        ev = d.wait_event("upload_skipped", timeout=30, pred=lambda e, k=key: e.get("key") == k)[0]
        assert ev["reason"] == "remote_match", ev
        assert op_counts(setup.emu, "PutObject", only_ok=False)[key] == 1, key
    assert_remote_equals(setup.emu, "same.bin", data)


def test_file_held_open_is_uploaded_after_max_wait(setup):
    """A file left open (a log) goes up after max_wait once still, and again with its final content after close."""
    setup.config(settle={"max_wait_seconds": 2.0})
    d = setup.daemon()
    path = setup.root / "app.log"
    with open(path, "wb") as f:
        f.write(b"started\n")
        f.flush()
        first = d.wait_event("upload_finished", timeout=30, pred=lambda e: e.get("key") == "app.log")[0]
        assert first["md5"] == md5_hex(b"started\n")
        assert_remote_equals(setup.emu, "app.log", b"started\n")
        f.write(b"finished\n")
    d.wait_event("upload_finished", timeout=30, pred=lambda e: e.get("key") == "app.log", count=2)
    assert_remote_equals(setup.emu, "app.log", b"started\nfinished\n")
    assert op_counts(setup.emu, "PutObject")["app.log"] == 2
