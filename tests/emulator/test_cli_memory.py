"""The emulator as a subprocess (``qsyncd emulator``, as a user starts it): CLI behaviour, peak RSS of a 1 GiB PUT."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import signal
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from qsynctest import EmulatorProc

from qsyncd.emulator import DEFAULT_CREDENTIALS, signing

GIB = 1024**3
CHUNK = 1024 * 1024


@contextmanager
def emulator_process(
    tmp_path: Path, credentials: dict[str, str] | None = None
) -> Iterator[tuple[EmulatorProc, int, Path]]:
    """``qsyncd emulator`` on a free port with ``test-bucket`` (built-in credentials unless given); its
    output log; SIGKILLed by PID afterwards if the test did not stop it."""
    with EmulatorProc(
        tmp_path / "root", tmp_path / "stderr.log", credentials=credentials, buckets=["test-bucket"]
    ) as proc:
        yield proc, proc.port, proc.log


def stop(proc: EmulatorProc, sig: int = signal.SIGTERM) -> int | None:
    """Send a signal to the emulator by PID and return its exit code."""
    return proc.stop(sig, timeout=20)


def signed(akid: str, secret: str, method: str, path: str, headers: dict[str, str]) -> dict[str, str]:
    """Add Date and Authorization to headers."""
    h = dict(headers, Date=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
    h["Authorization"] = signing.authorization_header(akid, secret, method, path, "", h)
    return h


def test_cli_custom_credentials_logging_and_sigint(tmp_path: Path) -> None:
    """With user credentials the secret is never printed; each request is logged; SIGINT exits 0."""
    secret = "user-supplied-very-secret-value"
    with emulator_process(tmp_path, {"USERKEY": secret}) as (proc, port, err):
        with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
            conn.request(
                "PUT",
                "/test-bucket/cli-key",
                body=b"abc",
                headers=signed("USERKEY", secret, "PUT", "/test-bucket/cli-key", {}),
            )
            first = conn.getresponse()
            first.read()
            assert 201 == first.status
            conn.request(
                "GET", "/test-bucket/cli-key", headers=signed("WRONG", secret, "GET", "/test-bucket/cli-key", {})
            )
            resp = conn.getresponse()
            resp.read()
            assert 401 == resp.status
        assert 0 == stop(proc, signal.SIGINT)
        log = err.read_text()
    assert secret not in log
    assert "Authorization" not in log and "QS USERKEY" not in log
    assert "operation=PutObject" in log and "key='cli-key'" in log and "status=201" in log
    assert "status=401" in log


def test_cli_default_credentials_printed_and_sigterm(tmp_path: Path) -> None:
    """Without credentials the built-in test pair is printed; the data survives; SIGTERM exits 0."""
    ((akid, secret),) = DEFAULT_CREDENTIALS.items()
    with emulator_process(tmp_path) as (proc, port, err):
        with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=10)) as conn:
            conn.request("HEAD", "/test-bucket", headers=signed(akid, secret, "HEAD", "/test-bucket", {}))
            assert 200 == conn.getresponse().status
        assert 0 == stop(proc)
        assert secret in err.read_text()


def _chunks(block: bytes) -> Iterator[bytes]:
    """1 GiB generated on the fly, 1 MiB at a time (every chunk differs by its 8-byte index)."""
    for i in range(GIB // CHUNK):
        yield i.to_bytes(8, "big") + block[8:]


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.memory
def test_one_gib_put_peak_rss_under_100_mib(tmp_path: Path) -> None:
    """Streaming a 1 GiB PUT keeps the emulator process's peak RSS (VmHWM) under 100 MiB."""
    block = os.urandom(CHUNK)
    md5 = hashlib.md5()
    for chunk in _chunks(block):  # first pass: Content-MD5, never holding more than one chunk
        md5.update(chunk)
    content_md5 = base64.b64encode(md5.digest()).decode()
    ((akid, secret),) = DEFAULT_CREDENTIALS.items()
    with emulator_process(tmp_path) as (proc, port, _err):
        before = _vm_hwm_kib(proc.pid)
        path = "/test-bucket/one-gib.bin"
        headers = signed(
            akid,
            secret,
            "PUT",
            path,
            {"Content-MD5": content_md5, "Content-Length": str(GIB), "Content-Type": "application/octet-stream"},
        )
        with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=120)) as conn:
            conn.putrequest("PUT", path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            for chunk in _chunks(block):
                conn.send(chunk)
            resp = conn.getresponse()
            resp.read()
            assert 201 == resp.status
            assert f'"{md5.hexdigest()}"' == resp.getheader("ETag")
        peak_kib = _vm_hwm_kib(proc.pid)
        print(f"\nemulator VmHWM: before PUT {before / 1024:.1f} MiB, after 1 GiB PUT {peak_kib / 1024:.1f} MiB")
        assert 0 == stop(proc)
    stored = list((tmp_path / "root").rglob("*.data"))
    assert [GIB] == [p.stat().st_size for p in stored]
    assert peak_kib < 100 * 1024
