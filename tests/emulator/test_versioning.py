"""Copy, move, part copy and bucket versioning over real HTTP: the qingstor-sdk where it has the call,
signed by hand where it has none.

qingstor-sdk 2.6.0 has ``put_object(x_qs_copy_source=..., x_qs_move_source=...)`` and
``upload_multipart(x_qs_copy_source=..., x_qs_copy_range=...)``, but no versioning call at all (no
``put_bucket_versioning``, ``list_object_versions`` or ``version_id`` parameter), so those requests
are signed by hand (``emulator_helpers.request``) with the sub-resources Go SDK v4 signs.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any
from urllib.parse import quote

import pytest
from emulator_helpers import BUCKET, Reply, request, sdk_bucket
from qsynctest import md5_b64

from qsyncd.emulator import Emulator

P = f"/{BUCKET}"


def set_versioning(emu: Emulator, status: str) -> Reply:
    body = json.dumps({"status": status}).encode()
    return request(emu, "PUT", P, "versioning", {"Content-Type": "application/json"}, body)


def versions(emu: Emulator, query: str = "") -> dict[str, Any]:
    reply = request(emu, "GET", P, "versions" + ("&" + query if query else ""))
    assert 200 == reply.status, reply.body
    assert "application/json" == reply.header("Content-Type")
    doc: dict[str, Any] = json.loads(reply.body)
    return doc


def get_version(emu: Emulator, key: str, version_id: str, method: str = "GET") -> Reply:
    return request(emu, method, f"{P}/{quote(key)}", f"version_id={version_id}")


def test_copy_and_move_with_the_sdk(emu: Emulator) -> None:
    """put_object with x_qs_copy_source copies (source kept), with x_qs_move_source renames (source gone);
    both answer 201 with no body and keep the bytes, MIME type and metadata."""
    bucket = sdk_bucket(emu)
    data = os.urandom(300_000)
    assert (
        201
        == bucket.put_object(
            "a b/src.log", body=data, content_type="text/plain", x_qs_meta_data={"origin": "test"}
        ).status_code
    )
    copied = bucket.put_object("copy.log", x_qs_copy_source=f"/{BUCKET}/a b/src.log")
    assert 201 == copied.status_code
    assert b"" == copied.content
    moved = bucket.put_object("moved.log", x_qs_move_source=f"/{BUCKET}/a b/src.log")
    assert 201 == moved.status_code
    assert 404 == bucket.head_object("a b/src.log").status_code
    for key in ("copy.log", "moved.log"):
        got = bucket.get_object(key)
        assert data == got.content
        assert "text/plain" == got.headers["Content-Type"]
        assert "test" == got.headers["x-qs-meta-origin"]
        assert f'"{hashlib.md5(data).hexdigest()}"' == got.headers["ETag"]
    assert 404 == bucket.put_object("x", x_qs_move_source=f"/{BUCKET}/a b/src.log").status_code


def test_copy_and_move_conditions_etag_and_size_limit(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy is conditional on ``x-qs-copy-source-if-match``, a move on ``x-qs-move-source-if-match``
    (docs ``copy.md``, ``move.md``): 412 ``precondition_failed`` and nothing written; both answer 201 with
    the new object's ETag; a copy (not a move) of a source over the 5 GiB limit is 400 ``entity_too_large``."""
    data = b"conditional source"
    etag, wrong = f'"{hashlib.md5(data).hexdigest()}"', '"0123456789abcdef0123456789abcdef"'
    assert 201 == request(emu, "PUT", f"{P}/src", "", {"Content-Type": "text/plain"}, data).status
    for header, target in (("x-qs-copy-source", "copy"), ("x-qs-move-source", "moved")):
        refused = request(emu, "PUT", f"{P}/{target}", "", {header: f"{P}/src", f"{header}-if-match": wrong})
        assert 412 == refused.status and "precondition_failed" == json.loads(refused.body)["code"]
        assert 404 == request(emu, "HEAD", f"{P}/{target}").status
        done = request(emu, "PUT", f"{P}/{target}", "", {header: f"{P}/src", f"{header}-if-match": etag})
        assert 201 == done.status and etag == done.header("ETag")
    assert 201 == request(emu, "PUT", f"{P}/src", "", {}, data).status
    monkeypatch.setattr("qsyncd.emulator.operations.objects.MAX_OBJECT_SIZE", len(data) - 1)
    too_big = request(emu, "PUT", f"{P}/big-copy", "", {"x-qs-copy-source": f"{P}/src"})
    assert 400 == too_big.status and "entity_too_large" == json.loads(too_big.body)["code"]
    assert 201 == request(emu, "PUT", f"{P}/big-move", "", {"x-qs-move-source": f"{P}/src"}).status


def test_part_copy_with_the_sdk(emu: Emulator) -> None:
    """upload_multipart with x_qs_copy_source and x_qs_copy_range copies byte ranges of an object into
    parts: 201 with the part's ETag and x-qs-content-copy-range; Complete gives the same bytes."""
    bucket = sdk_bucket(emu)
    data = os.urandom(9 << 20)
    bucket.put_object("big", body=data, content_md5=md5_b64(data))
    upload_id = bucket.initiate_multipart_upload("big.copy")["upload_id"]
    cut = 5 << 20
    ranges = [(0, cut - 1), (cut, len(data) - 1)]
    for number, (start, end) in enumerate(ranges):
        out = bucket.upload_multipart(
            "big.copy",
            upload_id=upload_id,
            part_number=str(number),
            x_qs_copy_source=f"/{BUCKET}/big",
            x_qs_copy_range=f"bytes={start}-{end}",
        )
        assert 201 == out.status_code, out.content
        assert f'"{hashlib.md5(data[start : end + 1]).hexdigest()}"' == out.headers["ETag"]
        assert f"bytes {start}-{end}/{len(data)}" == out.headers["x-qs-content-copy-range"]
    listed = bucket.list_multipart("big.copy", upload_id=upload_id)
    assert [cut, len(data) - cut] == [p["size"] for p in listed["object_parts"]]
    done = bucket.complete_multipart_upload(
        "big.copy", upload_id=upload_id, object_parts=[{"part_number": 0}, {"part_number": 1}]
    )
    assert 201 == done.status_code
    assert data == bucket.get_object("big.copy").content
    bad = bucket.upload_multipart(
        "big.copy2",
        upload_id=bucket.initiate_multipart_upload("big.copy2")["upload_id"],
        part_number="0",
        x_qs_copy_source=f"/{BUCKET}/big",
        x_qs_copy_range=f"bytes={len(data)}-",
    )
    assert 416 == bad.status_code


def test_bucket_versioning_state(emu: Emulator) -> None:
    """GET ?versioning says DISABLED, then ENABLED, then SUSPENDED; a bad status is 400."""
    state = request(emu, "GET", P, "versioning")
    assert 200 == state.status
    assert {"status": "DISABLED"} == json.loads(state.body)
    assert 200 == set_versioning(emu, "ENABLED").status
    assert {"status": "ENABLED"} == json.loads(request(emu, "GET", P, "versioning").body)
    assert 200 == set_versioning(emu, "SUSPENDED").status
    assert {"status": "SUSPENDED"} == json.loads(request(emu, "GET", P, "versioning").body)
    bad = set_versioning(emu, "DISABLED")
    assert 400 == bad.status
    assert "invalid_argument" == json.loads(bad.body)["code"]


def test_versions_kept_listed_read_and_restored(emu: Emulator) -> None:
    """With versioning on: every PUT (SDK) answers its x-qs-version-id; older versions stay readable
    with version_id (GET and HEAD); the listing has them newest first; copying a version with
    ``?version_id=`` in the copy source restores it as a new current version."""
    bucket = sdk_bucket(emu)
    bucket.put_object("f.txt", body=b"before versioning")
    assert "x-qs-version-id" not in bucket.head_object("f.txt").headers  # versioning off: no ids
    assert 200 == set_versioning(emu, "ENABLED").status
    ids = []
    for body in (b"one", b"two", b"three"):
        out = bucket.put_object("f.txt", body=body)
        assert 201 == out.status_code
        ids.append(out.headers["x-qs-version-id"])
    assert len(set(ids)) == 3
    assert b"three" == bucket.get_object("f.txt").content
    assert ids[2] == bucket.head_object("f.txt").headers["x-qs-version-id"]
    first = get_version(emu, "f.txt", ids[0])
    assert 200 == first.status
    assert b"one" == first.body
    assert ids[0] == first.header("x-qs-version-id")
    assert b"before versioning" == get_version(emu, "f.txt", "null").body
    head = get_version(emu, "f.txt", ids[1], "HEAD")
    assert 200 == head.status
    assert "3" == head.header("Content-Length")
    assert f'"{hashlib.md5(b"two").hexdigest()}"' == head.header("ETag")
    assert 404 == get_version(emu, "f.txt", "0000000000000001").status

    doc = versions(emu)
    assert [ids[2], ids[1], ids[0], "null"] == [k["version_id"] for k in doc["keys"]]
    assert [True, False, False, False] == [k["is_latest"] for k in doc["keys"]]
    assert hashlib.md5(b"one").hexdigest() == doc["keys"][2]["etag"]
    assert not doc["has_more"]
    assert ["f.txt"] == [k["key"] for k in bucket.list_objects()["keys"]]  # ListObjects: current only

    restored = bucket.put_object("f.txt", x_qs_copy_source=f"/{BUCKET}/f.txt?version_id={ids[0]}")
    assert 201 == restored.status_code
    assert b"one" == bucket.get_object("f.txt").content
    assert restored.headers["x-qs-version-id"] not in ids


def test_delete_marker_and_version_delete(emu: Emulator) -> None:
    """A plain DELETE of a versioned object adds a delete marker (204, x-qs-delete-marker); the object
    is then 404 but its versions remain; deleting the marker by version_id brings it back; deleting a
    version by id removes it for good; GET of a marker's version id is 405."""
    bucket = sdk_bucket(emu)
    assert 200 == set_versioning(emu, "ENABLED").status
    v1 = bucket.put_object("k", body=b"v1").headers["x-qs-version-id"]
    v2 = bucket.put_object("k", body=b"v2").headers["x-qs-version-id"]
    gone = bucket.delete_object("k")
    assert 204 == gone.status_code
    assert "true" == gone.headers["x-qs-delete-marker"]
    marker = gone.headers["x-qs-version-id"]
    assert 404 == bucket.head_object("k").status_code
    hidden = request(emu, "GET", f"{P}/k")
    assert 404 == hidden.status
    assert "true" == hidden.header("x-qs-delete-marker")
    assert [] == bucket.list_objects()["keys"]
    doc = versions(emu)
    assert [(marker, True, True), (v2, False, False), (v1, False, False)] == [
        (k["version_id"], k["delete_marker"], k["is_latest"]) for k in doc["keys"]
    ]
    assert 405 == get_version(emu, "k", marker).status
    assert b"v1" == get_version(emu, "k", v1).body
    assert 409 == request(emu, "DELETE", P).status  # versions keep the bucket from being deleted

    undo = request(emu, "DELETE", f"{P}/k", f"version_id={marker}")
    assert 204 == undo.status
    assert b"v2" == bucket.get_object("k").content
    assert 204 == request(emu, "DELETE", f"{P}/k", f"version_id={v2}").status
    assert b"v1" == bucket.get_object("k").content  # the older version becomes current
    assert [v1] == [k["version_id"] for k in versions(emu)["keys"]]
    assert 204 == request(emu, "DELETE", f"{P}/k", f"version_id={v1}").status
    assert [] == versions(emu)["keys"]
    assert 204 == request(emu, "DELETE", P).status


def test_multipart_and_move_in_a_versioned_bucket(emu: Emulator) -> None:
    """Complete and copy answer a version id; a move leaves a delete marker on its source."""
    bucket = sdk_bucket(emu)
    assert 200 == set_versioning(emu, "ENABLED").status
    upload_id = bucket.initiate_multipart_upload("mp")["upload_id"]
    bucket.upload_multipart("mp", upload_id=upload_id, part_number="0", body=b"abc", content_md5=md5_b64(b"abc"))
    done = bucket.complete_multipart_upload("mp", upload_id=upload_id, object_parts=[{"part_number": 0}])
    assert 201 == done.status_code
    vid = done.headers["x-qs-version-id"]
    moved = bucket.put_object("mp.moved", x_qs_move_source=f"/{BUCKET}/mp")
    assert 201 == moved.status_code
    assert moved.headers["x-qs-version-id"]
    entries = {(k["key"], k["delete_marker"], k["is_latest"]) for k in versions(emu)["keys"]}
    assert {("mp", True, True), ("mp", False, False), ("mp.moved", False, True)} == entries
    assert b"abc" == get_version(emu, "mp", vid).body


def test_suspended_versioning_keeps_one_null_version(emu: Emulator) -> None:
    """Suspended: a PUT replaces the null version (answering ``null``) and keeps the enabled-time versions."""
    bucket = sdk_bucket(emu)
    assert 200 == set_versioning(emu, "ENABLED").status
    kept = bucket.put_object("s", body=b"kept").headers["x-qs-version-id"]
    assert 200 == set_versioning(emu, "SUSPENDED").status
    assert "null" == bucket.put_object("s", body=b"n1").headers["x-qs-version-id"]
    assert "null" == bucket.put_object("s", body=b"n2").headers["x-qs-version-id"]
    assert [("null", True), (kept, False)] == [(k["version_id"], k["is_latest"]) for k in versions(emu)["keys"]]
    assert b"n2" == get_version(emu, "s", "null").body
    assert b"kept" == get_version(emu, "s", kept).body


def test_list_versions_paging(emu: Emulator) -> None:
    """limit, next_key_marker/next_version_id_marker paging, prefix and delimiter."""
    bucket = sdk_bucket(emu)
    assert 200 == set_versioning(emu, "ENABLED").status
    expected = []
    for key in ("a", "b", "d/x", "d/y"):
        ids = [bucket.put_object(key, body=str(i).encode()).headers["x-qs-version-id"] for i in range(3)]
        expected += [(key, v) for v in reversed(ids)]
    got: list[tuple[str, str]] = []
    query = "limit=5"
    while True:
        doc = versions(emu, query)
        got += [(k["key"], k["version_id"]) for k in doc["keys"]]
        assert len(doc["keys"]) <= 5
        if not doc["has_more"]:
            break
        query = f"limit=5&key_marker={quote(doc['next_key_marker'])}&version_id_marker={doc['next_version_id_marker']}"
    assert expected == got
    doc = versions(emu, "delimiter=/")
    assert ["d/"] == doc["common_prefixes"]
    assert {"a", "b"} == {k["key"] for k in doc["keys"]}
    assert {"d/x", "d/y"} == {k["key"] for k in versions(emu, "prefix=d/")["keys"]}
