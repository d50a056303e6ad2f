"""``S3Remote`` against a real S3 server (SeaweedFS on 127.0.0.1, signatures checked).

What the QingStor suite proves for QingStor, for S3: objects, multipart with resume through
ListParts after a "restart" (a new remote), abort, listings, the whole-file MD5 that keeps "same
bytes, skip" honest although a multipart ETag is not the file's MD5, and the errors a user sees
(wrong secret or key, missing bucket, nothing listening), none of which contains the secret.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
from typing import Any

import pytest
from qsynctest import SECRET
from qsynctest.seaweed import Seaweed

import qsyncd.remote.s3 as s3mod
from qsyncd.errors import BadRequest, BucketMissing, CredentialsRejected, NotFound, TransientError, Unreachable
from qsyncd.remote import Remote
from qsyncd.remote.s3 import MD5_META, S3Remote, listed_md5, multipart_etag

PART = 5 * 1024 * 1024  # S3's smallest part but the last


def b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def remote(seaweed: Seaweed, s3_bucket: str) -> Any:
    r = seaweed.remote(s3_bucket)
    yield r
    r.close()


def raw_head(seaweed: Seaweed, bucket: str, key: str) -> dict[str, Any]:
    return dict(seaweed.client().head_object(Bucket=bucket, Key=key))


def stored(seaweed: Seaweed, bucket: str, key: str) -> bytes:
    body = seaweed.client().get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()


def upload_parts(r: S3Remote, key: str, upload_id: str, data: bytes, numbers: list[int]) -> None:
    for n in numbers:
        chunk = data[n * PART : (n + 1) * PART]
        assert md5(chunk) == r.upload_part(key, upload_id, n, io.BytesIO(chunk), len(chunk), b64(chunk))


def test_is_a_remote(remote: S3Remote) -> None:
    assert isinstance(remote, Remote)
    remote.probe()


def test_put_then_head_reports_the_md5_and_metadata(remote: S3Remote, seaweed: Seaweed, s3_bucket: str) -> None:
    data = b"hello s3\n" * 100
    etag = remote.put(
        "dir/a.txt", io.BytesIO(data), len(data), b64(data), content_type="text/plain", metadata={"qsyncd-mode": "644"}
    )
    assert md5(data) == etag
    info = remote.head("dir/a.txt")
    assert info is not None
    assert (len(data), md5(data), "text/plain") == (info.size, info.etag, info.content_type)
    assert {"qsyncd-mode": "644"} == dict(info.metadata)  # md5chksum is the remote's own, not the caller's
    raw = raw_head(seaweed, s3_bucket, "dir/a.txt")
    assert base64.b64encode(bytes.fromhex(md5(data))).decode() == raw["Metadata"][MD5_META]
    assert data == stored(seaweed, s3_bucket, "dir/a.txt")  # the bytes exactly: no checksum trailer in the body


def test_head_of_a_missing_key_is_none(remote: S3Remote) -> None:
    assert remote.head("no/such/key") is None


def test_empty_object(remote: S3Remote) -> None:
    assert md5(b"") == remote.put("empty", io.BytesIO(b""), 0, b64(b""))
    info = remote.head("empty")
    assert info is not None and (0, md5(b"")) == (info.size, info.etag)


def test_body_that_does_not_match_its_md5_is_refused_and_not_stored(remote: S3Remote) -> None:
    with pytest.raises(BadRequest) as exc:
        remote.put("bad", io.BytesIO(b"abd"), 3, b64(b"abc"))
    assert "bad_digest" == exc.value.code
    assert remote.head("bad") is None


def test_body_that_ends_early_is_refused_and_not_stored(remote: S3Remote) -> None:
    with pytest.raises(BadRequest) as exc:
        remote.put("short", io.BytesIO(b"ab"), 3, b64(b"abc"))
    assert "incomplete_body" == exc.value.code
    assert remote.head("short") is None


def test_a_part_of_a_bigger_file_sends_exactly_its_size(remote: S3Remote, seaweed: Seaweed, s3_bucket: str) -> None:
    f = io.BytesIO(b"0123456789")
    f.seek(2)
    assert md5(b"2345") == remote.put("section", f, 4, b64(b"2345"))
    assert b"2345" == stored(seaweed, s3_bucket, "section")


def test_requests_carry_content_md5_and_no_crc_checksums(remote: S3Remote) -> None:
    seen: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        seen.append({k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})

    remote._fast = None  # PutObject through botocore too (the hand-signed one sends only the headers it names)
    remote._client().meta.events.register("before-send.s3", capture)
    data = os.urandom(PART + 10)
    remote.put("one", io.BytesIO(data[:100]), 100, b64(data[:100]))
    upload_id = remote.initiate("two", md5_hex=md5(data))
    remote.upload_part("two", upload_id, 0, io.BytesIO(data[:PART]), PART, b64(data[:PART]))
    remote.abort("two", upload_id)
    puts = [h for h in seen if "content-md5" in h]
    assert 2 == len(puts)
    for headers in seen:
        assert not any(name.startswith("x-amz-checksum") or name == "x-amz-sdk-checksum-algorithm" for name in headers)
        assert "aws-chunked" not in headers.get("content-encoding", "")


def test_multipart_object_reports_the_whole_file_md5(remote: S3Remote, seaweed: Seaweed, s3_bucket: str) -> None:
    data = os.urandom(2 * PART + 1234)
    upload_id = remote.initiate("big/file.bin", content_type="application/x-test", md5_hex=md5(data))
    upload_parts(remote, "big/file.bin", upload_id, data, [0, 1, 2])
    parts = remote.list_parts("big/file.bin", upload_id)
    assert [(0, PART), (1, PART), (2, 1234)] == [(p.part_number, p.size) for p in parts]
    remote.complete("big/file.bin", upload_id, parts, md5(data))
    info = remote.head("big/file.bin")
    assert info is not None
    assert (len(data), md5(data), "application/x-test") == (info.size, info.etag, info.content_type)
    # The store's own ETag is md5(part MD5s)-3, not the file's MD5: that is why the metadata is there.
    raw = raw_head(seaweed, s3_bucket, "big/file.bin")
    assert f'"{multipart_etag([p.etag for p in parts])}"' == raw["ETag"]
    assert data == stored(seaweed, s3_bucket, "big/file.bin")
    assert [] == remote.list_uploads()


def test_multipart_started_without_an_md5_gets_it_at_complete(remote: S3Remote) -> None:
    data = os.urandom(PART + 7)
    upload_id = remote.initiate("late.bin", metadata={"qsyncd-host": "h1"})
    upload_parts(remote, "late.bin", upload_id, data, [0, 1])
    remote.complete("late.bin", upload_id, remote.list_parts("late.bin", upload_id), md5(data))
    info = remote.head("late.bin")
    assert info is not None and md5(data) == info.etag
    assert "h1" == info.metadata["qsyncd-host"]


def test_an_upload_resumes_after_a_restart_through_list_parts(seaweed: Seaweed, s3_bucket: str) -> None:
    data = os.urandom(2 * PART + 99)
    first = seaweed.remote(s3_bucket)
    upload_id = first.initiate("resume.bin", md5_hex=md5(data))
    upload_parts(first, "resume.bin", upload_id, data, [0, 2])
    first.close()  # the daemon was killed: a new process knows only the upload id from its ledger

    second = seaweed.remote(s3_bucket)
    assert [u.upload_id for u in second.list_uploads("resume")] == [upload_id]
    held = {p.part_number: p for p in second.list_parts("resume.bin", upload_id)}
    assert {0: md5(data[:PART]), 2: md5(data[2 * PART :])} == {n: p.etag for n, p in held.items()}
    upload_parts(second, "resume.bin", upload_id, data, [1])
    second.complete("resume.bin", upload_id, second.list_parts("resume.bin", upload_id), md5(data))
    info = second.head("resume.bin")
    assert info is not None and (len(data), md5(data)) == (info.size, info.etag)


def test_list_parts_pages(remote: S3Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3mod, "LIST_LIMIT", 2)
    data = os.urandom(4 * PART + 1)
    upload_id = remote.initiate("paged.bin", md5_hex=md5(data))
    upload_parts(remote, "paged.bin", upload_id, data, [0, 1, 2, 3, 4])
    assert [0, 1, 2, 3, 4] == [p.part_number for p in remote.list_parts("paged.bin", upload_id)]
    remote.abort("paged.bin", upload_id)


def test_abort_discards_the_upload_and_is_idempotent(remote: S3Remote) -> None:
    upload_id = remote.initiate("gone.bin", md5_hex=md5(b"x"))
    other = remote.initiate("kept.bin", md5_hex=md5(b"y"))
    remote.abort("gone.bin", upload_id)
    remote.abort("gone.bin", upload_id)
    assert [("kept.bin", other)] == [(u.key, u.upload_id) for u in remote.list_uploads()]
    with pytest.raises(NotFound) as exc:
        remote.upload_part("gone.bin", upload_id, 0, io.BytesIO(b"x"), 1, b64(b"x"))
    assert "upload_not_exists" == exc.value.code
    with pytest.raises(NotFound):
        remote.list_parts("gone.bin", upload_id)
    assert remote.head("gone.bin") is None


def test_list_uploads_by_prefix_and_created_time(remote: S3Remote) -> None:
    a = remote.initiate("cam1/a.mp4")
    remote.initiate("cam2/b.mp4")
    uploads = remote.list_uploads("cam1/")
    assert [("cam1/a.mp4", a)] == [(u.key, u.upload_id) for u in uploads]
    assert uploads[0].created.endswith("Z") and uploads[0].created[:2] == "20"


def test_list_objects_pages_rolls_up_prefixes_and_reports_heads_etag(
    remote: S3Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("d/1", "d/2", "d/3", "d/sub/4", "e/5"):
        remote.put(name, io.BytesIO(name.encode()), len(name), b64(name.encode()))
    data = os.urandom(PART + 1)
    upload_id = remote.initiate("d/multi", md5_hex=md5(data))
    upload_parts(remote, "d/multi", upload_id, data, [0, 1])
    remote.complete("d/multi", upload_id, remote.list_parts("d/multi", upload_id), md5(data))
    flat = list(remote.iter_objects("d/", "/", page_size=2))
    assert ["d/1", "d/2", "d/3", "d/multi"] == [o.key for o in flat]
    assert {"d/1": md5(b"d/1"), "d/multi": md5(data)} == {o.key: o.etag for o in flat if o.key in ("d/1", "d/multi")}
    assert ["d/1", "d/2", "d/3", "d/multi", "d/sub/4", "e/5"] == [o.key for o in remote.iter_objects("", page_size=2)]
    assert [o.key for o in remote.list_objects("")] == [o.key for o in remote.iter_objects("", page_size=1)]


def test_keys_that_seaweedfs_mishandles_as_a_v1_marker_are_listed_through_v2(remote: S3Remote) -> None:
    """SeaweedFS 4.48 decodes a V1 marker "p/a%2Bb" once more, into "p/a+b": the next page leaves out what
    sorts between the two (page size 2) or comes back empty and truncated (page size 1). ListObjectsV2's
    continuation token lists every key; V1 (a store without V2) raises on the empty page instead of ending
    the listing short, which the periodic verify would take for deleted objects."""
    keys = ["p/a", "p/a%2Bb", "p/a+b", "p/c"]
    for name in keys:
        remote.put(name, io.BytesIO(b"x"), 1, b64(b"x"))
    for size in (1, 2, 3):
        assert keys == [o.key for o in remote.iter_objects("p/", page_size=size)], size
    remote._listing.v1 = True  # as after a store refused ListObjectsV2
    assert keys == [o.key for o in remote.iter_objects("p/")]  # one page: no marker sent
    with pytest.raises(TransientError) as err:
        list(remote.iter_objects("p/", page_size=1))
    assert ("listing_stalled", "ListObjects") == (err.value.code, err.value.operation)


LISTED = [
    ("a single PutObject: the MD5", "9e107d9d372bb6826bd81d3542a419d6", "9e107d9d372bb6826bd81d3542a419d6"),
    ("multipart: md5(part MD5s)-N, ask HEAD", "9e107d9d372bb6826bd81d3542a419d6-3", None),
    ("multipart of one part", "9e107d9d372bb6826bd81d3542a419d6-1", None),
    ("no ETag at all", "", None),
    ("too short", "9e107d9d372bb6826bd81d3542a419d", None),
    ("not hex", "9e107d9d372bb6826bd81d3542a419dz", None),
    ("not normalised (quotes, upper case): ask HEAD", '"9E107D9D372BB6826BD81D3542A419D6"', None),
]


@pytest.mark.parametrize(("etag", "want"), [c[1:] for c in LISTED], ids=[c[0] for c in LISTED])
def test_listed_md5(etag: str, want: str | None) -> None:
    """The rule for one listed ETag: a plain hex MD5 is the MD5, anything else needs the object's HEAD."""
    assert want == listed_md5(etag)


def test_a_listing_heads_only_its_multipart_objects(remote: S3Remote, monkeypatch: pytest.MonkeyPatch) -> None:
    """list_objects reports HEAD's etag (the whole-file MD5) for every object at one HEAD per multipart
    object, none for the small ones: what keeps verify at one listing per prefix, not a HEAD per file."""
    small = {f"v/{i}": os.urandom(100 + i) for i in range(5)}
    for key, data in small.items():
        remote.put(key, io.BytesIO(data), len(data), b64(data))
    big = os.urandom(PART + 5)
    upload_id = remote.initiate("v/big", md5_hex=md5(big))
    upload_parts(remote, "v/big", upload_id, big, [0, 1])
    remote.complete("v/big", upload_id, remote.list_parts("v/big", upload_id), md5(big))
    headed: list[str] = []
    real_head = remote.head
    monkeypatch.setattr(remote, "head", lambda key: headed.append(key) or real_head(key))
    listed = {o.key: (o.size, o.etag) for o in remote.list_objects("v/")}
    assert ["v/big"] == headed
    assert {**{k: (len(d), md5(d)) for k, d in small.items()}, "v/big": (len(big), md5(big))} == listed


def test_an_object_written_elsewhere_as_multipart_is_never_taken_for_a_file_md5(
    remote: S3Remote, seaweed: Seaweed, s3_bucket: str
) -> None:
    data = os.urandom(PART + 3)
    client = seaweed.client()
    up = client.create_multipart_upload(Bucket=s3_bucket, Key="foreign")["UploadId"]
    etags = [
        client.upload_part(Bucket=s3_bucket, Key="foreign", UploadId=up, PartNumber=i + 1, Body=chunk)["ETag"]
        for i, chunk in enumerate((data[:PART], data[PART:]))
    ]
    client.complete_multipart_upload(
        Bucket=s3_bucket,
        Key="foreign",
        UploadId=up,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": i + 1} for i, e in enumerate(etags)]},
    )
    info = remote.head("foreign")
    assert info is not None
    assert md5(data) != info.etag and info.etag.endswith("-2")
    assert [info.etag] == [o.etag for o in remote.list_objects("foreign")]


def test_wrong_secret_is_credentials_rejected_without_the_secret(seaweed: Seaweed, s3_bucket: str) -> None:
    wrong = seaweed.remote(s3_bucket, secret_access_key="not-" + SECRET)
    calls = [
        wrong.probe,
        lambda: wrong.head("k"),
        lambda: wrong.put("k", io.BytesIO(b"abc"), 3, b64(b"abc")),
        lambda: wrong.list_objects(""),
    ]
    for call in calls:
        with pytest.raises(CredentialsRejected) as exc:
            call()
        assert "signature_not_matched" == exc.value.code
        assert "secret" in str(exc.value) and SECRET not in str(exc.value)


def test_unknown_key_id_is_credentials_rejected(seaweed: Seaweed, s3_bucket: str) -> None:
    with pytest.raises(CredentialsRejected) as exc:
        seaweed.remote(s3_bucket, access_key_id="AKIDUNKNOWN").probe()
    assert "invalid_access_key_id" == exc.value.code
    assert "access_key_id" in str(exc.value)


def test_missing_bucket_is_bucket_missing(seaweed: Seaweed) -> None:
    r = seaweed.remote("qsyncd-no-such-bucket")
    for call in (r.probe, lambda: r.list_objects(""), lambda: r.put("k", io.BytesIO(b"abc"), 3, b64(b"abc"))):
        with pytest.raises(BucketMissing) as exc:
            call()
        assert "qsyncd-no-such-bucket" in str(exc.value)
    assert r.head("k") is None  # a HEAD cannot tell a missing bucket from a missing key; the PUT then can


def test_nothing_listening_is_unreachable(seaweed: Seaweed) -> None:
    from qsynctest.seaweed import free_ports

    r = seaweed.remote("b-unreachable", endpoint=f"http://127.0.0.1:{free_ports(1)[0]}")
    with pytest.raises(Unreachable) as exc:
        r.probe()
    assert "connection_error" == exc.value.code


def test_debug_logging_shows_no_signature_or_secret(
    seaweed: Seaweed, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = seaweed.remote(s3_bucket)
    r.put("logged", io.BytesIO(b"abc"), 3, b64(b"abc"))
    wrong = seaweed.remote(s3_bucket, secret_access_key="not-" + SECRET)
    with pytest.raises(CredentialsRejected):
        wrong.put("logged", io.BytesIO(b"abc"), 3, b64(b"abc"))
    assert "Signature=" not in caplog.text and "Authorization" not in caplog.text
    assert SECRET not in caplog.text


def test_bad_arguments_are_refused_before_sending(remote: S3Remote) -> None:
    with pytest.raises(ValueError):
        remote.upload_part("k", "id", 10000, io.BytesIO(b"x"), 1, b64(b"x"))  # S3 part 10001
    with pytest.raises(ValueError):
        remote.put("k", io.BytesIO(b"x"), 1, "not-base64")
    with pytest.raises(ValueError):
        remote.initiate("k", md5_hex="xyz")
    with pytest.raises(ValueError):
        S3Remote(
            endpoint="http://h",
            region="r",
            bucket="b",
            access_key_id="a",
            secret_access_key="s",
            addressing_style="sideways",
        )


def test_messages_name_the_host_really_contacted_with_virtual_hosted_addressing() -> None:
    """With addressing_style "virtual" the bucket is part of the host name: that is the host a user must check."""
    from qsynctest.seaweed import free_ports

    port = free_ports(1)[0]
    r = S3Remote(
        endpoint=f"http://localhost:{port}",
        region="us-east-1",
        bucket="qsyncd-vhost",
        access_key_id="AKID",
        secret_access_key=SECRET,
        addressing_style="virtual",
        connect_timeout=2,
    )
    with pytest.raises(Unreachable) as exc:
        r.probe()
    assert f"http://qsyncd-vhost.localhost:{port}" in str(exc.value)
    assert f"http://qsyncd-vhost.localhost:{port}" == r.contacted
