"""The uploader through the real SDK against the emulator: skip rules, resume after a crash, changes mid-upload."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import structlog
from qsynctest import BUCKET, require_in_ci

from qsyncd.config import UploadConfig
from qsyncd.errors import FileChanged
from qsyncd.remote.qingstor import QingStorRemote
from qsyncd.state import Ledger
from qsyncd.upload import Uploader

MiB = 1 << 20
SETTINGS = UploadConfig(
    multipart_threshold=8 * MiB,
    part_size=4 * MiB,
    part_concurrency=3,
    retry_initial_seconds=0.01,
    retry_max_seconds=0.05,
)


class Crash(BaseException):
    """Stands in for kill -9: not an Exception, so nothing in the uploader handles it."""


class Hooked:
    """Delegates to a real remote; runs ``before_part(n)`` before each part is sent."""

    def __init__(self, inner: QingStorRemote, before_part: Any = None) -> None:
        self.inner = inner
        self.before_part = before_part

    def upload_part(self, key: str, upload_id: str, n: int, body: Any, size: int, md5: str) -> str:
        if self.before_part is not None:
            self.before_part(n)
        return self.inner.upload_part(key, upload_id, n, body, size, md5)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def make(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


@pytest.fixture(params=["paired", "hashlib"])
def hasher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Multipart hashing both ways: one interleaved pass (native) and two hashlib chains."""
    from qsyncd import md5pair

    if request.param == "paired" and not md5pair.NATIVE:
        require_in_ci("qsyncd._md5pair is not built")
    monkeypatch.setattr(md5pair, "NATIVE", request.param == "paired")
    return str(request.param)


def ops(emulator: Any, *names: str) -> list[Any]:
    return [r for r in emulator.requests if r.operation in names]


def test_small_file_put_then_ledger_skip(emulator: Any, remote: QingStorRemote, ledger: Ledger, tmp_path: Path) -> None:
    """A small file is one PUT with the right bytes; the second upload costs no request at all."""
    f = tmp_path / "a.bin"
    data = make(f, 1000)
    up = Uploader(remote, ledger, SETTINGS, log=structlog.get_logger())
    out = up.upload(str(f), "k/a.bin")
    assert ("uploaded", 1) == (out.action, out.parts)
    assert data == emulator.object_bytes(BUCKET, "k/a.bin")
    before = len(emulator.requests)
    again = up.upload(str(f), "k/a.bin")
    assert ("skipped", "ledger_match") == (again.action, again.reason)
    assert before == len(emulator.requests)


def test_unknown_file_already_in_bucket_is_skipped_after_one_head(
    emulator: Any, remote: QingStorRemote, tmp_path: Path, hasher: str
) -> None:
    """With an empty ledger, a file whose size and MD5 match the object is recorded, not sent again."""
    f = tmp_path / "a.bin"
    make(f, 12 * MiB)
    Uploader(remote, Ledger(tmp_path / "s1"), SETTINGS, log=structlog.get_logger()).upload(str(f), "a.bin")
    emulator.clear_requests()
    fresh = Ledger(tmp_path / "s2")
    out = Uploader(remote, fresh, SETTINGS, log=structlog.get_logger()).upload(str(f), "a.bin")
    assert ("skipped", "remote_match") == (out.action, out.reason)
    assert ["HeadObject"] == [r.operation for r in emulator.requests]
    assert fresh.get(str(f)) is not None


def test_multipart_etag_is_md5_in_part_order(
    emulator: Any, remote: QingStorRemote, ledger: Ledger, tmp_path: Path, hasher: str
) -> None:
    """Parts go in parallel, yet the object's ETag is the MD5 of the whole file."""
    f = tmp_path / "big.bin"
    data = make(f, 21 * MiB + 5)
    out = Uploader(remote, ledger, SETTINGS, log=structlog.get_logger()).upload(str(f), "big.bin")
    md5 = hashlib.md5(data).hexdigest()
    assert (6, md5) == (out.parts, out.md5)
    assert md5 == remote.head("big.bin").etag
    assert data == emulator.object_bytes(BUCKET, "big.bin")
    assert [] == ledger.multiparts()


def test_crash_midway_resumes_without_resending_stored_parts(
    emulator: Any, remote: QingStorRemote, tmp_path: Path, hasher: str
) -> None:
    """After a crash the upload id from the ledger is resumed; parts already stored are not sent again."""
    f = tmp_path / "big.bin"
    data = make(f, 30 * MiB)

    def crash_at_5(n: int) -> None:
        if n >= 5:
            raise Crash()

    led = Ledger(tmp_path / "state")
    settings = UploadConfig(multipart_threshold=8 * MiB, part_size=4 * MiB, part_concurrency=1)
    up = Uploader(Hooked(remote, crash_at_5), led, settings, log=structlog.get_logger())
    with pytest.raises(Crash):
        up.upload(str(f), "big.bin")
    stored_before = {r.part_number for r in ops(emulator, "UploadMultipart") if r.status == 201}
    assert {0, 1, 2, 3, 4} == stored_before
    led.close()

    emulator.clear_requests()
    led2 = Ledger(tmp_path / "state")
    out = Uploader(remote, led2, settings, log=structlog.get_logger()).upload(str(f), "big.bin")
    sent_after = {r.part_number for r in ops(emulator, "UploadMultipart")}
    assert {5, 6, 7} == sent_after
    assert (5, 8) == (out.parts_resumed, out.parts)
    assert data == emulator.object_bytes(BUCKET, "big.bin")
    assert [] == ops(emulator, "InitiateMultipartUpload")


def test_file_changed_midway_aborts_and_stores_nothing(
    emulator: Any, remote: QingStorRemote, ledger: Ledger, tmp_path: Path, hasher: str
) -> None:
    """A file rewritten during a multipart upload is never completed as a mix; the upload is aborted."""
    f = tmp_path / "big.bin"
    make(f, 20 * MiB)

    def rewrite(n: int) -> None:
        if n == 2:
            with open(f, "r+b") as fh:
                fh.seek(MiB)
                fh.write(b"changed!" * 1000)

    settings = UploadConfig(multipart_threshold=8 * MiB, part_size=4 * MiB, part_concurrency=1)
    up = Uploader(Hooked(remote, rewrite), ledger, settings, log=structlog.get_logger())
    with pytest.raises(FileChanged):
        up.upload(str(f), "big.bin")
    assert remote.head("big.bin") is None
    assert [] == remote.list_uploads("")
    assert [] == ledger.multiparts()
    assert ledger.get(str(f)) is None


def test_delete_after_upload_only_when_verified(
    emulator: Any, remote: QingStorRemote, ledger: Ledger, tmp_path: Path
) -> None:
    """delete_after removes the local file once its upload is verified."""
    f = tmp_path / "gone.bin"
    data = make(f, 3000)
    out = Uploader(remote, ledger, SETTINGS, log=structlog.get_logger()).upload(str(f), "gone.bin", delete_after=True)
    assert out.deleted is True
    assert not f.exists()
    assert data == emulator.object_bytes(BUCKET, "gone.bin")
