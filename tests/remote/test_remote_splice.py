"""File bodies on plain HTTP go to the socket with sendfile(2) (``qsyncd.remote.body``).

The proofs go through the real emulator on 127.0.0.1 (and through it as an HTTP proxy) with real
``Section`` bodies over real files; a spy around ``sendfile_all`` (it still does the sending) counts
what the kernel sent. Unit tests of ``sendfile_all`` use a real socket pair; only the "kernel refuses
sendfile" fallback patches ``os.sendfile``, to raise the error a file system without splice support
gives.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from qsynctest import ACCESS_KEY, BUCKET, SECRET, md5_b64, md5_hex
from remote_support import proxy_through

from qsyncd.errors import BadRequest, TransientError, Unreachable
from qsyncd.remote import body as body_mod
from qsyncd.remote.base import PartInfo
from qsyncd.remote.body import SendfileUnsupported, SizedBody, SpliceHTTPConnection, sendfile_all
from qsyncd.remote.qingstor import QingStorRemote
from qsyncd.source import RateLimiter, Section

MiB = 1 << 20


@pytest.fixture
def data_file(tmp_path: Path) -> Iterator[tuple[int, bytes, Path]]:
    """An open descriptor on 5 MiB + 3 bytes of random data (not a multiple of anything)."""
    data = os.urandom(5 * MiB + 3)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd, data, path
    finally:
        os.close(fd)


@pytest.fixture
def spliced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes each ``sendfile_all`` call sent (the real function still sends them)."""
    counts: list[int] = []
    real = body_mod.sendfile_all

    def spy(sock: socket.socket, fd: int, offset: int, count: int) -> int:
        n = real(sock, fd, offset, count)
        counts.append(n)
        return n

    monkeypatch.setattr(body_mod, "sendfile_all", spy)
    return counts


@contextlib.contextmanager
def _receiver() -> Iterator[tuple[socket.socket, bytearray]]:
    """A connected socket pair: send on the first; what arrived is in the bytearray afterwards."""
    a, b = socket.socketpair()
    a.settimeout(5)
    got = bytearray()

    def drain() -> None:
        while chunk := b.recv(1 << 16):
            got.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    with a, b:
        yield a, got
        a.shutdown(socket.SHUT_WR)
        reader.join(5)


# ---- sendfile_all on a real socket pair ----------------------------------------------------------


def test_sendfile_all_sends_exactly_the_range(data_file: tuple[int, bytes, Path]) -> None:
    fd, data, _ = data_file
    with _receiver() as (a, got):
        assert 3 * MiB == sendfile_all(a, fd, 12345, 3 * MiB)
    assert data[12345 : 12345 + 3 * MiB] == bytes(got)


def test_sendfile_all_stops_at_the_end_of_the_file(data_file: tuple[int, bytes, Path]) -> None:
    fd, data, _ = data_file
    with _receiver() as (a, got):
        assert 1000 == sendfile_all(a, fd, len(data) - 1000, 4 * MiB)
    assert data[-1000:] == bytes(got)


def test_sendfile_all_times_out_when_the_peer_stops_reading(data_file: tuple[int, bytes, Path]) -> None:
    """The socket's timeout holds as with sendall: a peer that never reads is a TimeoutError."""
    fd, _, _ = data_file
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sendfile_all(a, fd, 0, 5 * MiB)  # far more than the socket buffers hold


def test_sendfile_all_reports_a_refusing_kernel(
    data_file: tuple[int, bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, _, _ = data_file

    def refuse(*args: Any) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", refuse)
    a, b = socket.socketpair()
    with a, b, pytest.raises(SendfileUnsupported):
        sendfile_all(a, fd, 0, 10)


# ---- SizedBody.send_block -------------------------------------------------------------------------


def _send_body(body: SizedBody, sock: socket.socket) -> None:
    assert body.enable_splice()
    for item in body:
        assert isinstance(item, body_mod.Splice)  # never bytes on the splice path
        item.body.send_block(sock, item.n)


def test_a_spliced_body_keeps_rate_limit_and_progress(data_file: tuple[int, bytes, Path], spliced: list[int]) -> None:
    """Progress callbacks and the bandwidth cap see every byte, as with reads."""
    fd, data, _ = data_file
    progress: list[int] = []
    limiter = RateLimiter(1 << 40)
    consumed: list[int] = []
    real_consume = limiter.consume
    limiter.consume = lambda n: (consumed.append(n), real_consume(n))[1]  # type: ignore[method-assign]
    section = Section(fd, 100, 4 * MiB + 1, limiter=limiter, on_read=progress.append)
    with _receiver() as (a, got):
        _send_body(SizedBody(section, 4 * MiB + 1), a)
    assert data[100 : 100 + 4 * MiB + 1] == bytes(got)
    assert 4 * MiB + 1 == sum(spliced) == sum(progress) == sum(consumed)


def test_a_refused_sendfile_falls_back_to_reading(
    data_file: tuple[int, bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without splice support: the body is read and sent instead, all of it."""
    fd, data, _ = data_file
    calls: list[int] = []

    def refuse(*args: Any) -> int:
        calls.append(1)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", refuse)
    progress: list[int] = []
    body = SizedBody(Section(fd, 0, len(data), on_read=progress.append), len(data))
    with _receiver() as (a, got):
        _send_body(body, a)
    assert data == bytes(got)
    assert len(data) == body.sent == sum(progress)
    assert [1] == calls  # refused once, not retried for every block


def test_enable_splice_needs_a_file_that_names_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    with path.open("rb") as f:
        assert not SizedBody(f, 3).enable_splice()  # a plain file object: read and send


# ---- through the real emulator ---------------------------------------------------------------------


def _remote(endpoint: str, read_timeout: float = 10) -> QingStorRemote:
    return QingStorRemote(
        endpoint=endpoint,
        zone="",
        bucket=BUCKET,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET,
        connect_timeout=2,
        read_timeout=read_timeout,
    )


def test_plain_http_puts_and_parts_go_out_with_sendfile(
    emulator: Any, data_file: tuple[int, bytes, Path], spliced: list[int]
) -> None:
    fd, data, _ = data_file
    remote = _remote(emulator.url)
    try:
        hex_all, b64_all = md5_hex(data), md5_b64(data)
        assert hex_all == remote.put("s/whole.bin", Section(fd, 0, len(data)), len(data), b64_all)
        assert sum(spliced) == len(data)
        assert emulator.object_bytes(BUCKET, "s/whole.bin") == data

        spliced.clear()
        cut = 4 * MiB  # parts other than the last are at least 4 MiB
        upload_id = remote.initiate("s/parts.bin")
        parts = []
        for n, (off, length) in enumerate(((0, cut), (cut, len(data) - cut))):
            part = data[off : off + length]
            part_hex, part_b64 = md5_hex(part), md5_b64(part)
            body = Section(fd, off, length)
            assert part_hex == remote.upload_part("s/parts.bin", upload_id, n, body, length, part_b64)
            parts.append(PartInfo(n, length, part_hex))
        remote.complete("s/parts.bin", upload_id, parts, hex_all)
        assert sum(spliced) == len(data)
        assert emulator.object_bytes(BUCKET, "s/parts.bin") == data
        assert remote._clients.get().pool.ConnectionCls is SpliceHTTPConnection
    finally:
        remote.close()


def test_a_file_that_shrinks_mid_send_is_refused_not_stored(
    emulator: Any, data_file: tuple[int, bytes, Path], spliced: list[int]
) -> None:
    """The file ends before Content-Length: the request is cut off, the server stores nothing."""
    fd, data, path = data_file
    os.truncate(path, 2 * MiB)
    remote = _remote(emulator.url)
    try:
        with pytest.raises(BadRequest) as info:
            remote.put("s/short.bin", Section(fd, 0, len(data)), len(data), md5_b64(data))
        assert "incomplete_body" == info.value.code
        assert sum(spliced) == 2 * MiB
        assert remote.head("s/short.bin") is None
    finally:
        remote.close()


def test_a_changed_file_is_refused_by_content_md5(emulator: Any, data_file: tuple[int, bytes, Path]) -> None:
    """Bytes that differ from what was hashed (the file changed between hash and send) are refused."""
    fd, data, path = data_file
    with path.open("r+b") as f:
        f.seek(MiB)
        f.write(b"changed")
    remote = _remote(emulator.url)
    try:
        with pytest.raises(BadRequest) as info:
            remote.put("s/changed.bin", Section(fd, 0, len(data)), len(data), md5_b64(data))
        assert "bad_digest" == info.value.code
        assert remote.head("s/changed.bin") is None
    finally:
        remote.close()


def test_through_a_plain_http_proxy_bodies_are_spliced(
    emulator: Any, data_file: tuple[int, bytes, Path], spliced: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fd, data, _ = data_file
    port = urlsplit(emulator.url).port
    proxy_through(monkeypatch, emulator.url)
    remote = _remote(f"http://qsyncd-test.invalid:{port}")
    try:
        hex_all, b64_all = md5_hex(data), md5_b64(data)
        assert hex_all == remote.put("s/proxied.bin", Section(fd, 0, len(data)), len(data), b64_all)
        assert sum(spliced) == len(data)
        assert emulator.object_bytes(BUCKET, "s/proxied.bin") == data
    finally:
        remote.close()


def test_https_endpoints_keep_read_and_send() -> None:
    """TLS needs the bytes in user space: the HTTPS pool keeps urllib3's own connection class."""
    remote = _remote("https://127.0.0.1:9")
    try:
        client = remote._clients.get()  # builds the pool; connects to nothing
        assert not client.splice
        assert client.pool.ConnectionCls is not SpliceHTTPConnection
    finally:
        remote.close()


def test_a_reset_mid_spliced_part_is_transient_and_stores_nothing(
    emulator: Any, data_file: tuple[int, bytes, Path], spliced: list[int]
) -> None:
    """The server resets the connection after 1 MiB of a 5 MiB part: a retryable error, no part,
    and the same call then succeeds."""
    from qsyncd.emulator.faults import Fault

    fd, data, _ = data_file
    remote = _remote(emulator.url)
    try:
        upload_id = remote.initiate("s/reset.bin")
        part_hex, part_b64 = md5_hex(data), md5_b64(data)
        emulator.inject(Fault(reset_after_bytes=MiB, count=1, operation="UploadMultipart"))
        with pytest.raises(TransientError) as info:
            remote.upload_part("s/reset.bin", upload_id, 0, Section(fd, 0, len(data)), len(data), part_b64)
        assert 0 == info.value.status
        assert [] == remote.list_parts("s/reset.bin", upload_id)
        again = Section(fd, 0, len(data))
        assert part_hex == remote.upload_part("s/reset.bin", upload_id, 0, again, len(data), part_b64)
        assert [PartInfo(0, len(data), part_hex)] == remote.list_parts("s/reset.bin", upload_id)
        assert spliced  # both attempts went through sendfile
    finally:
        remote.close()


@pytest.mark.parametrize("spliced_body", [True, False], ids=["sendfile", "read-and-send"])
def test_a_server_that_stops_reading_the_body_times_out(
    emulator: Any, tmp_path: Path, spliced: list[int], spliced_body: bool
) -> None:
    """The server takes the headers and then reads nothing: once the socket buffers are full the
    send waits at most read_timeout and the call fails as a retryable send timeout that says so."""
    from qsyncd.emulator.faults import Fault

    data = os.urandom(32 * MiB)  # far more than loopback socket buffers hold
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    remote = _remote(emulator.url, read_timeout=0.5)
    fd = os.open(path, os.O_RDONLY)
    try:
        emulator.inject(Fault(stall=5.0, count=1, operation="PutObject"))
        body = Section(fd, 0, len(data)) if spliced_body else io.BytesIO(data)
        with pytest.raises(TransientError) as info:
            remote.put("s/stalled.bin", body, len(data), md5_b64(data))
        assert not isinstance(info.value, Unreachable)
        assert "send_timeout" == info.value.code
        assert "stopped taking the request body" in str(info.value)
        assert "Errno 11" not in str(info.value)  # no stray EAGAIN from the sendfile loop
        assert (0 < sum(spliced) < len(data)) if spliced_body else not spliced
        assert remote.head("s/stalled.bin") is None
    finally:
        os.close(fd)
        remote.close()
