"""HTTPS endpoints: certificates are verified on every path (SDK-built requests and the ones qsyncd
signs itself), and a CA bundle from ``REQUESTS_CA_BUNDLE`` is honoured.

A TLS relay (a thread terminating TLS with a throw-away self-signed certificate for ``localhost`` and
passing the bytes on to the emulator's plain port) stands in for an HTTPS endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from qsynctest import ACCESS_KEY, BUCKET, SECRET, require_in_ci

from qsyncd.errors import Unreachable
from qsyncd.remote.base import PartInfo
from qsyncd.remote.qingstor import QingStorRemote


class TlsRelay:
    """Accepts TLS on 127.0.0.1:<port> and relays each connection to ``target`` in plain TCP."""

    def __init__(self, cert: Path, key: Path, target: tuple[str, int]) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []
        self.closed = threading.Event()
        self._spawn(self._accept)

    def _spawn(self, fn: Any, *args: Any) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(raw)
            self._spawn(self._serve, raw)

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):  # e.g. the client refused our certificate
            raw.close()
            return
        plain = socket.create_connection(self.target)
        self.sockets += [tls, plain]
        self._spawn(self._pump, plain, tls)
        self._pump(tls, plain)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        for s in [self.listener, *self.sockets]:  # shutdown() wakes a thread blocked in accept()/recv()
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def tls_endpoint(emulator: Any, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(https://localhost:PORT, the certificate that signs it)."""
    if shutil.which("openssl") is None:
        require_in_ci("openssl is needed to make a test certificate")
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    relay = TlsRelay(cert, key, ("127.0.0.1", urlsplit(emulator.url).port or 0))
    try:
        yield f"https://localhost:{relay.port}", cert
    finally:
        relay.close()


def _remote(endpoint: str) -> QingStorRemote:
    return QingStorRemote(
        endpoint=endpoint,
        zone="",
        bucket=BUCKET,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET,
        connect_timeout=2,
        read_timeout=10,
    )


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_https_with_the_ca_bundle_works_on_every_path(
    emulator: Any, tls_endpoint: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE names the CA: SDK-built and self-signed requests both get through TLS."""
    endpoint, cert = tls_endpoint
    _no_proxies(monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    remote = _remote(endpoint)
    try:
        remote.probe()  # SDK-built
        data = b"over tls"
        digest = hashlib.md5(data).digest()
        assert remote.put("t/a.txt", io.BytesIO(data), len(data), base64.b64encode(digest).decode()) == digest.hex()
        info = remote.head("t/a.txt")
        assert info is not None and info.size == len(data)
        assert [o.key for o in remote.list_objects("t/", "/")] == ["t/a.txt"]
        part = b"p" * (4 << 20)
        pd = hashlib.md5(part).digest()
        upload_id = remote.initiate("t/big.bin")  # SDK-built
        remote.upload_part("t/big.bin", upload_id, 0, io.BytesIO(part), len(part), base64.b64encode(pd).decode())
        remote.complete("t/big.bin", upload_id, [PartInfo(0, len(part), pd.hex())], pd.hex())
    finally:
        remote.close()
    assert emulator.object_bytes(BUCKET, "t/a.txt") == data
    assert emulator.object_bytes(BUCKET, "t/big.bin") == part


def test_https_with_an_unknown_certificate_is_refused_on_every_path(
    emulator: Any, tls_endpoint: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the CA the certificate is not trusted: both kinds of request fail as tls_error, nothing stored."""
    endpoint, _cert = tls_endpoint
    _no_proxies(monkeypatch)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    remote = _remote(endpoint)
    try:
        with pytest.raises(Unreachable) as sdk_built:
            remote.probe()
        data = b"must not arrive"
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        with pytest.raises(Unreachable) as self_signed:
            remote.put("t/refused.txt", io.BytesIO(data), len(data), md5)
        with pytest.raises(Unreachable):
            remote.head("t/refused.txt")
    finally:
        remote.close()
    assert sdk_built.value.code == "tls_error" and self_signed.value.code == "tls_error"
    assert "certificate" in str(self_signed.value).lower()
    assert not [r for r in emulator.requests if r.key == "t/refused.txt"]
