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

from qsyncd.errors import BodyMismatch, BucketMissing, CredentialsRejected
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


def test_a_listing_signature_with_a_query_is_botocores(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    now = datetime(2026, 12, 4, 3, 0, 0, tzinfo=UTC)
    params = {"list-type": "2", "prefix": "a b/ü+~%", "delimiter": "/", "max-keys": "2", "continuation-token": "x/+="}
    query = s3_fast.canonical_query(params)
    ours = {"host": "127.0.0.1:8333"}
    s3_fast.SigV4("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1").sign(
        "GET", "/my-bucket", ours, now, query=query
    )
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:8333/my-bucket?{query}")
    request.headers["host"] = "127.0.0.1:8333"
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3", "us-east-1")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    auth.add_auth(request)
    assert request.headers["Authorization"] == ours["authorization"]


def test_a_listing_goes_the_fast_way_and_says_what_botocores_says(seaweed: Seaweed, s3_bucket: str) -> None:
    """Odd keys, common prefixes and pages continued by token: the fast ListObjectsV2 and botocore's agree."""
    remote: S3Remote = seaweed.remote(s3_bucket)
    assert remote._fast is not None
    b64x = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    keys = ["ls/a b+c.bin", "ls/plus+%2B.txt", "ls/ünï ключ.txt", "ls/~tilde", "ls/sub/x", "ls/sub2/y", "ls/z"]
    for key in keys:
        remote.put(key, io.BytesIO(b"x"), 1, b64x)
    sent: list[str] = []
    remote._client().meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    fast = [(o.key, o.size, o.etag) for o in remote.iter_objects("ls/", "/", page_size=2)]
    fast_all = [o.key for o in remote.iter_objects("ls/", page_size=3)]
    assert [] == sent  # no listing went through botocore
    remote._fast = None  # botocore from here on
    slow = [(o.key, o.size, o.etag) for o in remote.iter_objects("ls/", "/", page_size=2)]
    assert sent  # it did go through botocore now
    assert fast == slow
    assert sorted(k for k in keys if "/sub" not in k) == [k for k, _, _ in fast]
    assert sorted(keys) == fast_all
    assert {(1, hashlib.md5(b"x").hexdigest())} == {(size, etag) for _, size, etag in fast}


def test_a_listing_refused_on_the_fast_way_says_what_to_fix(seaweed: Seaweed, s3_bucket: str) -> None:
    wrong: Any = seaweed.remote(s3_bucket, secret_access_key="wrong")
    assert wrong._fast is not None
    with pytest.raises(CredentialsRejected) as exc:
        list(wrong.iter_objects("ls/", "/"))
    assert "signature_not_matched" == exc.value.code and "wrong" not in str(exc.value)
    missing: Any = seaweed.remote("qsyncd-no-such-bucket")
    with pytest.raises(BucketMissing) as gone:
        list(missing.iter_objects("", "/"))
    assert "qsyncd-no-such-bucket" in str(gone.value)
