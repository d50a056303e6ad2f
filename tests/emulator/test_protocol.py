"""The emulator at the HTTP level (raw http.client and sockets): auth, headers, errors, HTTP details."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import threading
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from emulator_helpers import AKID, SECRET, http_now, request, sdk_bucket, signed_headers
from qsynctest import md5_b64

from qsyncd.emulator import Emulator, signing

B = "/test-bucket"
LAST_MODIFIED_RE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


def put(emu: Emulator, key: str, data: bytes, **kw: object):  # type: ignore[no-untyped-def]
    """PUT an object with Content-MD5 through raw http.client."""
    path = f"{B}/{quote(key, safe='/')}"
    headers = {"Content-MD5": md5_b64(data), "Content-Type": "application/octet-stream"}
    return request(emu, "PUT", path, headers=headers, body=data, **kw)


def assert_error(reply, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    """The reply is a QingStor JSON error with this status and code."""
    assert status == reply.status
    assert "application/json" == reply.header("Content-Type")
    doc = json.loads(reply.body)
    assert code == doc["code"]
    assert {"code", "message", "request_id", "url"} == set(doc)
    assert doc["request_id"] == reply.header("x-qs-request-id")


def raw_exchange(emu: Emulator, payload: bytes, *, shut_write: bool = False) -> bytes:
    """Send raw bytes on a fresh socket and return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as s:
        s.sendall(payload)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and not shut_write:
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
        return b"".join(chunks)


def raw_request_bytes(
    method: str, target: str, sign_path: str, headers: dict[str, str], body: bytes = b"", sign_query: str = ""
) -> bytes:
    """A signed HTTP/1.1 request as bytes (request line target may differ from the signed path)."""
    h = signed_headers(method, sign_path, sign_query, headers)
    lines = [f"{method} {target} HTTP/1.1", "Host: pek3a.127.0.0.1"] + [f"{k}: {v}" for k, v in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ---- authentication ----------------------------------------------------------------------------


def test_wrong_secret_is_signature_not_matched(emu: Emulator) -> None:
    """A request signed with the wrong secret gets 401 signature_not_matched and a JSON error body."""
    reply = request(emu, "GET", B, secret="wrong-secret")
    assert_error(reply, 401, "signature_not_matched")
    assert "QingStor" == reply.header("Server")


def test_unknown_access_key_id(emu: Emulator) -> None:
    """An unknown access key id gets 401 invalid_access_key_id."""
    assert_error(request(emu, "GET", B, akid="NOSUCHKEY"), 401, "invalid_access_key_id")


def test_missing_authorization_is_403_permission_denied(emu: Emulator) -> None:
    """An unsigned request to a private bucket is 403 permission_denied (QingStor's error table), for
    bucket and object requests alike; qsyncd's client side calls it a permission problem."""
    from qsyncd.remote.translate import status_error

    put(emu, "anon", b"x")
    for method, path in (("GET", B), ("GET", f"{B}/anon"), ("PUT", f"{B}/anon2"), ("GET", "/")):
        reply = request(
            emu, method, path, headers={"Date": http_now()}, body=b"" if method == "PUT" else None, sign=False
        )
        assert_error(reply, 403, "permission_denied")
    assert 404 == request(emu, "HEAD", f"{B}/anon2").status
    doc = json.loads(reply.body)
    err = status_error(
        status=reply.status,
        code=doc["code"],
        message=doc["message"],
        request_id=doc["request_id"],
        operation="ListBuckets",
        key="",
        endpoint=emu.url,
        bucket="test-bucket",
        zone="pek3a",
    )
    assert "permission denied" in str(err)


def test_clock_skew_is_request_expired(emu: Emulator) -> None:
    """With the server clock 20 minutes off, a correct request gets 403 request_expired; 10 minutes is fine."""
    emu.clock_skew = 20 * 60
    assert_error(request(emu, "GET", B), 403, "request_expired")
    bucket = sdk_bucket(emu)
    assert 403 == bucket.list_objects().status_code
    emu.clock_skew = -10 * 60
    assert 200 == request(emu, "GET", B).status
    assert 200 == bucket.list_objects().status_code


def test_x_qs_date_replaces_date(emu: Emulator) -> None:
    """With x-qs-date the Date line is empty: a stale Date is ignored and x-qs-date is checked."""
    ok = request(emu, "GET", B, headers={"Date": http_now(-86400), "x-qs-date": http_now()})
    assert 200 == ok.status
    stale = request(emu, "GET", B, headers={"Date": http_now(), "x-qs-date": http_now(-3600)})
    assert_error(stale, 403, "request_expired")


def test_query_signature(emu: Emulator) -> None:
    """access_key_id/expires/signature in the query authorise a GET; expired is 403, tampered 401."""
    put(emu, "q.txt", b"query-signed")
    path = f"{B}/q.txt"

    def signed_query(expires: int) -> str:
        sig = signing.query_signature(SECRET, "GET", path, "", {}, expires)
        return f"access_key_id={AKID}&expires={expires}&signature={quote(sig, safe='')}"

    good = request(emu, "GET", path, signed_query(int(time.time()) + 300), sign=False)
    assert (200, b"query-signed") == (good.status, good.body)
    expired = request(emu, "GET", path, signed_query(int(time.time()) - 10), sign=False)
    assert_error(expired, 403, "request_expired")
    tampered = signed_query(int(time.time()) + 300).replace("expires=", "expires=1")
    assert_error(request(emu, "GET", path, tampered, sign=False), 401, "signature_not_matched")


def test_go_style_query_encoding(emu: Emulator) -> None:
    """Go's ``?uploads=`` (signed as bare ``uploads``) and ``prefix=a%2F&delimiter=`` are accepted."""
    path = f"{B}/go/key"
    headers = signed_headers("POST", path, "uploads", {})  # signed without "="
    with closing(http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)) as conn:
        conn.request("POST", path + "?uploads=", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
    assert 200 == resp.status
    assert "go/key" == json.loads(body)["key"]
    put(emu, "go/x y", b"1")
    listing = request(emu, "GET", B, "delimiter=&prefix=go%2Fx+")
    assert ["go/x y"] == [k["key"] for k in json.loads(listing.body)["keys"]]


# ---- response format ---------------------------------------------------------------------------


def test_put_head_get_headers(emu: Emulator) -> None:
    """PUT is 201 with a quoted ETag; HEAD has real Content-Length, Last-Modified layout, no body."""
    data = b"0123456789"
    reply = put(emu, "h.bin", data)
    assert 201 == reply.status
    assert f'"{hashlib.md5(data).hexdigest()}"' == reply.header("ETag")
    assert reply.header("x-qs-request-id")
    with closing(http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)) as conn:
        conn.request("HEAD", f"{B}/h.bin", headers=signed_headers("HEAD", f"{B}/h.bin"))
        head = conn.getresponse()
        head.read()
        assert 200 == head.status
        assert "10" == head.getheader("Content-Length")
        assert head.getheader("Transfer-Encoding") is None
        assert LAST_MODIFIED_RE.match(head.getheader("Last-Modified") or "")
        assert f'"{hashlib.md5(data).hexdigest()}"' == head.getheader("ETag")
        conn.request("GET", f"{B}/h.bin", headers=signed_headers("GET", f"{B}/h.bin"))
        got = conn.getresponse()
        assert (200, data) == (got.status, got.read())


def test_head_missing_object_404_without_body(emu: Emulator) -> None:
    """HEAD of a missing object is 404 with no body; the connection stays usable."""
    with closing(http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)) as conn:
        conn.request("HEAD", f"{B}/missing", headers=signed_headers("HEAD", f"{B}/missing"))
        resp = conn.getresponse()
        assert (404, b"") == (resp.status, resp.read())
        assert resp.getheader("x-qs-request-id")
        conn.request("GET", B, headers=signed_headers("GET", B))
        assert 200 == conn.getresponse().status
    raw = raw_exchange(emu, raw_request_bytes("HEAD", f"{B}/missing", f"{B}/missing", {"Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 404")
    assert raw.endswith(b"\r\n\r\n")  # headers only


def test_json_content_type_is_exact(emu: Emulator) -> None:
    """JSON responses say exactly ``application/json``."""
    for method, path, query in [("GET", "/", ""), ("GET", B, ""), ("GET", B, "stats"), ("GET", B, "uploads")]:
        reply = request(emu, method, path, query)
        assert (200, "application/json") == (reply.status, reply.header("Content-Type"))


def test_ranges(emu: Emulator) -> None:
    """Range a-b, a- and -n give 206 with Content-Range; bad or unsatisfiable ranges give 416."""
    data = bytes(range(10))
    put(emu, "r", data)
    cases = {"bytes=2-4": (2, 4), "bytes=7-": (7, 9), "bytes=-3": (7, 9), "bytes=-100": (0, 9), "bytes=8-100": (8, 9)}
    for rng, (start, end) in cases.items():
        reply = request(emu, "GET", f"{B}/r", headers={"Range": rng})
        assert 206 == reply.status, rng
        assert data[start : end + 1] == reply.body
        assert f"bytes {start}-{end}/10" == reply.header("Content-Range")
    for rng in ["bytes=10-", "bytes=abc", "bytes=5-2", "bytes=0-1,3-4", "bytes=-0"]:
        assert_error(request(emu, "GET", f"{B}/r", headers={"Range": rng}), 416, "invalid_range")


def test_delete_object_idempotent_and_missing_bucket(emu: Emulator) -> None:
    """DELETE object is 204 whether or not it existed; a missing bucket is 404 bucket_not_exists."""
    put(emu, "d", b"x")
    assert 204 == request(emu, "DELETE", f"{B}/d").status
    assert 204 == request(emu, "DELETE", f"{B}/d").status
    assert_error(request(emu, "DELETE", "/no-such-bucket/d"), 404, "bucket_not_exists")
    assert_error(request(emu, "GET", f"{B}/d"), 404, "object_not_exists")


# ---- validation --------------------------------------------------------------------------------


def test_bad_digest_stores_nothing(emu: Emulator) -> None:
    """A Content-MD5 that does not match is 400 bad_digest and nothing is stored."""
    reply = request(emu, "PUT", f"{B}/bd", headers={"Content-MD5": md5_b64(b"other")}, body=b"payload")
    assert_error(reply, 400, "bad_digest")
    assert 404 == request(emu, "HEAD", f"{B}/bd").status
    assert [] == [p for p in emu.root.rglob("*") if p.is_file() and p.suffix == ".data"]


def test_hex_content_md5_is_accepted_and_checked(emu: Emulator) -> None:
    """Content-MD5 as 32 hex digits (what the Go SDK's scenario suite and qsctl send) is checked like
    the Base64 form: a match stores the object (201), a mismatch is 400 bad_digest and stores nothing."""
    data = b"\0" * 1024
    hex_md5 = hashlib.md5(data).hexdigest()
    for name, value in (("hex", hex_md5), ("HEX", hex_md5.upper())):
        reply = request(emu, "PUT", f"{B}/{name}", headers={"Content-MD5": value}, body=data)
        assert 201 == reply.status
        assert f'"{hex_md5}"' == reply.header("ETag")
        assert data == emu.object_bytes("test-bucket", name)
    wrong = hashlib.md5(b"other").hexdigest()
    assert_error(request(emu, "PUT", f"{B}/wrong", headers={"Content-MD5": wrong}, body=data), 400, "bad_digest")
    assert 404 == request(emu, "HEAD", f"{B}/wrong").status


def test_hex_content_md5_on_upload_part_and_delete_multiple(emu: Emulator) -> None:
    """The hex form is accepted (and checked) wherever Content-MD5 is read: UploadMultipart, ?delete."""
    init = request(emu, "POST", f"{B}/mp", "uploads")
    upload_id = json.loads(init.body)["upload_id"]
    part = b"p" * 100
    query = f"part_number=0&upload_id={upload_id}"
    ok = request(emu, "PUT", f"{B}/mp", query, {"Content-MD5": hashlib.md5(part).hexdigest()}, part)
    assert 201 == ok.status
    bad = request(emu, "PUT", f"{B}/mp", query, {"Content-MD5": hashlib.md5(b"x").hexdigest()}, part)
    assert_error(bad, 400, "bad_digest")
    put(emu, "gone", b"1")
    doc = json.dumps({"objects": [{"key": "gone"}], "quiet": False}).encode()
    reply = request(emu, "POST", B, "delete", {"Content-MD5": hashlib.md5(doc).hexdigest()}, doc)
    assert 200 == reply.status
    assert [{"key": "gone"}] == json.loads(reply.body)["deleted"]


def test_malformed_content_md5_is_bad_digest(emu: Emulator) -> None:
    """A Content-MD5 that is neither the Base64 of 16 bytes nor 32 hex digits is 400 bad_digest."""
    data = b"payload"
    hex_md5 = hashlib.md5(data).hexdigest()
    spaced = hex_md5[:14] + "  " + hex_md5[14:30]  # 32 characters, 15 bytes
    for value in ("not-a-digest", hex_md5[:31], hex_md5 + "0", "g" * 32, spaced, md5_b64(data)[:-2], ""):
        reply = request(emu, "PUT", f"{B}/m", headers={"Content-MD5": value}, body=data)
        assert_error(reply, 400, "bad_digest")
    assert 404 == request(emu, "HEAD", f"{B}/m").status


def test_short_body_is_incomplete_body(emu: Emulator) -> None:
    """A body shorter than Content-Length (client shuts its side) is 400 incomplete_body; nothing stored."""
    payload = raw_request_bytes("PUT", f"{B}/short", f"{B}/short", {"Content-Length": "100"}, b"only ten!!")
    raw = raw_exchange(emu, payload, shut_write=True)
    assert raw.startswith(b"HTTP/1.1 400")
    assert b'"incomplete_body"' in raw
    assert 404 == request(emu, "HEAD", f"{B}/short").status


def test_missing_content_length_is_411(emu: Emulator) -> None:
    """A PUT without Content-Length and not chunked is 411."""
    raw = raw_exchange(emu, raw_request_bytes("PUT", f"{B}/nolen", f"{B}/nolen", {"Connection": "close"}))
    assert raw.startswith(b"HTTP/1.1 411")
    assert 404 == request(emu, "HEAD", f"{B}/nolen").status


def test_chunked_put_is_accepted(emu: Emulator) -> None:
    """A chunked PUT body is decoded and stored with its MD5 as ETag."""
    parts = [b"a" * 1000, b"b" * 70000, b"c"]
    data = b"".join(parts)
    headers = signed_headers("PUT", f"{B}/chunked", "", {"Content-MD5": md5_b64(data), "Transfer-Encoding": "chunked"})
    with closing(http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)) as conn:
        conn.request("PUT", f"{B}/chunked", body=iter(parts), headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        resp.read()
    assert 201 == resp.status
    assert data == request(emu, "GET", f"{B}/chunked").body


def test_key_length_limits(emu: Emulator) -> None:
    """A 1023-byte key is fine; 1024 bytes is 400 invalid_object_name; invalid UTF-8 too."""
    assert 201 == put(emu, "k" * 1023, b"1").status
    assert_error(put(emu, "k" * 1024, b"1"), 400, "invalid_object_name")
    assert_error(
        request(emu, "PUT", f"{B}/%FF%FE", headers={"Content-MD5": md5_b64(b"1")}, body=b"1"),
        400,
        "invalid_object_name",
    )


def test_bad_storage_class(emu: Emulator) -> None:
    """An unknown x-qs-storage-class is 400 invalid_argument."""
    reply = request(emu, "PUT", f"{B}/sc", headers={"x-qs-storage-class": "GLACIER"}, body=b"1")
    assert_error(reply, 400, "invalid_argument")


def test_entity_too_large_declared(emu: Emulator) -> None:
    """A declared Content-Length over 5 GiB is refused before any body is read."""
    payload = raw_request_bytes("PUT", f"{B}/huge", f"{B}/huge", {"Content-Length": str(5 * 1024**3 + 1)})
    raw = raw_exchange(emu, payload)
    assert raw.startswith(b"HTTP/1.1 400")
    assert b'"entity_too_large"' in raw


def test_odd_key_names(emu: Emulator) -> None:
    """Keys with spaces, %, ?, #, backslash, newline, unicode and ../ round-trip and stay under the root."""
    keys = [
        "sp ace",
        "per%cent",
        "q?uestion",
        "ha#sh",
        "back\\slash",
        "new\nline",
        "中文/ключ",
        "a//b",
        "plus+sign",
        "=eq&amp",
        "dot.",
        "~tilde",
    ]
    bucket = sdk_bucket(emu)
    for i, key in enumerate(keys):
        data = f"value {i}".encode()
        assert 201 == bucket.put_object(key, body=data, content_md5=md5_b64(data)).status_code, key
        assert data == bucket.get_object(key).content
        path = emu.object_path("test-bucket", key).resolve()
        assert path.is_relative_to(emu.root.resolve())
        assert data == path.read_bytes()
    listed = [k["key"] for k in bucket.list_objects(limit="1000")["keys"]]
    assert sorted(keys) == listed


def test_dot_segment_keys_stay_inside_root(emu: Emulator) -> None:
    """Keys like ``../../escape`` (sent raw: requests would normalise them) are stored under the root."""
    for key in ["../../escape", "./x/../y", "..%2F..%2Fenc"]:
        raw_path = f"{B}/{key}"
        data = key.encode()
        assert 201 == request(emu, "PUT", raw_path, headers={"Content-MD5": md5_b64(data)}, body=data).status
        decoded = key.replace("%2F", "/")
        path = emu.object_path("test-bucket", decoded).resolve()
        assert path.is_relative_to(emu.root.resolve())
        assert data == path.read_bytes()
        assert data == request(emu, "GET", raw_path).body
    assert not (emu.root.parent / "escape").exists()
    assert not (emu.root / "escape").exists()


# ---- HTTP details ------------------------------------------------------------------------------


def test_keep_alive_reuses_connection(emu: Emulator) -> None:
    """Several requests (including an error) travel over one TCP connection."""
    with closing(http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)) as conn:
        conn.connect()
        sock = conn.sock
        for path in [B, f"{B}/missing", "/"]:
            conn.request("GET", path, headers=signed_headers("GET", path))
            conn.getresponse().read()
        conn.request("PUT", f"{B}/ka", body=b"abc", headers=signed_headers("PUT", f"{B}/ka"))
        assert 201 == conn.getresponse().status
        assert sock is conn.sock


def test_expect_100_continue(emu: Emulator) -> None:
    """With Expect: 100-continue the server sends 100 before the body, then 201; a bad signature gets 401 at once."""
    data = b"expect-body"
    h = signed_headers(
        "PUT",
        f"{B}/exp",
        "",
        {"Content-Length": str(len(data)), "Expect": "100-continue", "Content-MD5": md5_b64(data)},
    )
    head = "PUT " + f"{B}/exp" + " HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as s:
        s.sendall(head.encode())
        interim = s.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(data)
        final = s.recv(65536)
        assert final.startswith(b"HTTP/1.1 201")
    bad = dict(h, Authorization=f"QS {AKID}:bm90LWEtc2lnbmF0dXJl")
    head = "PUT " + f"{B}/exp2" + " HTTP/1.1\r\nHost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in bad.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as s:
        s.sendall(head.encode())
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 401")
    assert data == request(emu, "GET", f"{B}/exp").body


def test_absolute_form_request_line(emu: Emulator) -> None:
    """``PUT http://pek3a.127.0.0.1:PORT/b/k`` is routed by its path; Host and zone are ignored."""
    data = b"proxied"
    url = f"http://pek3a.127.0.0.1:{emu.port}{B}/abs%20key"
    payload = raw_request_bytes(
        "PUT", url, f"{B}/abs%20key", {"Content-Length": str(len(data)), "Connection": "close"}, data
    )
    assert raw_exchange(emu, payload).startswith(b"HTTP/1.1 201")
    got = raw_exchange(emu, raw_request_bytes("GET", url, f"{B}/abs%20key", {"Connection": "close"}))
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(data)


def test_restart_persistence(tmp_path: Path) -> None:
    """A new Emulator on the same root sees objects, metadata and unfinished uploads with their parts."""
    root = tmp_path / "root"
    part = b"p" * (4 << 20)
    with Emulator(root, buckets=["test-bucket"]) as first:
        bucket = sdk_bucket(first)
        bucket.put_object("kept", body=b"kept-bytes", x_qs_meta_data={"who": "me"})
        upload_id = bucket.initiate_multipart_upload("later")["upload_id"]
        bucket.upload_multipart("later", upload_id=upload_id, part_number="0", body=part, content_md5=md5_b64(part))
    with Emulator(root) as second:
        bucket = sdk_bucket(second)
        head = bucket.head_object("kept")
        assert (200, "me") == (head.status_code, head.headers["x-qs-meta-who"])
        assert b"kept-bytes" == bucket.get_object("kept").content
        assert [upload_id] == [u["upload_id"] for u in bucket.list_multipart_uploads()["uploads"]]
        parts = bucket.list_multipart("later", upload_id=upload_id)["object_parts"]
        assert [(0, len(part))] == [(p["part_number"], p["size"]) for p in parts]
        tail = b"tail"
        bucket.upload_multipart("later", upload_id=upload_id, part_number="1", body=tail, content_md5=md5_b64(tail))
        done = bucket.complete_multipart_upload(
            "later", upload_id=upload_id, object_parts=[{"part_number": 0}, {"part_number": 1}]
        )
        assert 201 == done.status_code
        assert part + tail == second.object_bytes("test-bucket", "later")


def test_leftover_temp_files_are_cleaned(tmp_path: Path) -> None:
    """Temp files and unreferenced data files (a crash mid-write) are removed when the store opens."""
    root = tmp_path / "root"
    with Emulator(root, buckets=["test-bucket"]) as first:
        sdk_bucket(first).put_object("x", body=b"1")
        obj_dir = first.object_path("test-bucket", "x").parent
    (obj_dir / ".tmp-crashed").write_bytes(b"junk")
    (obj_dir / "deadbeef.0000.data").write_bytes(b"orphan")
    with Emulator(root) as second:
        assert b"1" == sdk_bucket(second).get_object("x").content
    assert not (obj_dir / ".tmp-crashed").exists()
    assert not (obj_dir / "deadbeef.0000.data").exists()


def test_parallel_part_uploads(emu: Emulator) -> None:
    """Eight threads upload parts of one upload at once (one SDK client per thread); Complete assembles them."""
    key = "parallel"
    upload_id = sdk_bucket(emu).initiate_multipart_upload(key)["upload_id"]
    parts = [bytes([i]) * (4 << 20) for i in range(8)]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            out = sdk_bucket(emu).upload_multipart(
                key, upload_id=upload_id, part_number=str(n), body=parts[n], content_md5=md5_b64(parts[n])
            )
            assert 201 == out.status_code
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [] == errors
    out = sdk_bucket(emu).complete_multipart_upload(
        key, upload_id=upload_id, object_parts=[{"part_number": n} for n in range(8)]
    )
    assert 201 == out.status_code
    assert hashlib.md5(b"".join(parts)).hexdigest() == hashlib.md5(emu.object_bytes("test-bucket", key)).hexdigest()


def test_key_containing_scheme_like_text_is_not_absolute_form(emu: Emulator) -> None:
    """An origin-form path whose key contains ``://`` is still routed as ``/bucket/key``."""
    data = b"not-a-proxy"
    assert 201 == request(emu, "PUT", f"{B}/x://y", headers={"Content-MD5": md5_b64(data)}, body=data).status
    assert data == emu.object_bytes("test-bucket", "x://y")
