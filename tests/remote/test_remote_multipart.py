"""Contract tests of QingStorRemote's multipart methods (initiate, upload_part, list_parts, complete,
abort, list_uploads) through the real SDK, including paging, a 64 MiB streamed part and 8 threads."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from qsynctest import md5_b64, md5_hex, wait_records
from remote_support import Target

from qsyncd.errors import BadRequest, NotFound
from qsyncd.remote.base import PartInfo

MiB = 1024 * 1024


def _part(remote, key: str, upload_id: str, n: int, data: bytes) -> PartInfo:  # type: ignore[no-untyped-def]
    etag = remote.upload_part(key, upload_id, n, io.BytesIO(data), len(data), md5_b64(data))
    assert md5_hex(data) == etag
    return PartInfo(part_number=n, size=len(data), etag=etag)


def test_multipart_round_trip(target: Target) -> None:
    """initiate, 3 parts (5, 4, 3 MiB) numbered from 0, list_parts, complete: head and bytes agree."""
    remote = target.remote()
    key = target.key("big/file.bin")
    chunks = [os.urandom(5 * MiB), os.urandom(4 * MiB), os.urandom(3 * MiB)]
    whole = b"".join(chunks)
    upload_id = remote.initiate(key, content_type="application/x-tar", metadata={"mtime": "123"})
    assert upload_id
    assert upload_id in {u.upload_id for u in remote.list_uploads(target.prefix) if u.key == key}
    parts = [_part(remote, key, upload_id, n, c) for n, c in enumerate(chunks)]
    assert parts == remote.list_parts(key, upload_id)
    remote.complete(key, upload_id, parts, md5_hex(whole))
    info = remote.head(key)
    assert info is not None
    assert (len(whole), md5_hex(whole), "application/x-tar", {"mtime": "123"}) == (
        info.size,
        info.etag,
        info.content_type,
        dict(info.metadata),
    )
    assert [] == [u for u in remote.list_uploads(target.prefix) if u.upload_id == upload_id]
    if target.emu is not None:
        stored = target.emu.object_bytes(target.bucket, key)
        assert md5_hex(whole) == md5_hex(stored)


def test_part_zero_is_sent_as_upload_multipart(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """part_number 0 reaches the server as UploadMultipart part 0 (not dropped, not a PutObject)."""
    remote = target.remote()
    key = target.key("p0")
    upload_id = remote.initiate(key)
    emu.clear_requests()
    _part(remote, key, upload_id, 0, b"zero")
    records = wait_records(emu, "UploadMultipart", 1)
    assert [("UploadMultipart", 0, upload_id, 4)] == [
        (r.operation, r.part_number, r.upload_id, r.bytes_in) for r in records
    ]
    assert [] == wait_records(emu, "PutObject", 1, timeout=0.2)
    assert None is remote.head(key)


def test_reuploading_a_part_overwrites_it(target: Target) -> None:
    """Uploading the same part number again replaces it in list_parts."""
    remote = target.remote()
    key = target.key("re")
    upload_id = remote.initiate(key)
    _part(remote, key, upload_id, 3, b"old")
    new = _part(remote, key, upload_id, 3, b"new data")
    assert [new] == remote.list_parts(key, upload_id)
    remote.abort(key, upload_id)


def test_abort_discards_and_is_idempotent(target: Target) -> None:
    """abort() removes the upload; aborting again succeeds; a later part upload is NotFound."""
    remote = target.remote()
    key = target.key("aborted")
    upload_id = remote.initiate(key)
    _part(remote, key, upload_id, 0, b"a" * 1000)
    remote.abort(key, upload_id)
    assert upload_id not in {u.upload_id for u in remote.list_uploads(target.prefix)}
    remote.abort(key, upload_id)
    with pytest.raises(NotFound):
        _part(remote, key, upload_id, 1, b"late")
    assert None is remote.head(key)


def test_unknown_upload_id_is_not_found(target: Target) -> None:
    """upload_part, list_parts and complete with an unknown upload id raise NotFound."""
    remote = target.remote()
    key = target.key("ghost")
    bogus = "0123456789abcdef0123456789abcdef"
    with pytest.raises(NotFound) as info:
        _part(remote, key, bogus, 0, b"x")
    assert ("upload_not_exists", "UploadMultipart", key) == (info.value.code, info.value.operation, info.value.key)
    assert "start a new upload" in str(info.value)
    with pytest.raises(NotFound):
        remote.list_parts(key, bogus)
    with pytest.raises(NotFound):
        remote.complete(key, bogus, [PartInfo(0, 1, md5_hex(b"x"))], md5_hex(b"x"))


def test_bad_or_short_part_is_bad_request_and_stores_nothing(target: Target) -> None:
    """A part with a wrong Content-MD5 (bad_digest) or a body shorter than size (incomplete_body)
    raises BadRequest and leaves no part behind."""
    remote = target.remote()
    key = target.key("bad-part")
    upload_id = remote.initiate(key)
    data = os.urandom(2 * MiB)
    with pytest.raises(BadRequest) as info:
        remote.upload_part(key, upload_id, 0, io.BytesIO(data), len(data), md5_b64(b"other"))
    assert ("bad_digest", "UploadMultipart") == (info.value.code, info.value.operation)
    with pytest.raises(BadRequest) as info:
        remote.upload_part(key, upload_id, 1, io.BytesIO(data[:MiB]), len(data), md5_b64(data))
    assert "incomplete_body" == info.value.code
    assert [] == remote.list_parts(key, upload_id)
    remote.abort(key, upload_id)


def test_small_middle_part_is_entity_too_small(target: Target) -> None:
    """Completing with a non-last part under 4 MiB raises BadRequest entity_too_small."""
    remote = target.remote()
    key = target.key("small-middle")
    upload_id = remote.initiate(key)
    chunks = [os.urandom(4 * MiB), b"tiny", os.urandom(1000)]
    parts = [_part(remote, key, upload_id, n, c) for n, c in enumerate(chunks)]
    with pytest.raises(BadRequest) as info:
        remote.complete(key, upload_id, parts, md5_hex(b"".join(chunks)))
    assert ("entity_too_small", 400) == (info.value.code, info.value.status)
    assert None is remote.head(key)
    remote.abort(key, upload_id)


def test_complete_rejects_unordered_parts_locally(target: Target) -> None:
    """Parts out of order or duplicated are a ValueError before any request."""
    remote = target.remote()
    parts = [PartInfo(1, 5, "a" * 32), PartInfo(0, 5, "b" * 32)]
    with pytest.raises(ValueError, match="ascending"):
        remote.complete(target.key("k"), "uid", parts, "c" * 32)
    with pytest.raises(ValueError, match="ascending"):
        remote.complete(target.key("k"), "uid", [parts[1], parts[1]], "c" * 32)


def test_list_parts_pages_beyond_1000(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """list_parts returns all 1003 parts of an upload, paging with part_number_marker."""
    remote = target.remote()
    key = target.key("many-parts")
    upload_id = remote.initiate(key)
    with ThreadPoolExecutor(4) as pool:
        expected = list(pool.map(lambda n: _part(remote, key, upload_id, n, str(n).encode()), range(1003)))
    emu.clear_requests()
    assert expected == remote.list_parts(key, upload_id)
    assert 2 <= len(wait_records(emu, "ListMultipart", 2))
    remote.abort(key, upload_id)


def test_list_uploads_pages_and_filters_by_prefix(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """list_uploads returns all 1002 uploads under a prefix (paging) and none outside it."""
    remote = target.remote()
    inside = target.key("in/")
    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(lambda n: (f"{inside}{n % 7}", remote.initiate(f"{inside}{n % 7}")), range(1002)))
    other = remote.initiate(target.key("out/x"))
    emu.clear_requests()
    listed = remote.list_uploads(inside)
    assert ids == {(u.key, u.upload_id) for u in listed}
    assert all(u.created for u in listed)
    assert 2 <= len(wait_records(emu, "ListMultipartUploads", 2))
    assert other not in {u.upload_id for u in listed}
    assert other in {u.upload_id for u in remote.list_uploads(target.key("out/"))}


class _ReadRecorder(io.FileIO):
    """A real file that records the size of every read() (to prove large-block streaming)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        self.reads.append(size)
        return super().read(size)


def test_64mib_part_streams_exactly_a_file_section(target: Target, tmp_path: Path) -> None:
    """A 64 MiB part from the middle of a larger file sends exactly that section, in 1 MiB reads."""
    remote = target.remote()
    path = tmp_path / "source"
    head, body, tail = os.urandom(MiB), os.urandom(64 * MiB), os.urandom(3 * MiB)
    path.write_bytes(head + body + tail)
    key = target.key("sixty-four")
    upload_id = remote.initiate(key)
    with _ReadRecorder(path) as f:
        f.seek(len(head))
        etag = remote.upload_part(key, upload_id, 0, f, len(body), md5_b64(body))
        assert len(head) + len(body) == f.tell()  # not one byte past the section
        reads = f.reads
    assert md5_hex(body) == etag
    assert 64 == len(reads)
    assert all(256 * 1024 <= n <= 4 * MiB for n in reads)
    last = _part(remote, key, upload_id, 1, tail)
    if target.emu is not None:
        records = wait_records(target.emu, "UploadMultipart", 2)
        assert [64 * MiB] == [r.bytes_in for r in records if r.part_number == 0]
    remote.complete(key, upload_id, [PartInfo(0, len(body), etag), last], md5_hex(body + tail))
    info = remote.head(key)
    assert info is not None
    assert len(body) + len(tail) == info.size
    if target.emu is not None:
        digest = hashlib.md5()
        _, stored = target.emu.store.open_object(target.bucket, key)
        with stored:
            for block in iter(lambda: stored.read(MiB), b""):
                digest.update(block)
        assert md5_hex(body + tail) == digest.hexdigest()


def test_eight_threads_upload_parts_of_one_upload(target: Target, tmp_path: Path) -> None:
    """8 threads upload the parts of one upload at once through one QingStorRemote."""
    remote = target.remote()
    path = tmp_path / "source"
    sizes = [4 * MiB] * 7 + [MiB + 17]
    data = os.urandom(sum(sizes))
    path.write_bytes(data)
    offsets = [sum(sizes[:n]) for n in range(8)]
    key = target.key("threads")
    upload_id = remote.initiate(key)
    barrier = threading.Barrier(8)
    threads_seen: set[int] = set()

    def upload(n: int) -> PartInfo:
        section = data[offsets[n] : offsets[n] + sizes[n]]
        with path.open("rb") as f:
            f.seek(offsets[n])
            barrier.wait(timeout=30)
            threads_seen.add(threading.get_ident())
            etag = remote.upload_part(key, upload_id, n, f, sizes[n], md5_b64(section))
        return PartInfo(n, sizes[n], etag)

    with ThreadPoolExecutor(8) as pool:
        parts = list(pool.map(upload, range(8)))
    assert 8 == len(threads_seen)
    assert parts == remote.list_parts(key, upload_id)
    remote.complete(key, upload_id, parts, md5_hex(data))
    info = remote.head(key)
    assert info is not None
    assert (len(data), md5_hex(data)) == (info.size, info.etag)
    if target.emu is not None:
        assert md5_hex(data) == md5_hex(target.emu.object_bytes(target.bucket, key))
    remote.close()
    assert info == remote.head(key)  # usable again after close(): new sessions are opened
