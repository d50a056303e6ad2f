"""Completed multipart objects are the parts' own data files, hard-linked: no byte is copied at Complete."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from emulator_helpers import BUCKET, request, sdk_bucket
from qsynctest import md5_b64

from qsyncd.emulator import Emulator
from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.store import ConcatReader, datafiles

MiB = 1 << 20


def make_parts() -> list[bytes]:
    """Three distinct parts (4 MiB, 4 MiB, 1 MiB + 3 bytes), the last one short."""
    return [os.urandom(4 * MiB), os.urandom(4 * MiB), os.urandom(MiB + 3)]


def upload_parts(emu: Emulator, key: str, parts: list[bytes]) -> str:
    """Initiate an upload of ``key`` and store ``parts`` numbered 0..n-1; returns the upload id."""
    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload(key)["upload_id"]
    for number, data in enumerate(parts):
        out = bucket.upload_multipart(
            key, upload_id=upload_id, part_number=str(number), body=data, content_md5=md5_b64(data)
        )
        assert 201 == out.status_code
    return upload_id


def complete(emu: Emulator, key: str, upload_id: str, count: int, etag: str | None = None) -> None:
    """CompleteMultipartUpload of parts 0..count-1 through the SDK (201 expected)."""
    kwargs = {"etag": f'"{etag}"'} if etag else {}
    out = sdk_bucket(emu).complete_multipart_upload(
        key, upload_id=upload_id, object_parts=[{"part_number": n} for n in range(count)], **kwargs
    )
    assert 201 == out.status_code


def part_inodes(emu: Emulator, key: str, upload_id: str) -> list[int]:
    """Inode numbers of the stored parts' data files, in part order."""
    udir = emu.root / "buckets" / BUCKET / "uploads" / upload_id
    return [(udir / p.data_file).stat().st_ino for p in emu.store.uploads.parts(BUCKET, upload_id, key)]


def object_data_files(emu: Emulator) -> list[Path]:
    """Every data file under the bucket's objects directory."""
    return sorted((emu.root / "buckets" / BUCKET / "objects").rglob("*.data"))


def test_complete_links_parts_and_serves_their_concatenation(emu: Emulator) -> None:
    """Complete (no ETag header) hard-links the part files in order; bytes and MD5 are the parts' concatenation."""
    parts = make_parts()
    whole = b"".join(parts)
    upload_id = upload_parts(emu, "multi/obj.bin", parts)
    inodes = part_inodes(emu, "multi/obj.bin", upload_id)
    complete(emu, "multi/obj.bin", upload_id, len(parts))

    files = emu.object_files(BUCKET, "multi/obj.bin")
    assert inodes == [f.stat().st_ino for f in files]  # the very same files: nothing was copied
    assert [1] * len(parts) == [f.stat().st_nlink for f in files]  # the upload's names are gone
    assert [len(p) for p in parts] == [f.stat().st_size for f in files]
    assert whole == emu.object_bytes(BUCKET, "multi/obj.bin")
    bucket = sdk_bucket(emu)
    head = bucket.head_object("multi/obj.bin")
    assert f'"{hashlib.md5(whole).hexdigest()}"' == head.headers["ETag"]
    assert str(len(whole)) == head.headers["Content-Length"]
    got = bucket.get_object("multi/obj.bin")
    assert (200, whole) == (got.status_code, got.content)
    with pytest.raises(ValueError, match="object_bytes"):
        emu.object_path(BUCKET, "multi/obj.bin")


def test_complete_with_etag_header_links_without_reading(emu: Emulator) -> None:
    """With an ETag header the object is linked too and keeps the given ETag."""
    parts = make_parts()[:2]
    upload_id = upload_parts(emu, "tagged", parts)
    inodes = part_inodes(emu, "tagged", upload_id)
    complete(emu, "tagged", upload_id, 2, etag="0123456789abcdef0123456789abcdef")
    assert inodes == [f.stat().st_ino for f in emu.object_files(BUCKET, "tagged")]
    assert '"0123456789abcdef0123456789abcdef"' == sdk_bucket(emu).head_object("tagged").headers["ETag"]
    assert b"".join(parts) == emu.object_bytes(BUCKET, "tagged")


def test_range_get_across_part_boundaries(emu: Emulator) -> None:
    """Range GETs within a part, spanning one or two part boundaries, and suffix ranges return the right bytes."""
    parts = make_parts()
    whole = b"".join(parts)
    complete(emu, "ranged", upload_parts(emu, "ranged", parts), len(parts))
    b1, b2, size = len(parts[0]), len(parts[0]) + len(parts[1]), len(whole)
    cases = [(0, 9), (b1 - 5, b1 + 4), (b1 - 1, b1), (b1, b1), (b1 - 3, b2 + 3), (b2 - 1, size - 1), (10, size - 1)]
    for start, end in cases:
        reply = request(emu, "GET", f"/{BUCKET}/ranged", headers={"Range": f"bytes={start}-{end}"})
        assert 206 == reply.status, (start, end)
        assert f"bytes {start}-{end}/{size}" == reply.header("Content-Range")
        assert whole[start : end + 1] == reply.body, (start, end)
    reply = request(emu, "GET", f"/{BUCKET}/ranged", headers={"Range": f"bytes=-{len(parts[2]) + 7}"})
    assert (206, whole[-(len(parts[2]) + 7) :]) == (reply.status, reply.body)
    reply = request(emu, "GET", f"/{BUCKET}/ranged", headers={"Range": f"bytes={b2 - 2}-"})
    assert (206, whole[b2 - 2 :]) == (reply.status, reply.body)


def test_delete_and_overwrite_remove_every_data_file(emu: Emulator) -> None:
    """Deleting a composite object, or replacing it by a PUT or another Complete, unlinks all its part files."""
    bucket = sdk_bucket(emu)
    parts = make_parts()
    complete(emu, "gone", upload_parts(emu, "gone", parts), len(parts))
    files = emu.object_files(BUCKET, "gone")
    assert 3 == len(files) and all(f.exists() for f in files)
    assert 204 == bucket.delete_object("gone").status_code
    assert not any(f.exists() for f in files)
    assert [] == object_data_files(emu)

    complete(emu, "over", upload_parts(emu, "over", parts), len(parts))
    first = emu.object_files(BUCKET, "over")
    second_parts = make_parts()[:2]
    complete(emu, "over", upload_parts(emu, "over", second_parts), 2)
    assert not any(f.exists() for f in first)
    assert b"".join(second_parts) == emu.object_bytes(BUCKET, "over")
    second = emu.object_files(BUCKET, "over")
    assert 201 == bucket.put_object("over", body=b"small now", content_md5=md5_b64(b"small now")).status_code
    assert not any(f.exists() for f in second)
    assert [emu.object_path(BUCKET, "over")] == object_data_files(emu)
    assert b"small now" == emu.object_bytes(BUCKET, "over")


def test_copy_of_composite_object(emu: Emulator) -> None:
    """x-qs-copy-source of a composite object gives an object with the same bytes and MD5."""
    parts = make_parts()
    whole = b"".join(parts)
    complete(emu, "src", upload_parts(emu, "src", parts), len(parts))
    out = sdk_bucket(emu).put_object("dst", x_qs_copy_source=f"/{BUCKET}/src")
    assert 201 == out.status_code
    assert whole == emu.object_bytes(BUCKET, "dst")
    assert f'"{hashlib.md5(whole).hexdigest()}"' == sdk_bucket(emu).head_object("dst").headers["ETag"]


def test_restart_serves_composite_object_and_old_json(tmp_path: Path) -> None:
    """A new Emulator over the root serves a composite object (GET, Range) and loads JSON without data_files."""
    root = tmp_path / "root"
    parts = make_parts()
    whole = b"".join(parts)
    with Emulator(root, buckets=[BUCKET]) as first:
        complete(first, "comp", upload_parts(first, "comp", parts), len(parts))
        sdk_bucket(first).put_object("old", body=b"old-format", content_md5=md5_b64(b"old-format"))
        old_data = first.object_path(BUCKET, "old")
        old_json = old_data.parent / (old_data.name.split(".")[0] + ".json")
    data = json.loads(old_json.read_text(encoding="utf-8"))
    assert [] == data.pop("data_files")
    old_json.write_text(json.dumps(data), encoding="utf-8")  # as written before data_files existed
    with Emulator(root) as second:
        assert whole == sdk_bucket(second).get_object("comp").content
        start = len(parts[0]) - 2
        reply = request(second, "GET", f"/{BUCKET}/comp", headers={"Range": f"bytes={start}-{start + 3}"})
        assert (206, whole[start : start + 4]) == (reply.status, reply.body)
        assert b"old-format" == sdk_bucket(second).get_object("old").content
        assert 4 == len(object_data_files(second))  # three parts + the old object, nothing removed at load


def test_crash_after_linking_before_commit(tmp_path: Path) -> None:
    """Links made by a Complete that crashes before its JSON commit: no object, upload intact, links removed at open."""
    root = tmp_path / "root"
    parts = make_parts()
    with Emulator(root, buckets=[BUCKET]) as first:
        upload_id = upload_parts(first, "crashy", parts)
        uploads = first.store.uploads
        chosen = uploads.parts(BUCKET, upload_id, "crashy")
        with uploads.lock:
            names = uploads._link_parts(BUCKET, upload_id, "crashy", chosen)  # the steps of complete() up to the commit
        assert names is not None and 3 == len(names)
        linked = [root / "buckets" / BUCKET / "objects" / n[:2] / n for n in names]
        assert all(p.exists() for p in linked)
        # the process dies here: no JSON was written
    with Emulator(root) as second:
        assert not any(p.exists() for p in linked)  # unreferenced .data removed at load
        assert [] == object_data_files(second)
        bucket = sdk_bucket(second)
        assert 404 == bucket.head_object("crashy").status_code
        assert [upload_id] == [u["upload_id"] for u in bucket.list_multipart_uploads()["uploads"]]
        complete(second, "crashy", upload_id, len(parts))
        assert b"".join(parts) == second.object_bytes(BUCKET, "crashy")
    with Emulator(root) as third:  # and the committed object survives the next open
        assert b"".join(parts) == third.object_bytes(BUCKET, "crashy")


def test_failed_commit_removes_links_and_keeps_upload(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """If writing the object JSON fails, Complete raises, leaves no object and no links, and can be retried."""
    parts = make_parts()
    upload_id = upload_parts(emu, "retry", parts)
    real_write = datafiles.write_json

    def failing_write(path: Path, data: dict, *, fsync: bool) -> None:  # type: ignore[type-arg]
        if "objects" in path.parts:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data, fsync=fsync)

    monkeypatch.setattr(datafiles, "write_json", failing_write)
    listed = [{"part_number": n} for n in range(len(parts))]
    with pytest.raises(OSError):
        emu.store.uploads.complete(BUCKET, upload_id, "retry", listed, None)
    with pytest.raises(EmulatorError):
        emu.store.objects.head(BUCKET, "retry")
    assert [] == object_data_files(emu)
    monkeypatch.setattr(datafiles, "write_json", real_write)
    complete(emu, "retry", upload_id, len(parts))
    assert b"".join(parts) == emu.object_bytes(BUCKET, "retry")


def test_failure_after_json_rename_keeps_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the object dir fsync fails after the JSON rename, the links it names stay; a reopen serves the object."""
    root = tmp_path / "root"
    parts = make_parts()
    real_fsync_dir = datafiles.fsync_dir

    def failing_fsync_dir(path: Path) -> None:
        if "objects" in Path(path).parts:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync_dir(path)

    with Emulator(root, buckets=[BUCKET]) as first:
        upload_id = upload_parts(first, "half", parts)
        monkeypatch.setattr(datafiles, "fsync_dir", failing_fsync_dir)
        with pytest.raises(OSError):
            first.store.uploads.complete(
                BUCKET, upload_id, "half", [{"part_number": n} for n in range(len(parts))], None
            )
        monkeypatch.undo()
        assert 3 == len(object_data_files(first))
    with Emulator(root) as second:
        assert b"".join(parts) == second.object_bytes(BUCKET, "half")


def test_link_failure_falls_back_to_copy(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """When os.link fails (EPERM, e.g. a filesystem without hard links) Complete copies the parts into one file."""
    parts = make_parts()
    upload_id = upload_parts(emu, "copied", parts)

    def no_link(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    complete(emu, "copied", upload_id, len(parts))
    monkeypatch.undo()
    path = emu.object_path(BUCKET, "copied")  # a single file
    assert b"".join(parts) == path.read_bytes()
    assert [path] == object_data_files(emu)
    assert f'"{hashlib.md5(b"".join(parts)).hexdigest()}"' == sdk_bucket(emu).head_object("copied").headers["ETag"]


def test_open_reader_survives_delete(emu: Emulator) -> None:
    """A reader opened before the object is deleted still reads all of it; the files go when it closes."""
    parts = make_parts()
    complete(emu, "held", upload_parts(emu, "held", parts), len(parts))
    files = emu.object_files(BUCKET, "held")
    meta, reader = emu.store.open_object(BUCKET, "held")
    assert emu.store.objects.delete(BUCKET, "held")
    assert all(f.exists() for f in files)  # still needed by the reader
    with reader:
        assert b"".join(parts) == reader.read()
    assert not any(f.exists() for f in files)
    assert sum(len(p) for p in parts) == meta.size


def test_concat_reader_seek_read_readinto(tmp_path: Path) -> None:
    """ConcatReader reads, seeks (all whence values), tells and readintos across files, empty ones included."""
    chunks = [b"abc", b"", b"defgh", b"i", b""]
    paths = []
    for i, data in enumerate(chunks):
        paths.append(tmp_path / f"{i}.data")
        paths[-1].write_bytes(data)
    closed = []
    whole = b"".join(chunks)
    reader = ConcatReader(paths, [len(c) for c in chunks], lambda: closed.append(True))
    assert whole == reader.read()
    assert b"" == reader.read(5)
    assert 2 == reader.seek(2)
    got = b""
    while piece := reader.read(4):
        got += piece
    assert whole[2:] == got
    assert len(whole) - 3 == reader.seek(-3, io.SEEK_END)
    assert len(whole) - 2 == reader.seek(1, io.SEEK_CUR)
    assert whole[-2:] == reader.read()
    reader.seek(1)
    buf = bytearray(4)
    n = reader.readinto(buf)
    assert (whole[1 : 1 + n], 3) == (bytes(buf[:n]), reader.tell())
    with pytest.raises(ValueError):
        reader.seek(-1)
    reader.close()
    reader.close()
    assert [True] == closed
    with pytest.raises(ValueError):
        reader.read(1)
