"""The emulator as a subprocess (``python -m qsyncd.emulator.cli``): CLI behaviour and peak memory of a 1 GiB PUT."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from qsyncd.emulator import DEFAULT_CREDENTIALS, signing

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
GIB = 1024**3
CHUNK = 1024 * 1024


@contextmanager
def emulator_process(tmp_path: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """Start the CLI with --port 0 and --port-file; always terminate it by PID afterwards."""
    port_file = tmp_path / "port"
    err_path = tmp_path / "stderr.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [
                str(PYTHON if PYTHON.exists() else sys.executable),
                "-m",
                "qsyncd.emulator.cli",
                "--root",
                str(tmp_path / "root"),
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--bucket",
                "test-bucket",
                *extra,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"emulator did not start: {err_path.read_text()}")
            time.sleep(0.05)
        yield proc, int(port_file.read_text()), err_path
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send a signal to the emulator by PID and return its exit code."""
    os.kill(proc.pid, sig)
    return proc.wait(timeout=20)


def signed(akid: str, secret: str, method: str, path: str, headers: dict[str, str]) -> dict[str, str]:
    """Add Date and Authorization to headers."""
    h = dict(headers, Date=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
    h["Authorization"] = signing.authorization_header(akid, secret, method, path, "", h)
    return h


def test_cli_custom_credentials_logging_and_sigint(tmp_path: Path) -> None:
    """With user credentials the secret is never printed; each request is logged; SIGINT exits 0."""
    secret = "user-supplied-very-secret-value"
    with emulator_process(tmp_path, "--access-key-id", "USERKEY", "--secret-access-key", secret) as (proc, port, err):
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
