"""Offline checks of the pieces of qsyncd.remote.qingstor: endpoint parsing, the body wrapper,
ETag normalisation, argument validation and secret hygiene (no server needed)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import requests

from qsyncd.remote.base import Remote
from qsyncd.remote.body import BLOCK_SIZE, ShortBodyError, SizedBody
from qsyncd.remote.qingstor import Endpoint, QingStorRemote, normalise_etag, parse_endpoint

SECRET = "super-secret-value-do-not-print"


def _remote(**kw: object) -> QingStorRemote:
    settings: dict[str, object] = {
        "endpoint": "http://127.0.0.1:9",
        "zone": "",
        "bucket": "bucket-x",
        "access_key_id": "AKIDTEST",
        "secret_access_key": SECRET,
    }
    settings.update(kw)
    return QingStorRemote(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://127.0.0.1:9000", Endpoint("http", "127.0.0.1", 9000)),
        ("https://qingstor.com", Endpoint("https", "qingstor.com", 443)),
        ("http://qingstor.com", Endpoint("http", "qingstor.com", 80)),
        ("https://qingstor.com:8443/", Endpoint("https", "qingstor.com", 8443)),
        ("http://[::1]:9000", Endpoint("http", "[::1]", 9000)),
    ],
)
def test_parse_endpoint_accepts_scheme_host_port(text: str, expected: Endpoint) -> None:
    """scheme://host[:port] parses, with 80/443 as default ports."""
    assert expected == parse_endpoint(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "qingstor.com",
        "127.0.0.1:9000",
        "ftp://qingstor.com",
        "https://qingstor.com/bucket",
        "https://qingstor.com?x=1",
        "https://user:pw@qingstor.com",
        "http://:9000",
        "http://host:notaport",
        "http://host:99999",
        "http://host:0",
    ],
)
def test_parse_endpoint_rejects_everything_else(text: str) -> None:
    """Anything but scheme://host[:port] is a ValueError that shows the expected form."""
    with pytest.raises(ValueError, match="scheme://host"):
        parse_endpoint(text)


def test_remote_satisfies_protocol_and_repr_hides_secret() -> None:
    """QingStorRemote is a Remote and its repr names the endpoint but never the secret."""
    remote = _remote()
    assert isinstance(remote, Remote)
    text = repr(remote)
    assert "http://127.0.0.1:9" in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"D41D8CD98F00B204E9800998ECF8427E"', "d41d8cd98f00b204e9800998ecf8427e"),
        ("d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e"),
        ('W/"abc"', "abc"),
        (None, ""),
    ],
)
def test_normalise_etag(raw: str | None, expected: str) -> None:
    """ETags become unquoted lower-case hex."""
    assert expected == normalise_etag(raw)


def test_sized_body_sends_exactly_the_section_with_content_length() -> None:
    """A section of a longer file: Content-Length == size, no chunking, only the section's bytes."""
    data = bytes(range(256)) * 4096 * 3  # 3 MiB
    f = io.BytesIO(data)
    f.seek(1000)
    body = SizedBody(f, 2 * 1024 * 1024 + 7)
    prepared = requests.Request("PUT", "http://127.0.0.1:9/b/k", data=body).prepare()
    assert str(2 * 1024 * 1024 + 7) == prepared.headers["Content-Length"]
    assert "Transfer-Encoding" not in prepared.headers
    sent = b"".join(prepared.body)  # type: ignore[arg-type]
    assert data[1000 : 1000 + 2 * 1024 * 1024 + 7] == sent


def test_sized_body_content_length_ignores_the_real_file_length(tmp_path: Path) -> None:
    """With a real file (fileno/tell exist) requests still takes size, not the file's length."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10_000)
    with path.open("rb") as f:
        f.seek(100)
        prepared = requests.Request("PUT", "http://127.0.0.1:9/b/k", data=SizedBody(f, 50)).prepare()
        assert "50" == prepared.headers["Content-Length"]
        assert b"x" * 50 == b"".join(prepared.body)  # type: ignore[arg-type]


def test_sized_body_reads_in_large_blocks() -> None:
    """The wrapper reads 1 MiB at a time (never the whole body, never 1 KiB)."""
    sizes: list[int] = []

    class Recorder(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            sizes.append(-1 if n is None else n)
            return super().read(n)

    body = SizedBody(Recorder(b"y" * (5 * BLOCK_SIZE + 3)), 5 * BLOCK_SIZE + 3)
    assert 5 * BLOCK_SIZE + 3 == sum(len(b) for b in body)
    assert [BLOCK_SIZE] * 5 + [3] == sizes
    assert BLOCK_SIZE >= 256 * 1024


def test_sized_body_short_file_raises() -> None:
    """A file that ends before size raises ShortBodyError with how much was sent."""
    body = SizedBody(io.BytesIO(b"z" * 10), 20)
    with pytest.raises(ShortBodyError) as info:
        list(body)
    assert (10, 20) == (info.value.sent, info.value.size)


def test_sized_body_replays_from_its_start_position() -> None:
    """Iterating twice (a resend) starts again at the original position."""
    f = io.BytesIO(b"0123456789")
    f.seek(2)
    body = SizedBody(f, 5)
    assert b"23456" == b"".join(body)
    assert b"23456" == b"".join(body)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.upload_part("k", "", 0, io.BytesIO(b"a"), 1, "DMF1ucDxtqgxw5niaXcmYQ=="), "upload_id"),
        (lambda r: r.upload_part("k", "u1", -1, io.BytesIO(b"a"), 1, "DMF1ucDxtqgxw5niaXcmYQ=="), "part_number"),
        (lambda r: r.upload_part("k", "u1", 10001, io.BytesIO(b"a"), 1, "DMF1ucDxtqgxw5niaXcmYQ=="), "part_number"),
        (lambda r: r.upload_part("k", "u1", True, io.BytesIO(b"a"), 1, "DMF1ucDxtqgxw5niaXcmYQ=="), "part_number"),
        (lambda r: r.list_parts("k", ""), "upload_id"),
        (lambda r: r.abort("k", ""), "upload_id"),
        (lambda r: r.abort("k", "   "), "upload_id"),
        (lambda r: r.complete("k", "", [], "0" * 32), "upload_id"),
        (lambda r: r.put("", io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg=="), "key"),
        (lambda r: r.put("k" * 1024, io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg=="), "1023"),
        (lambda r: r.put("k", io.BytesIO(b""), 0, "not-base64!"), "md5_b64"),
        (lambda r: r.put("k", io.BytesIO(b""), -1, "1B2M2Y8AsgTpgAmY7PhCfg=="), "size"),
        (lambda r: r.put("k", io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg==", metadata={"a": "\u00e9"}), "ASCII"),
        (lambda r: r.put("k", io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg==", metadata={"a": "x\ny"}), "ASCII"),
        (lambda r: r.put("k", io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg==", metadata={"a b": "x"}), "name"),
        (
            lambda r: r.put("k", io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg==", storage_class="GLACIER"),
            "storage_class",
        ),
        (lambda r: r.initiate("k", metadata={"k": " lead"}), "spaces"),
        (lambda r: r.initiate("k", content_type="text/plain; charset=\u00e9"), "content_type"),
        (
            lambda r: r.put("k", io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg==", content_type="a\r\nX: y"),
            "content_type",
        ),
    ],
)
def test_invalid_arguments_raise_value_error_before_any_request(call, message: str) -> None:  # type: ignore[no-untyped-def]
    """Bad arguments are refused locally (the endpoint is a closed port, so a request would fail
    with Unreachable instead of ValueError)."""
    with pytest.raises(ValueError, match=message):
        call(_remote())


def test_constructor_rejects_bad_settings() -> None:
    """Missing credentials, zero timeouts and an empty bucket are ValueErrors without the secret."""
    for kw in ({"access_key_id": ""}, {"connect_timeout": 0}, {"bucket": ""}, {"endpoint": "nope"}):
        with pytest.raises(ValueError) as info:
            _remote(**kw)
        assert SECRET not in str(info.value)


def test_sdk_logger_is_pinned_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    """The SDK logs the Authorization header at DEBUG: constructing a remote pins it to WARNING."""
    logging.getLogger("qingstor-sdk").setLevel(logging.DEBUG)
    _remote()
    assert logging.getLogger("qingstor-sdk").getEffectiveLevel() >= logging.WARNING
