"""The hand-signed PutObject (``qsyncd/remote/s3_fast.py``): its signature is botocore's, byte for byte, and
``S3Remote`` uses it exactly where the URL is certain (plain HTTP, path-style, no proxy)."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from qsynctest.seaweed import Seaweed

from qsyncd.errors import BodyMismatch, CredentialsRejected
from qsyncd.remote import s3_fast
from qsyncd.remote.endpoint import parse_endpoint
from qsyncd.remote.s3 import S3Remote


@pytest.mark.parametrize("key", ["a.txt", "dir/sub/file name+1.bin", "ünïcode/ключ", "odd/~!*'()[]&=@;:$,?#%"])
def test_the_signature_is_botocores(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    now = datetime(2026, 12, 3, 6, 30, 5, tzinfo=UTC)
    headers = {
        "content-length": "11",
        "content-md5": "XrY7u+Ae7tCTyyK7j1rNww==",
        "content-type": "text/plain",
        "x-amz-meta-md5chksum": "XrY7u+Ae7tCTyyK7j1rNww==",
        "x-amz-meta-qsyncd-mtime": "1700000000.5",
        "host": "127.0.0.1:8333",
    }
    ours = dict(headers)
    s3_fast.SigV4("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1").sign(
        "PUT", s3_fast.object_path("my-bucket", key), ours, now
    )

    request = AWSRequest(method="PUT", url="http://127.0.0.1:8333" + s3_fast.object_path("my-bucket", key), data=b"")
    for name, value in headers.items():
        request.headers[name] = value
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})  # as S3Remote configures it
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3", "us-east-1")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    auth.add_auth(request)
    assert request.headers["Authorization"] == ours["authorization"]


def test_usable_only_where_the_url_is_certain(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert s3_fast.usable(parse_endpoint("http://127.0.0.1:8333"), "auto")
    assert s3_fast.usable(parse_endpoint("http://minio.lan:9000"), "path")
    assert not s3_fast.usable(parse_endpoint("http://minio.lan:9000"), "auto")  # botocore may go virtual
    assert not s3_fast.usable(parse_endpoint("https://s3.eu-central-1.amazonaws.com"), "path")
    assert not s3_fast.usable(parse_endpoint("http://127.0.0.1:8333"), "virtual")
    monkeypatch.setenv("http_proxy", "http://proxy:3128")
    assert not s3_fast.usable(parse_endpoint("http://127.0.0.1:8333"), "path")


def test_put_goes_the_fast_way_and_keeps_its_promises(seaweed: Seaweed, s3_bucket: str) -> None:
    remote: S3Remote = seaweed.remote(s3_bucket)
    assert remote._fast is not None
    sent: list[str] = []
    remote._client().meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    data = b"fast path " * 1000
    b64x = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    f = io.BytesIO(b"xx" + data + b"yy")
    f.seek(2)
    assert hashlib.md5(data).hexdigest() == remote.put("fast/ü k.bin", f, len(data), md5, metadata={"a": "1"})
    info = remote.head("fast/ü k.bin")
    assert info is not None and (len(data), hashlib.md5(data).hexdigest(), {"a": "1"}) == (
        info.size,
        info.etag,
        dict(info.metadata),
    )
    assert ["HEAD"] == sent  # the PUT did not go through botocore
    for odd in ("odd/~!*'()[]&=@;:$,?#% +.bin", "ünïcode/ключ/日本.txt"):
        assert hashlib.md5(b"x").hexdigest() == remote.put(odd, io.BytesIO(b"x"), 1, b64x)
        assert [odd] == [o.key for o in remote.list_objects(odd)]
    with pytest.raises(BodyMismatch):
        remote.put("fast/bad", io.BytesIO(b"abd"), 3, base64.b64encode(hashlib.md5(b"abc").digest()).decode())
    with pytest.raises(BodyMismatch):
        remote.put("fast/short", io.BytesIO(b"ab"), 3, base64.b64encode(hashlib.md5(b"abc").digest()).decode())
    wrong: Any = seaweed.remote(s3_bucket, secret_access_key="wrong")
    with pytest.raises(CredentialsRejected) as exc:
        wrong.put("fast/k", io.BytesIO(b"abc"), 3, base64.b64encode(hashlib.md5(b"abc").digest()).decode())
    assert "signature_not_matched" == exc.value.code and "wrong" not in str(exc.value)
