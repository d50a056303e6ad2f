"""Fault injection, the request log and the admin endpoint of the emulator."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from contextlib import closing

import pytest
from emulator_helpers import request, sdk_bucket, signed_headers
from qsynctest import md5_b64, wait_record

from qsyncd.emulator import Emulator, Fault

B = "/test-bucket"


def admin(emu: Emulator, method: str, path: str, body: object | None = None) -> tuple[int, object]:
    """Call the unauthenticated admin endpoint; returns (status, parsed JSON or None)."""
    data = None if body is None else json.dumps(body).encode()
    with closing(http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)) as conn:
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        raw = resp.read()
    return resp.status, (json.loads(raw) if raw else None)


def test_status_fault_fires_count_times(emu: Emulator) -> None:
    """Fault(status=503, count=2) fails two PutObject requests, then the third succeeds."""
    emu.inject(Fault(status=503, count=2, operation="PutObject"))
    replies = [request(emu, "PUT", f"{B}/f", headers={"Content-MD5": md5_b64(b"x")}, body=b"x") for _ in range(3)]
    assert [503, 503, 201] == [r.status for r in replies]
    assert "service_unavailable" == json.loads(replies[0].body)["code"]
    puts = [r for r in emu.requests if r.operation == "PutObject"]
    assert ["status=503", "status=503", None] == [r.fault for r in puts]
    assert [503, 503, 201] == [r.status for r in puts]


def test_fault_filters_and_explicit_code(emu: Emulator) -> None:
    """Method, operation and key_prefix filters select requests; code= overrides the default code."""
    emu.inject(Fault(status=403, code="permission_denied", key_prefix="secret/", method="GET", count=None))
    request(emu, "PUT", f"{B}/secret/a", body=b"1")
    request(emu, "PUT", f"{B}/public/a", body=b"1")
    denied = request(emu, "GET", f"{B}/secret/a")
    assert (403, "permission_denied") == (denied.status, json.loads(denied.body)["code"])
    assert 403 == request(emu, "GET", f"{B}/secret/a").status  # count=None: forever
    assert 200 == request(emu, "GET", f"{B}/public/a").status
    emu.clear_faults()
    assert 200 == request(emu, "GET", f"{B}/secret/a").status


def test_reset_after_bytes_breaks_connection_and_stores_nothing(emu: Emulator) -> None:
    """reset_after_bytes closes the TCP connection mid-body: the client errors and no object appears."""
    emu.inject(Fault(reset_after_bytes=64 * 1024, operation="PutObject"))
    body = b"r" * (8 << 20)
    headers = signed_headers("PUT", f"{B}/reset", "", {"Content-MD5": md5_b64(body)})
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        try:
            conn.request("PUT", f"{B}/reset", body=body, headers=headers)
            conn.getresponse().read()
        finally:
            conn.close()
    rec = wait_record(emu, lambda r: r.operation == "PutObject")
    assert ("reset_after_bytes=65536", 0, 64 * 1024) == (rec.fault, rec.status, rec.bytes_in)
    assert 404 == request(emu, "HEAD", f"{B}/reset").status
    assert [] == [p for p in emu.root.rglob("*") if p.is_file() and p.name.endswith(".data")]
    assert 201 == request(emu, "PUT", f"{B}/reset", headers={"Content-MD5": md5_b64(body)}, body=body).status


def test_reset_through_sdk_is_a_connection_error(emu: Emulator) -> None:
    """Through the SDK (requests) a reset upload part surfaces as a requests ConnectionError."""
    import requests

    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload("sdk-reset")["upload_id"]
    emu.inject(Fault(reset_after_bytes=1000, operation="UploadMultipart"))
    part = b"p" * (4 << 20)
    with pytest.raises(requests.exceptions.ConnectionError):
        bucket.upload_multipart("sdk-reset", upload_id=upload_id, part_number="0", body=part, content_md5=md5_b64(part))
    assert 0 == bucket.list_multipart("sdk-reset", upload_id=upload_id)["count"]


def test_latency_delays_only_the_faulted_request(emu: Emulator) -> None:
    """A request with latency is still pending while another request completes; then it succeeds."""
    emu.inject(Fault(latency=3.0, operation="ListObjects"))
    done = threading.Event()
    result: list[int] = []

    def slow() -> None:
        result.append(request(emu, "GET", B).status)
        done.set()

    t = threading.Thread(target=slow)
    t.start()
    assert 200 == request(emu, "HEAD", B).status
    assert not done.is_set()
    t.join()
    assert [200] == result
    rec = wait_record(emu, lambda r: r.operation == "ListObjects")
    assert "latency=3" == rec.fault


def test_stall_blocks_one_request_not_the_server(emu: Emulator) -> None:
    """A stalled request gets no answer (client times out) while other connections keep working."""
    emu.inject(Fault(stall=3.0, operation="GetObject"))
    request(emu, "PUT", f"{B}/s", body=b"stall")
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=1.0)
    try:
        conn.request("GET", f"{B}/s", headers=signed_headers("GET", f"{B}/s"))
        with pytest.raises((socket.timeout, TimeoutError)):
            conn.getresponse()
        assert 200 == request(emu, "HEAD", B).status  # the server still answers others
    finally:
        conn.close()
    rec = wait_record(emu, lambda r: r.operation == "GetObject")
    assert ("stall=3", 0) == (rec.fault, rec.status)
    assert b"stall" == request(emu, "GET", f"{B}/s").body


def test_probability_uses_seeded_random(emu: Emulator) -> None:
    """probability=0.5 affects some but not all matching requests (seeded, so reproducible)."""
    emu.inject(Fault(status=500, count=None, probability=0.5, operation="HeadBucket"))
    statuses = [request(emu, "HEAD", B).status for _ in range(40)]
    assert 0 < statuses.count(500) < 40
    assert set(statuses) == {200, 500}


def test_request_log_contents(emu: Emulator) -> None:
    """The log records method, operation, bucket, key, status, bytes, part number and upload id in order."""
    bucket = sdk_bucket(emu)
    emu.clear_requests()
    upload_id = bucket.initiate_multipart_upload("log/key")["upload_id"]
    bucket.upload_multipart(
        "log/key", upload_id=upload_id, part_number="3", body=b"12345", content_md5=md5_b64(b"12345")
    )
    bucket.get_object("log/missing")
    recs = emu.requests
    assert ["InitiateMultipartUpload", "UploadMultipart", "GetObject"] == [r.operation for r in recs]
    init, part, get = recs
    assert ("POST", "test-bucket", "log/key", 200, upload_id) == (
        init.method,
        init.bucket,
        init.key,
        init.status,
        init.upload_id,
    )
    assert (201, 5, 3, upload_id, None) == (part.status, part.bytes_in, part.part_number, part.upload_id, part.fault)
    assert (404, "log/missing") == (get.status, get.key) and get.bytes_out > 0
    emu.clear_requests()
    assert [] == emu.requests


def test_admin_endpoint_round_trip(emu: Emulator) -> None:
    """Admin: health, add/list/clear faults, read/clear the request log, set the clock skew."""
    assert (200, {"ok": True}) == admin(emu, "GET", "/_emulator/health")
    status, fault = admin(emu, "POST", "/_emulator/faults", {"status": 500, "count": 1, "operation": "HeadBucket"})
    assert 201 == status
    assert isinstance(fault, dict) and (500, 1, "HeadBucket") == (fault["status"], fault["count"], fault["operation"])
    assert 500 == request(emu, "HEAD", B).status
    assert 200 == request(emu, "HEAD", B).status
    status, records = admin(emu, "GET", "/_emulator/requests")
    assert 200 == status and isinstance(records, list)
    assert [("HeadBucket", 500, "status=500"), ("HeadBucket", 200, None)] == [
        (r["operation"], r["status"], r["fault"]) for r in records
    ]
    assert 204 == admin(emu, "DELETE", "/_emulator/requests")[0]
    assert (200, []) == admin(emu, "GET", "/_emulator/requests")
    admin(emu, "POST", "/_emulator/faults", {"status": 503, "count": None})
    assert 204 == admin(emu, "DELETE", "/_emulator/faults")[0]
    assert 200 == request(emu, "HEAD", B).status
    assert 400 == admin(emu, "POST", "/_emulator/faults", {"bogus": 1})[0]
    assert 200 == admin(emu, "PUT", "/_emulator/clock_skew", {"seconds": 3600})[0]
    assert 3600 == emu.clock_skew
    assert 403 == request(emu, "HEAD", B).status
    assert 200 == admin(emu, "PUT", "/_emulator/clock_skew", {"seconds": 0})[0]
    assert 200 == request(emu, "HEAD", B).status


def test_record_is_visible_as_soon_as_the_reply_arrives(emu: Emulator) -> None:
    """After each reply the log already holds that request's record (no race with the handler thread)."""
    for i in range(60):
        reply = request(emu, "PUT", f"{B}/seq{i}", body=b"v" * i) if i % 2 else request(emu, "GET", f"{B}/none")
        last = emu.requests[-1]
        assert (reply.status, i) == (last.status, i)
        assert last.key == (f"seq{i}" if i % 2 else "none")
