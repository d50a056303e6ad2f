"""The hand-signed PutObject (``qsyncd/remote/s3_fast.py``): its signature is botocore's, byte for byte, and
``S3Remote`` uses it exactly where the URL is certain (plain HTTP, path-style, no proxy)."""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import sys
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


def test_unfinished_uploads_are_listed_the_fast_way_as_botocore_lists_them(seaweed: Seaweed, s3_bucket: str) -> None:
    """ListMultipartUploads by the fast way says what botocore's says, page by page and whole; a sync's start-up
    sweep then needs no botocore client at all."""
    remote: S3Remote = seaweed.remote(s3_bucket)
    keys = ["up/a b+c.bin", "up/ünï ключ.bin", "up/~tilde", "up/sub/x", "other/y"]
    ids = {key: remote.initiate(key, md5_hex=hashlib.md5(b"").hexdigest()) for key in keys}
    fast: S3Remote = seaweed.remote(s3_bucket)
    assert fast._fast is not None
    whole = fast.list_uploads("up/")
    markers: dict[str, str] = {}
    compared = 0
    for _ in range(len(keys)):  # two to a page, each page asked both ways with the same markers
        params = {"Prefix": "up/", "MaxUploads": 2, **markers}
        page = fast._list_call("ListMultipartUploads", "up/", **params)
        assert fast._boto._client is None  # no botocore client was made for any of it
        boto = remote._boto.call("ListMultipartUploads", "up/", **params)
        assert [(u["Key"], u["UploadId"], u["Initiated"]) for u in page.get("Uploads", [])] == [
            (u["Key"], u["UploadId"], u["Initiated"]) for u in boto.get("Uploads", [])
        ]
        assert (page["IsTruncated"], page.get("NextKeyMarker")) == (boto["IsTruncated"], boto.get("NextKeyMarker"))
        compared += len(page.get("Uploads", []))
        if not page["IsTruncated"] or not page["Uploads"]:
            break
        last = page["Uploads"][-1]
        markers = {"KeyMarker": last["Key"], "UploadIdMarker": last["UploadId"]}
    assert compared >= 2
    remote._fast = None  # botocore from here on
    slow = remote.list_uploads("up/")
    assert [(u.key, u.upload_id, u.created) for u in whole] == [(u.key, u.upload_id, u.created) for u in slow]
    assert sorted((k, ids[k]) for k in keys if k.startswith("up/")) == [(u.key, u.upload_id) for u in whole]
    assert all(u.created.endswith("Z") and len(u.created) == 20 for u in whole)
    for key, upload_id in ids.items():
        remote.abort(key, upload_id)


def test_importing_the_s3_remote_leaves_botocore_s_client_machinery_unloaded() -> None:
    """botocore's session and config (~0.13 s of CPU to import, ~0.13 s more to build a client) load only when a
    request needs botocore; the fast way needs neither."""
    code = (
        "import sys, qsyncd.remote.s3, qsyncd.service.daemon;"
        "print(sorted(m for m in ('botocore.session', 'botocore.config') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "[]" == out.strip()


def test_an_uploads_page_is_read_as_botocore_reads_it() -> None:
    """The same ListMultipartUploadsResult (AWS's form, continued by markers) through both parsers."""
    import botocore.session
    from botocore.parsers import RestXMLParser

    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
        b"<NextKeyMarker>cam/b &amp; c.bin</NextKeyMarker><NextUploadIdMarker>id-2</NextUploadIdMarker>"
        b"<MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>"
        b"<Upload><Key>cam/a.bin</Key><UploadId>id-1</UploadId><Initiator><ID>x</ID></Initiator>"
        b"<StorageClass>STANDARD</StorageClass><Initiated>2026-12-04T03:00:01.000Z</Initiated></Upload>"
        b"<Upload><Key>cam/b &amp; c.bin</Key><UploadId>id-2</UploadId>"
        b"<Initiated>2026-12-04T03:00:02.123Z</Initiated></Upload>"
        b"</ListMultipartUploadsResult>"
    )
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("ListMultipartUploads").output_shape
    boto = RestXMLParser().parse({"status_code": 200, "headers": {}, "body": body}, shape)
    ours = s3_fast.parse_list_uploads(body)
    want = ("Key", "UploadId", "Initiated")
    assert [tuple(u[k] for k in want) for u in ours["Uploads"]] == [tuple(u[k] for k in want) for u in boto["Uploads"]]
    for field in ("IsTruncated", "NextKeyMarker", "NextUploadIdMarker"):
        assert ours[field] == boto[field], field
    with pytest.raises(ValueError, match="not a <ListMultipartUploadsResult>"):
        s3_fast.parse_list_uploads(b"<ListBucketResult/>")
