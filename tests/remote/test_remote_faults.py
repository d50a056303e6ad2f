"""QingStorRemote under injected emulator faults: 5xx, resets mid-body, stalls past the read timeout,
unexpected success codes. Each failure is one request (no hidden SDK retries) and the same call
succeeds once the fault is spent. Emulator only."""

from __future__ import annotations

import io
import os

import pytest
from qsynctest import md5_b64, md5_hex, wait_records
from remote_support import Target

from qsyncd.emulator import Fault
from qsyncd.errors import AuthError, BadRequest, BucketMissing, StoreRefused, TransientError, Unreachable
from qsyncd.remote.base import PartInfo

MiB = 1024 * 1024


def test_503_on_put_is_transient_then_succeeds(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """A 503 on PutObject is one request -> TransientError; the retry succeeds."""
    remote = target.remote()
    key = target.key("p503")
    data = b"payload" * 100
    emu.inject(Fault(status=503, count=1, operation="PutObject"))
    emu.clear_requests()
    with pytest.raises(TransientError) as info:
        remote.put(key, io.BytesIO(data), len(data), md5_b64(data))
    assert not isinstance(info.value, Unreachable)
    assert (503, "service_unavailable", "PutObject") == (info.value.status, info.value.code, info.value.operation)
    assert md5_hex(data) == remote.put(key, io.BytesIO(data), len(data), md5_b64(data))
    assert [503, 201] == [r.status for r in wait_records(emu, "PutObject", 2)]
    info2 = remote.head(key)
    assert info2 is not None and len(data) == info2.size


def test_503_on_head_is_not_retried_by_the_sdk(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """HEAD is idempotent: the SDK's urllib3 Retry would resend it and raise RetryError; here it is
    exactly one request and a TransientError."""
    remote = target.remote()
    emu.inject(Fault(status=503, count=2, operation="HeadObject"))
    emu.clear_requests()
    with pytest.raises(TransientError) as info:
        remote.head(target.key("h"))
    assert 503 == info.value.status
    with pytest.raises(TransientError):
        remote.head(target.key("h"))
    assert None is remote.head(target.key("h"))
    # An SDK retry would have spent both faults inside the first call and returned None there.
    assert [503, 503, 404] == [r.status for r in wait_records(emu, "HeadObject", 3)]


def test_500_on_complete_is_transient_then_succeeds(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """A 500 on CompleteMultipartUpload is TransientError; completing again works."""
    remote = target.remote()
    key = target.key("c500")
    data = os.urandom(1000)
    upload_id = remote.initiate(key)
    etag = remote.upload_part(key, upload_id, 0, io.BytesIO(data), len(data), md5_b64(data))
    emu.inject(Fault(status=500, count=1, operation="CompleteMultipartUpload"))
    parts = [PartInfo(0, len(data), etag)]
    with pytest.raises(TransientError) as info:
        remote.complete(key, upload_id, parts, md5_hex(data))
    assert (500, "internal_error") == (info.value.status, info.value.code)
    remote.complete(key, upload_id, parts, md5_hex(data))
    assert data == emu.object_bytes(target.bucket, key)


def test_reset_mid_body_is_transient_and_stores_nothing(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """A connection reset after 1 MiB of an 8 MiB part is TransientError; no part is stored; the
    same upload_part then succeeds."""
    remote = target.remote()
    key = target.key("reset")
    data = os.urandom(8 * MiB)
    upload_id = remote.initiate(key)
    emu.inject(Fault(reset_after_bytes=MiB, count=1, operation="UploadMultipart"))
    with pytest.raises(TransientError) as info:
        remote.upload_part(key, upload_id, 0, io.BytesIO(data), len(data), md5_b64(data))
    assert not isinstance(info.value, Unreachable)
    assert 0 == info.value.status
    assert [] == remote.list_parts(key, upload_id)
    etag = remote.upload_part(key, upload_id, 0, io.BytesIO(data), len(data), md5_b64(data))
    assert [PartInfo(0, len(data), md5_hex(data))] == remote.list_parts(key, upload_id)
    assert md5_hex(data) == etag


def test_reset_on_put_is_transient_and_stores_nothing(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """A reset mid PutObject body raises TransientError and leaves no object."""
    remote = target.remote()
    key = target.key("reset-put")
    data = os.urandom(4 * MiB)
    emu.inject(Fault(reset_after_bytes=100_000, count=1, operation="PutObject"))
    with pytest.raises(TransientError):
        remote.put(key, io.BytesIO(data), len(data), md5_b64(data))
    assert None is remote.head(key)
    remote.put(key, io.BytesIO(data), len(data), md5_b64(data))
    assert data == emu.object_bytes(target.bucket, key)


@pytest.mark.parametrize("operation", ["PutObject", "HeadObject"])
def test_stall_past_read_timeout_is_transient(target: Target, emu, operation: str) -> None:  # type: ignore[no-untyped-def]
    """A server that stops answering for longer than read_timeout gives TransientError read_timeout;
    the same call succeeds afterwards."""
    remote = target.remote(read_timeout=0.5)
    key = target.key("stall")
    data = b"small body"
    emu.inject(Fault(stall=3.0, count=1, operation=operation))

    def call() -> object:
        if operation == "PutObject":
            return remote.put(key, io.BytesIO(data), len(data), md5_b64(data))
        return remote.head(key)

    with pytest.raises(TransientError) as info:
        call()
    assert not isinstance(info.value, Unreachable)
    assert "read_timeout" == info.value.code
    assert "read timeout" in str(info.value)
    result = call()
    assert (md5_hex(data) if operation == "PutObject" else None) == result


def test_unexpected_success_status_is_an_error(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """PutObject answered with 200 instead of 201 is not taken as success."""
    remote = target.remote()
    emu.inject(Fault(status=200, count=1, operation="PutObject"))
    with pytest.raises(TransientError) as info:
        remote.put(target.key("k"), io.BytesIO(b"x"), 1, md5_b64(b"x"))
    assert 200 == info.value.status
    assert "unexpected status 200" in str(info.value)


def test_permission_denied_is_auth_error(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """A 403 permission_denied is AuthError saying permission was denied."""
    remote = target.remote()
    emu.inject(Fault(status=403, code="permission_denied", count=1, operation="InitiateMultipartUpload"))
    with pytest.raises(AuthError) as info:
        remote.initiate(target.key("k"))
    assert not isinstance(info.value, StoreRefused)  # one request refused, not every request
    assert ("permission_denied", 403) == (info.value.code, info.value.status)
    assert "permission denied" in str(info.value)


def test_404_bucket_on_put_is_bucket_missing(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """A bucket that vanished (404 bucket_not_exists) makes put raise BucketMissing naming the bucket
    (not NotFound, which means this object or upload)."""
    remote = target.remote()
    emu.inject(Fault(status=404, code="bucket_not_exists", count=1, operation="PutObject"))
    with pytest.raises(BucketMissing) as info:
        remote.put(target.key("k"), io.BytesIO(b"x"), 1, md5_b64(b"x"))
    assert "bucket" in str(info.value) and target.bucket in str(info.value)


@pytest.mark.parametrize(("status", "expected"), [(429, TransientError), (409, BadRequest), (502, TransientError)])
def test_other_statuses_map_by_class(target: Target, emu, status: int, expected: type) -> None:  # type: ignore[no-untyped-def]
    """429 (rate limited) and 5xx are transient; any other 4xx is a permanent BadRequest."""
    remote = target.remote()
    emu.inject(Fault(status=status, count=1, operation="ListMultipartUploads"))
    with pytest.raises(expected) as info:
        remote.list_uploads(target.prefix)
    assert status == info.value.status
    assert [] == remote.list_uploads(target.prefix)
