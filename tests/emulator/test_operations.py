"""The emulator's operations, authentication and admin endpoints as plain code: no socket, no server.

Each test builds a Request in memory, runs it against a Store in a temporary directory and looks at
the Response (or the EmulatorError). The proof of the protocol over real HTTP stays in
test_protocol.py, test_sdk.py and test_rclone.py; these pin the rules of one stage each.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from emulator_helpers import AKID, SECRET, http_now, make_request, signed_headers
from qsynctest import md5_b64

from qsyncd.emulator.admin import handle_admin
from qsyncd.emulator.auth import authenticate
from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Context, Request, Response
from qsyncd.emulator.faults import Fault, RequestRecord
from qsyncd.emulator.operations.dispatch import classify, run
from qsyncd.emulator.store import MIN_PART_SIZE, PartMeta, Store, UploadState
from qsyncd.emulator.store.listing import page_keys
from qsyncd.emulator.store.uploads import choose_parts

B = "/test-bucket"


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    """A store with the bucket ``test-bucket`` and a fixed clock."""
    store = Store(tmp_path / "root", lambda: 1_700_000_000.0, fsync=False)
    store.buckets.create("test-bucket")
    return Context(store=store, now=store.now, zone="pek3a", url="http://emulator.invalid:1")


def call(ctx: Context, req: Request) -> Response:
    """Classify and run one request."""
    req.operation = classify(req.method, req.bucket, req.key, req.query)
    return run(req, ctx)


def refused(ctx: Context, req: Request) -> EmulatorError:
    """Run a request that must be refused; its error."""
    with pytest.raises(EmulatorError) as info:
        call(ctx, req)
    return info.value


def body_of(resp: Response) -> bytes:
    """What the server would send after the headers (stream read and closed)."""
    if resp.stream is None:
        return resp.body
    with resp.stream:
        return resp.stream.read(resp.length or 0)


def test_classify_names_every_operation() -> None:
    """Method, bucket, key and sub-resources name the operation; unknown combinations are Unsupported."""
    table = [
        ("GET", "", "", "", "ListBuckets"),
        ("PUT", "", "", "", "Unsupported"),
        ("PUT", "b", "", "", "PutBucket"),
        ("GET", "b", "", "stats", "GetBucketStatistics"),
        ("GET", "b", "", "uploads", "ListMultipartUploads"),
        ("GET", "b", "", "", "ListObjects"),
        ("POST", "b", "", "delete", "DeleteMultipleObjects"),
        ("GET", "b", "", "acl", "Unsupported"),
        ("PUT", "b", "k", "upload_id=u&part_number=1", "UploadMultipart"),
        ("PUT", "b", "k", "", "PutObject"),
        ("GET", "b", "k", "upload_id=u", "ListMultipart"),
        ("DELETE", "b", "k", "upload_id=u", "AbortMultipartUpload"),
        ("POST", "b", "k", "uploads", "InitiateMultipartUpload"),
        ("POST", "b", "k", "upload_id=u", "CompleteMultipartUpload"),
        ("POST", "b", "k", "append", "AppendObject"),
    ]
    for method, bucket, key, query, expected in table:
        parsed = dict(p.partition("=")[::2] for p in query.split("&") if p)
        assert expected == classify(method, bucket, key, parsed), (method, bucket, key, query)


def test_put_then_get_head_and_ranges(ctx: Context) -> None:
    """PutObject stores the body (ETag = MD5); GET streams it, a Range gives 206, HEAD has the length only."""
    data = bytes(range(256)) * 10
    put = call(ctx, make_request("PUT", f"{B}/k", headers={"Content-MD5": md5_b64(data)}, body=data))
    assert (201, [("ETag", f'"{hashlib.md5(data).hexdigest()}"')]) == (put.status, put.headers)
    got = call(ctx, make_request("GET", f"{B}/k"))
    assert (200, len(data), data) == (got.status, got.length, body_of(got))
    part = call(ctx, make_request("GET", f"{B}/k", headers={"Range": "bytes=10-19"}))
    assert (206, data[10:20]) == (part.status, body_of(part))
    assert ("Content-Range", f"bytes 10-19/{len(data)}") in part.headers
    head = call(ctx, make_request("HEAD", f"{B}/k"))
    assert (200, len(data), None) == (head.status, head.length, head.stream)
    assert 416 == refused(ctx, make_request("GET", f"{B}/k", headers={"Range": "bytes=9999-"})).status


def test_conditions_give_304_and_412(ctx: Context) -> None:
    """If-None-Match on the current ETag is 304 without a body; a failing If-Match is 412."""
    call(ctx, make_request("PUT", f"{B}/c", body=b"abc"))
    etag = f'"{hashlib.md5(b"abc").hexdigest()}"'
    cached = call(ctx, make_request("GET", f"{B}/c", headers={"If-None-Match": etag}))
    assert (304, None, None) == (cached.status, cached.length, cached.stream)
    err = refused(ctx, make_request("GET", f"{B}/c", headers={"If-Match": '"other"'}))
    assert (412, "precondition_failed") == (err.status, err.code)


def test_a_refused_request_never_asks_for_its_body(ctx: Context) -> None:
    """begin_body (which sends 100 Continue) runs only once the headers passed every check."""
    asked: list[str] = []
    bad = make_request(
        "PUT", f"{B}/x", headers={"x-qs-storage-class": "GLACIER"}, body=b"1", begin_body=lambda: asked.append("bad")
    )
    assert "invalid_argument" == refused(ctx, bad).code
    assert [] == asked
    good = make_request("PUT", f"{B}/x", body=b"1", begin_body=lambda: asked.append("good"))
    assert 201 == call(ctx, good).status
    assert ["good"] == asked


def test_digest_mismatch_and_short_body_store_nothing(ctx: Context, tmp_path: Path) -> None:
    """A hex Content-MD5 that does not match is bad_digest; a short body is incomplete_body and closes."""
    wrong = hashlib.md5(b"other").hexdigest()
    err = refused(ctx, make_request("PUT", f"{B}/d", headers={"Content-MD5": wrong}, body=b"payload"))
    assert (400, "bad_digest", False) == (err.status, err.code, err.close_connection)
    short = make_request("PUT", f"{B}/d", headers={"Content-Length": "100"}, body=b"ten bytes!")
    err = refused(ctx, short)
    assert (400, "incomplete_body", True) == (err.status, err.code, err.close_connection)
    assert [] == [p for p in (tmp_path / "root").rglob("*") if p.is_file() and "objects" in p.parts]


def test_run_checks_bucket_and_key_before_the_operation(ctx: Context) -> None:
    """A missing or invalid bucket is 404, a 1024-byte key 400, a sub-resource 405, AppendObject 501."""
    assert (404, "bucket_not_exists") == _status_code(refused(ctx, make_request("GET", "/no-such-bucket/k")))
    assert (404, "bucket_not_exists") == _status_code(refused(ctx, make_request("GET", "/UPPER/k")))
    assert (400, "invalid_object_name") == _status_code(refused(ctx, make_request("GET", f"{B}/{'k' * 1024}")))
    assert (405, "method_not_allowed") == _status_code(refused(ctx, make_request("GET", B, "acl")))
    assert (501, "not_implemented") == _status_code(refused(ctx, make_request("POST", f"{B}/k", "append")))


def _status_code(err: EmulatorError) -> tuple[int, str]:
    return err.status, err.code


def test_listing_pages_keys_and_prefixes() -> None:
    """Keys and common prefixes both count towards the limit; the marker is exclusive."""
    keys = sorted(["a/1", "a/2", "b", "c/1", "d"])
    assert (["b"], ["a/"], True) == page_keys(keys, "", "/", "", 2)
    assert (["d"], ["c/"], False) == page_keys(keys, "", "/", "b", 10)
    assert (["a/1", "a/2"], [], False) == page_keys(keys, "a/", "", "", 10)


def test_complete_chooses_parts_by_the_rules() -> None:
    """Ascending numbers, every part uploaded, etag/size as stored, only the last part under 4 MiB."""
    big, small = MIN_PART_SIZE, 10
    upload = UploadState(key="k", upload_id="u", created=0.0, mime_type="x")
    upload.parts = {
        n: PartMeta(part_number=n, size=big if n < 2 else small, etag=f"e{n}", created=0.0) for n in (0, 1, 2)
    }
    chosen = choose_parts(upload, [{"part_number": 0}, {"part_number": 1, "etag": '"e1"'}, {"part_number": 2}])
    assert [0, 1, 2] == [p.part_number for p in chosen]
    for listed, code in (
        ([{"part_number": 1}, {"part_number": 0}], "invalid_request"),
        ([{"part_number": 7}], "invalid_request"),
        ([{"part_number": 0, "etag": "nope"}], "invalid_request"),
        ([{"part_number": 0, "size": 1}], "invalid_request"),
        ([], "invalid_request"),
        ([{"part_number": 2}, {"part_number": 3}], "invalid_request"),
    ):
        with pytest.raises(EmulatorError) as info:
            choose_parts(upload, listed)
        assert code == info.value.code, listed
    upload.parts[3] = PartMeta(part_number=3, size=small, etag="e3", created=0.0)
    with pytest.raises(EmulatorError) as info:
        choose_parts(upload, [{"part_number": 2}, {"part_number": 3}])
    assert "entity_too_small" == info.value.code


def test_authentication_without_a_socket() -> None:
    """A signed request passes; unsigned is 403 permission_denied, a wrong secret 401, a skewed date 403."""
    now = time.time()
    ok = make_request("GET", B, headers=signed_headers("GET", B, ""))
    authenticate(ok, {AKID: SECRET}, now)
    cases = [
        (make_request("GET", B, headers={"Date": http_now()}), now, (403, "permission_denied")),
        (make_request("GET", B, headers=signed_headers("GET", B, "", secret="x")), now, (401, "signature_not_matched")),
        (
            make_request("GET", B, headers=signed_headers("GET", B, "", akid="NOPE")),
            now,
            (401, "invalid_access_key_id"),
        ),
        (ok, now + 20 * 60, (403, "request_expired")),
    ]
    for req, at, expected in cases:
        with pytest.raises(EmulatorError) as info:
            authenticate(req, {AKID: SECRET}, at)
        assert expected == (info.value.status, info.value.code)


class _Controls:
    """A stand-in for the Emulator behind the admin endpoints."""

    def __init__(self) -> None:
        self.clock_skew = 0.0
        self._faults: list[Fault] = []

    def inject(self, fault: Fault) -> Fault:
        self._faults.append(fault)
        return fault

    def faults(self) -> list[Fault]:
        return list(self._faults)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        return []

    def clear_requests(self) -> None:
        return None


def test_admin_endpoints_as_functions() -> None:
    """Faults are added, listed and cleared; the clock skew is set; bad input is 400, unknown paths 404."""
    controls = _Controls()
    added = handle_admin(controls, "POST", "/_emulator/faults", b'{"status": 503, "count": 2}')
    assert 201 == added.status and 503 == added.document()["status"]
    listed: Any = handle_admin(controls, "GET", "/_emulator/faults", b"").document()
    assert [503] == [f["status"] for f in listed]
    assert 204 == handle_admin(controls, "DELETE", "/_emulator/faults", b"").status
    assert [] == controls.faults()
    assert 200 == handle_admin(controls, "PUT", "/_emulator/clock_skew", b'{"seconds": 60}').status
    assert 60.0 == controls.clock_skew
    for method, path, body, status in (
        ("POST", "/_emulator/faults", b'{"nope": 1}', 400),
        ("PUT", "/_emulator/clock_skew", b"{}", 400),
        ("GET", "/_emulator/elsewhere", b"", 404),
        ("PUT", "/_emulator/faults", b"", 404),
    ):
        with pytest.raises(EmulatorError) as info:
            handle_admin(controls, method, path, body)
        assert status == info.value.status
