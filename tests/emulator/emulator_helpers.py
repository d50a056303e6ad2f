"""Helpers shared by the emulator tests: SDK clients, signed raw requests, in-memory requests (digests are
``qsynctest``'s)."""

from __future__ import annotations

import http.client
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

from qsyncd.emulator import DEFAULT_CREDENTIALS, Emulator, signing
from qsyncd.emulator.exchange import Request
from qsyncd.emulator.server import body_reader, split_path

AKID, SECRET = next(iter(DEFAULT_CREDENTIALS.items()))
BUCKET = "test-bucket"


def sdk_bucket(emu: Emulator, akid: str = AKID, secret: str = SECRET, bucket: str = BUCKET):  # type: ignore[no-untyped-def]
    """A qingstor-sdk Bucket talking to the emulator (zone "", no retries)."""
    from qingstor.sdk.config import Config
    from qingstor.sdk.service.qingstor import QingStor

    cfg = Config(akid, secret)
    cfg.host = "127.0.0.1"
    cfg.port = emu.port
    cfg.protocol = "http"
    cfg.connection_retries = 0
    return QingStor(cfg).Bucket(bucket, "")


def sdk_service(emu: Emulator, akid: str = AKID, secret: str = SECRET):  # type: ignore[no-untyped-def]
    """A qingstor-sdk QingStor service object for the emulator."""
    from qingstor.sdk.config import Config
    from qingstor.sdk.service.qingstor import QingStor

    cfg = Config(akid, secret)
    cfg.host = "127.0.0.1"
    cfg.port = emu.port
    cfg.protocol = "http"
    cfg.connection_retries = 0
    return QingStor(cfg)


def http_now(offset: float = 0.0) -> str:
    """An RFC 822 GMT date, ``offset`` seconds from now."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + offset))


@dataclass
class Reply:
    """A raw HTTP reply."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        """A response header (case-insensitive)."""
        return self.headers.get(name)


def signed_headers(
    method: str,
    path: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    *,
    akid: str = AKID,
    secret: str = SECRET,
    date_offset: float = 0.0,
) -> dict[str, str]:
    """Headers for a request, with Date and a QS Authorization over the raw path and query."""
    h = dict(headers or {})
    if not any(k.lower() == "date" for k in h):
        h["Date"] = http_now(date_offset)
    h["Authorization"] = signing.authorization_header(akid, secret, method, path, query, h)
    return h


def request(
    emu: Emulator,
    method: str,
    path: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    *,
    conn: http.client.HTTPConnection | None = None,
    sign: bool = True,
    **kw: object,
) -> Reply:
    """Send one (signed) request with http.client and read the whole reply."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    try:
        h = signed_headers(method, path, query, headers, **kw) if sign else dict(headers or {})  # type: ignore[arg-type]
        target = path + ("?" + query if query else "")
        c.request(method, target, body=body, headers=h)
        resp = c.getresponse()
        data = resp.read()
        return Reply(resp.status, resp.headers, data)
    finally:
        if own:
            c.close()


def make_request(
    method: str,
    path: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    begin_body: Callable[[], None] | None = None,
) -> Request:
    """A Request as the server would build it from the wire, in memory (no socket).

    The body is given with a Content-Length; ``path`` is the raw (percent-encoded) path."""
    msg = http.client.HTTPMessage()
    for name, value in (headers or {}).items():
        msg[name] = value
    if method in ("PUT", "POST") and "Content-Length" not in msg and "Transfer-Encoding" not in msg:
        msg["Content-Length"] = str(len(body))
    reader, has_length, _ = body_reader(msg, io.BytesIO(body))
    bucket, raw_key = split_path(path)
    req = Request(
        method=method,
        raw_path=path,
        raw_query=query,
        bucket=bucket,
        key=signing.unquote_path(raw_key) if raw_key else "",
        query=signing.parse_query(query),
        headers=msg,
        body=reader,
        has_length=has_length,
    )
    if begin_body is not None:
        req.begin_body = begin_body
    return req
