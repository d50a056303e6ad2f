"""Contract tests of QingStorRemote's bucket and simple-object methods and its error paths, through
the real SDK against the emulator (or live QingStor, see conftest)."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from qsynctest import md5_b64, md5_hex, wait_records
from remote_support import Target

from qsyncd.errors import BadRequest, BucketMissing, CredentialsRejected, Unreachable
from qsyncd.remote.base import ObjectInfo


def _put(remote, key: str, data: bytes, **kw):  # type: ignore[no-untyped-def]
    return remote.put(key, io.BytesIO(data), len(data), md5_b64(data), **kw)


def test_probe_succeeds_on_existing_bucket(target: Target) -> None:
    """probe() returns quietly when the bucket exists and the credentials work."""
    assert None is target.remote().probe()


def test_probe_missing_bucket_is_bucket_missing(target: Target) -> None:
    """probe() of a bucket that does not exist raises BucketMissing naming bucket, zone and endpoint."""
    remote = target.remote(bucket="qsyncd-no-such-bucket-" + target.prefix[-13:-1])
    with pytest.raises(BucketMissing) as info:
        remote.probe()
    err = info.value
    assert (404, "HeadBucket") == (err.status, err.operation)
    assert "does not exist in zone" in str(err)
    assert target.endpoint.rstrip("/") in str(err)


def test_put_then_head_round_trip(target: Target) -> None:
    """put() stores bytes, content type and metadata; head() reports them with the MD5 ETag."""
    remote = target.remote()
    key = target.key("dir/hello.txt")
    data = b"hello, qingstor\n" * 1000
    etag = _put(
        remote, key, data, content_type="application/x-qsyncd", metadata={"mtime": "1700000000.5", "Src-Host": "box-1"}
    )
    assert md5_hex(data) == etag
    info = remote.head(key)
    assert (
        ObjectInfo(
            key=key,
            size=len(data),
            etag=md5_hex(data),
            content_type="application/x-qsyncd",
            metadata={"mtime": "1700000000.5", "src-host": "box-1"},
        )
        == info
    )
    if target.emu is not None:
        assert data == target.emu.object_bytes(target.bucket, key)


def test_put_uses_callers_content_type_not_the_sdk_guess(target: Target) -> None:
    """The SDK would guess text/plain for *.txt; the caller's content_type wins (and signs)."""
    remote = target.remote()
    key = target.key("notes.txt")
    _put(remote, key, b"x")
    info = remote.head(key)
    assert info is not None
    assert "application/octet-stream" == info.content_type


def test_put_empty_object(target: Target) -> None:
    """A zero-byte object is stored with the MD5 of nothing."""
    remote = target.remote()
    key = target.key("empty")
    assert md5_hex(b"") == _put(remote, key, b"")
    info = remote.head(key)
    assert info is not None
    assert (0, md5_hex(b"")) == (info.size, info.etag)


@pytest.mark.parametrize(
    "name",
    [
        "with space",
        "per%cent%20",
        "q?mark",
        "hash#tag",
        "plus+eq=amp&",
        "中文/ключ",
        "a//b",
        "semi;colon,comma",
        "new\nline\ttab",
        "back\\slash~tilde",
        "x" * 990,
    ],
)
def test_odd_key_names_round_trip(target: Target, name: str) -> None:
    """Keys with reserved or non-ASCII characters are encoded and signed correctly."""
    remote = target.remote()
    key = target.key(name)
    _put(remote, key, name.encode())
    info = remote.head(key)
    assert info is not None
    assert (key, len(name.encode())) == (info.key, info.size)


def test_put_replaces_existing_object(target: Target) -> None:
    """A second put of the same key replaces the content."""
    remote = target.remote()
    key = target.key("twice")
    _put(remote, key, b"first")
    _put(remote, key, b"second!")
    info = remote.head(key)
    assert info is not None
    assert (7, md5_hex(b"second!")) == (info.size, info.etag)


def test_head_missing_object_is_none(target: Target) -> None:
    """head() of a key that does not exist returns None."""
    assert None is target.remote().head(target.key("never-written"))


def test_put_from_file_section(target: Target, tmp_path: Path) -> None:
    """A body that is a section of a longer file sends exactly size bytes from its position."""
    remote = target.remote()
    path = tmp_path / "big"
    data = bytes(range(256)) * 8192  # 2 MiB
    path.write_bytes(data)
    key = target.key("section")
    section = data[12345 : 12345 + 1_000_000]
    with path.open("rb") as f:
        f.seek(12345)
        assert md5_hex(section) == remote.put(key, f, len(section), md5_b64(section))
    info = remote.head(key)
    assert info is not None
    assert len(section) == info.size
    if target.emu is not None:
        assert section == target.emu.object_bytes(target.bucket, key)


def test_bad_digest_is_bad_request_and_stores_nothing(target: Target) -> None:
    """A Content-MD5 that does not match the body raises BadRequest bad_digest; nothing is stored."""
    remote = target.remote()
    key = target.key("bad-digest")
    with pytest.raises(BadRequest) as info:
        remote.put(key, io.BytesIO(b"actual"), 6, md5_b64(b"other"))
    err = info.value
    assert (400, "bad_digest", "PutObject", key) == (err.status, err.code, err.operation, err.key)
    assert "file changed while it was read" in str(err)
    assert err.request_id
    assert None is remote.head(key)


def test_short_body_is_an_error_and_stores_nothing(target: Target) -> None:
    """A body yielding fewer bytes than size aborts the request; nothing is stored."""
    remote = target.remote()
    key = target.key("short")
    data = b"s" * 3_000_000
    with pytest.raises(BadRequest) as info:
        remote.put(key, io.BytesIO(data[:1_500_000]), len(data), md5_b64(data))
    assert "incomplete_body" == info.value.code
    assert "shrank" in str(info.value)
    assert None is remote.head(key)
    # The remote stays usable after the aborted connection.
    assert md5_hex(b"ok") == _put(remote, key, b"ok")


def test_wrong_secret_is_credentials_rejected(target: Target) -> None:
    """A wrong secret gives CredentialsRejected signature_not_matched telling to check secret_access_key."""
    wrong = "WRONG-" + target.secret_access_key[::-1]
    remote = target.remote(secret_access_key=wrong)
    for call in (remote.probe, lambda: _put(remote, target.key("x"), b"x")):
        with pytest.raises(CredentialsRejected) as info:
            call()
        err = info.value
        assert "signature_not_matched" == err.code
        assert "check secret_access_key" in str(err)
        assert wrong not in str(err) and target.secret_access_key not in str(err)
        assert f"QS {target.access_key_id}:" not in str(err)
    assert wrong not in repr(remote)


def test_unknown_access_key_is_credentials_rejected(target: Target) -> None:
    """An unknown access key id gives CredentialsRejected invalid_access_key_id telling to check it."""
    remote = target.remote(access_key_id="QSYNCDNOSUCHKEY00000")
    for call in (remote.probe, lambda: remote.head(target.key("x"))):
        with pytest.raises(CredentialsRejected) as info:
            call()
        assert "invalid_access_key_id" == info.value.code
        assert "check access_key_id" in str(info.value)
        assert info.value.status in (401, 403)


def test_skewed_clock_is_credentials_rejected_mentioning_ntp(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """A server clock an hour away gives CredentialsRejected request_expired telling to check NTP."""
    remote = target.remote()
    emu.clock_skew = 3600
    for call in (remote.probe, lambda: _put(remote, target.key("x"), b"x")):
        with pytest.raises(CredentialsRejected) as info:
            call()
        assert ("request_expired", 403) == (info.value.code, info.value.status)
        assert "NTP" in str(info.value)
    emu.clock_skew = 0
    remote.probe()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_closed_port_is_unreachable(target: Target) -> None:
    """A refused connection raises Unreachable 'cannot reach ENDPOINT' (no retries inside)."""
    port = _closed_port()
    remote = target.remote(endpoint=f"http://127.0.0.1:{port}", zone="", connect_timeout=30.0)
    for call in (remote.probe, lambda: _put(remote, "k", b"data")):
        with pytest.raises(Unreachable) as info:
            call()
        assert f"cannot reach http://127.0.0.1:{port}" in str(info.value)
        assert "connection_error" == info.value.code
        assert 0 == info.value.status


def test_unresolvable_host_is_unreachable(target: Target) -> None:
    """A host name that does not resolve raises Unreachable that says so."""
    remote = target.remote(endpoint="http://qsyncd-test.invalid:9000", zone="")
    with pytest.raises(Unreachable) as info:
        remote.head("k")
    assert "cannot reach http://qsyncd-test.invalid:9000" in str(info.value)


def test_unresolvable_zone_host_names_the_host_that_was_tried(target: Target) -> None:
    """With a zone, the message names the host actually contacted (zone + endpoint host) and how they combine."""
    remote = target.remote(endpoint="http://qsyncd-test.invalid:9000", zone="pek3a")
    with pytest.raises(Unreachable) as info:
        remote.probe()
    msg = str(info.value)
    assert "cannot reach http://pek3a.qsyncd-test.invalid:9000 (zone 'pek3a' put in front of the host" in msg, msg
    assert 'zone = ""' in msg, msg


def test_validation_errors_send_nothing(target: Target, emu) -> None:  # type: ignore[no-untyped-def]
    """Empty upload ids and negative part numbers never reach the server (the SDK would turn them
    into plain object PUT/GET/DELETE)."""
    remote = target.remote()
    emu.clear_requests()
    with pytest.raises(ValueError):
        remote.upload_part(target.key("k"), "", 0, io.BytesIO(b"a"), 1, md5_b64(b"a"))
    with pytest.raises(ValueError):
        remote.upload_part(target.key("k"), "someid", -1, io.BytesIO(b"a"), 1, md5_b64(b"a"))
    with pytest.raises(ValueError):
        remote.list_parts(target.key("k"), "")
    with pytest.raises(ValueError):
        remote.abort(target.key("k"), "")
    assert None is remote.head(target.key("k"))
    wait_records(emu, "HeadObject", 1)
    assert ["HeadObject"] == [r.operation for r in emu.requests]
