"""The plain qingstor-sdk (2.6.0) against the emulator: every operation it needs, with exact codes."""

from __future__ import annotations

import hashlib
import os

from emulator_helpers import BUCKET, sdk_bucket, sdk_service
from qsynctest import md5_b64

from qsyncd.emulator import Emulator


def test_seed_example_multipart_roundtrip(emu: Emulator) -> None:
    """Initiate, 3 parts (5, 4, 3 MiB) numbered "0".."2" with MD5, list, complete; bytes match; abort twice."""
    bucket = sdk_bucket(emu)
    key = "seed/multipart object.bin"
    init = bucket.initiate_multipart_upload(key)
    assert 200 == init.status_code
    assert "application/json" == init.headers["Content-Type"]
    upload_id = init["upload_id"]
    assert {"bucket": BUCKET, "key": key, "upload_id": upload_id} == dict(init)
    parts = [os.urandom(5 << 20), os.urandom(4 << 20), os.urandom(3 << 20)]
    for number, data in enumerate(parts):
        out = bucket.upload_multipart(
            key, upload_id=upload_id, part_number=str(number), body=data, content_md5=md5_b64(data)
        )
        assert 201 == out.status_code
        assert f'"{hashlib.md5(data).hexdigest()}"' == out.headers["ETag"]
    listed = bucket.list_multipart(key, upload_id=upload_id)
    assert 200 == listed.status_code
    assert 3 == listed["count"]
    assert [0, 1, 2] == [p["part_number"] for p in listed["object_parts"]]
    assert [len(p) for p in parts] == [p["size"] for p in listed["object_parts"]]
    assert [hashlib.md5(p).hexdigest() for p in parts] == [p["etag"] for p in listed["object_parts"]]
    done = bucket.complete_multipart_upload(
        key, upload_id=upload_id, object_parts=[{"part_number": n} for n in range(3)]
    )
    assert 201 == done.status_code
    whole = b"".join(parts)
    got = bucket.get_object(key)
    assert 200 == got.status_code
    assert whole == got.content
    assert hashlib.md5(whole).hexdigest() == hashlib.md5(emu.object_bytes(BUCKET, key)).hexdigest()
    head = bucket.head_object(key)
    assert str(len(whole)) == head.headers["Content-Length"]
    assert f'"{hashlib.md5(whole).hexdigest()}"' == head.headers["ETag"]  # no ETag header -> md5 of the bytes
    assert 404 == bucket.list_multipart(key, upload_id=upload_id).status_code  # upload is gone

    second = bucket.initiate_multipart_upload(key + ".2")["upload_id"]
    assert (
        201
        == bucket.upload_multipart(
            key + ".2", upload_id=second, part_number="0", body=b"x" * 10, content_md5=md5_b64(b"x" * 10)
        ).status_code
    )
    assert 204 == bucket.abort_multipart_upload(key + ".2", upload_id=second).status_code
    assert 204 == bucket.abort_multipart_upload(key + ".2", upload_id=second).status_code
    assert 404 == bucket.list_multipart(key + ".2", upload_id=second).status_code
    assert 404 == bucket.head_object(key + ".2").status_code


def test_complete_with_etag_header_stores_it(emu: Emulator) -> None:
    """The ETag request header of Complete becomes the object's ETag (quotes stripped, unverified)."""
    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload("e")["upload_id"]
    bucket.upload_multipart("e", upload_id=upload_id, part_number="0", body=b"abc", content_md5=md5_b64(b"abc"))
    out = bucket.complete_multipart_upload(
        "e", upload_id=upload_id, etag='"4072783b8efb99a9e5817067d68f61c6"', object_parts=[{"part_number": 0}]
    )
    assert 201 == out.status_code
    assert '"4072783b8efb99a9e5817067d68f61c6"' == bucket.head_object("e").headers["ETag"]
    keys = bucket.list_objects()["keys"]
    assert '"4072783b8efb99a9e5817067d68f61c6"' == keys[0]["etag"]


def test_complete_rejects_small_middle_part(emu: Emulator) -> None:
    """A non-last part under 4 MiB makes Complete fail with 400 entity_too_small; the last may be small."""
    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload("s")["upload_id"]
    sizes = [4 << 20, 1 << 20, 10]
    for n, size in enumerate(sizes):
        data = b"z" * size
        bucket.upload_multipart("s", upload_id=upload_id, part_number=str(n), body=data, content_md5=md5_b64(data))
    bad = bucket.complete_multipart_upload(
        "s", upload_id=upload_id, object_parts=[{"part_number": n} for n in range(3)]
    )
    assert (400, "entity_too_small") == (bad.status_code, bad["code"])
    ok = bucket.complete_multipart_upload(
        "s", upload_id=upload_id, object_parts=[{"part_number": 0}, {"part_number": 2}]
    )
    assert 201 == ok.status_code
    assert (4 << 20) + 10 == int(bucket.head_object("s").headers["Content-Length"])


def test_complete_rejects_unknown_and_unordered_parts(emu: Emulator) -> None:
    """Complete listing a part never uploaded, or parts out of order, is 400 invalid_request."""
    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload("o")["upload_id"]
    for n in range(2):
        data = bytes([n]) * (4 << 20)
        bucket.upload_multipart("o", upload_id=upload_id, part_number=str(n), body=data, content_md5=md5_b64(data))
    missing = bucket.complete_multipart_upload(
        "o", upload_id=upload_id, object_parts=[{"part_number": 0}, {"part_number": 7}]
    )
    assert (400, "invalid_request") == (missing.status_code, missing["code"])
    unordered = bucket.complete_multipart_upload(
        "o", upload_id=upload_id, object_parts=[{"part_number": 1}, {"part_number": 0}]
    )
    assert (400, "invalid_request") == (unordered.status_code, unordered["code"])
    assert 404 == bucket.head_object("o").status_code


def test_unknown_upload_id_is_404(emu: Emulator) -> None:
    """Upload, list and complete with an unknown upload id answer 404 upload_not_exists."""
    bucket = sdk_bucket(emu)
    up = bucket.upload_multipart("k", upload_id="nope", part_number="0", body=b"a", content_md5=md5_b64(b"a"))
    assert (404, "upload_not_exists") == (up.status_code, up["code"])
    ls = bucket.list_multipart("k", upload_id="nope")
    assert (404, "upload_not_exists") == (ls.status_code, ls["code"])
    co = bucket.complete_multipart_upload("k", upload_id="nope", object_parts=[{"part_number": 0}])
    assert (404, "upload_not_exists") == (co.status_code, co["code"])


def test_part_number_out_of_range(emu: Emulator) -> None:
    """Part number 10001 is 400 invalid_argument; 10000 is accepted."""
    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload("p")["upload_id"]
    bad = bucket.upload_multipart("p", upload_id=upload_id, part_number="10001", body=b"a", content_md5=md5_b64(b"a"))
    assert (400, "invalid_argument") == (bad.status_code, bad["code"])
    assert (
        201
        == bucket.upload_multipart(
            "p", upload_id=upload_id, part_number="10000", body=b"a", content_md5=md5_b64(b"a")
        ).status_code
    )


def test_bucket_operations(emu: Emulator) -> None:
    """Put/Head/Delete bucket, ?stats and ListBuckets with their exact codes and fields."""
    service = sdk_service(emu)
    new = service.Bucket("another-bucket", "")
    assert 404 == new.head().status_code
    assert 201 == new.put().status_code
    again = new.put()
    assert (409, "bucket_already_exists") == (again.status_code, again["code"])
    assert 200 == new.head().status_code
    listing = service.list_buckets()
    assert 200 == listing.status_code
    assert {"another-bucket", BUCKET} == {b["name"] for b in listing["buckets"]}
    assert 2 == listing["count"]
    new.put_object("x", body=b"12345")
    stats = new.get_statistics()
    assert (200, "active", 1, 5) == (stats.status_code, stats["status"], stats["count"], stats["size"])
    full = new.delete()
    assert (409, "bucket_not_empty") == (full.status_code, full["code"])
    assert 204 == new.delete_object("x").status_code
    assert 204 == new.delete().status_code
    assert 404 == new.head().status_code
    bad = service.Bucket("Bad_Name", "").put()
    assert (400, "invalid_bucket_name") == (bad.status_code, bad["code"])


def test_list_objects_prefix_delimiter_paging(emu: Emulator) -> None:
    """ListObjects honours prefix, delimiter, marker and limit; has_more is always present."""
    bucket = sdk_bucket(emu)
    for key in ["a/1", "a/2", "b/1", "c", "d"]:
        assert 201 == bucket.put_object(key, body=b"v").status_code
    top = bucket.list_objects(delimiter="/")
    assert (["c", "d"], ["a/", "b/"], False) == (
        [k["key"] for k in top["keys"]],
        top["common_prefixes"],
        top["has_more"],
    )
    page1 = bucket.list_objects(delimiter="/", limit="2")
    assert (["a/", "b/"], True, "b/") == (page1["common_prefixes"], page1["has_more"], page1["next_marker"])
    page2 = bucket.list_objects(delimiter="/", limit="2", marker=page1["next_marker"])
    assert (["c", "d"], [], False) == ([k["key"] for k in page2["keys"]], page2["common_prefixes"], page2["has_more"])
    pre = bucket.list_objects(prefix="a/")
    assert ["a/1", "a/2"] == [k["key"] for k in pre["keys"]]
    entry = pre["keys"][0]
    assert {"key", "size", "etag", "mime_type", "created", "modified", "encrypted", "storage_class"} <= set(entry)
    assert isinstance(entry["modified"], int) and entry["etag"].startswith('"')
    assert 1000 == bucket.list_objects(limit="5000")["limit"]
    assert 100 == bucket.list_objects()["limit"]


def test_delete_multiple_objects(emu: Emulator) -> None:
    """DeleteMultipleObjects deletes the keys, accepts quiet null, and omits deleted when quiet."""
    bucket = sdk_bucket(emu)
    for key in ["x1", "x2", "x3"]:
        bucket.put_object(key, body=b"v")
    out = bucket.delete_multiple_objects(content_md5="ignored", objects=[{"key": "x1"}, {"key": "nope"}])
    assert 200 == out.status_code
    assert [{"key": "x1"}, {"key": "nope"}] == out["deleted"]
    quiet = bucket.delete_multiple_objects(content_md5="ignored", objects=[{"key": "x2"}], quiet=True)
    assert 200 == quiet.status_code and "deleted" not in quiet
    assert ["x3"] == [k["key"] for k in bucket.list_objects()["keys"]]


def test_list_multipart_uploads_paging(emu: Emulator) -> None:
    """ListMultipartUploads pages with key_marker/upload_id_marker and filters by prefix."""
    bucket = sdk_bucket(emu)
    ids = {}
    for key in ["u/a", "u/b", "u/b", "v/c"]:
        ids.setdefault(key, []).append(bucket.initiate_multipart_upload(key)["upload_id"])
    first = bucket.list_multipart_uploads(limit="2")
    assert (True, 2) == (first["has_more"], len(first["uploads"]))
    second = bucket.list_multipart_uploads(
        limit="2", key_marker=first["next_key_marker"], upload_id_marker=first["next_upload_id_marker"]
    )
    assert False is second["has_more"]
    seen = [(u["key"], u["upload_id"]) for u in first["uploads"] + second["uploads"]]
    assert sorted((k, i) for k, v in ids.items() for i in v) == seen
    only_u = bucket.list_multipart_uploads(prefix="u/")
    assert ["u/a", "u/b", "u/b"] == [u["key"] for u in only_u["uploads"]]


def test_put_object_metadata_and_storage_class(emu: Emulator) -> None:
    """Metadata and storage class come back from HEAD; a bad class or too much metadata is refused."""
    bucket = sdk_bucket(emu)
    out = bucket.put_object(
        "m",
        body=b"data",
        content_type="text/x-test",
        x_qs_meta_data={"color": "blue"},
        x_qs_storage_class="STANDARD_IA",
    )
    assert 201 == out.status_code
    head = bucket.head_object("m")
    assert ("text/x-test", "blue", "STANDARD_IA") == (
        head.headers["Content-Type"],
        head.headers["x-qs-meta-color"],
        head.headers["x-qs-storage-class"],
    )
    big = bucket.put_object("m2", body=b"d", x_qs_meta_data={"k": "v" * 3000})
    assert (400, "metadata_too_large") == (big.status_code, big["code"])
    init = bucket.initiate_multipart_upload("m3", x_qs_meta_data={"a": "b"})
    assert 200 == init.status_code


def test_list_multipart_paging(emu: Emulator) -> None:
    """ListMultipart pages with an exclusive part_number_marker and limit; count is the upload's total."""
    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload("lp")["upload_id"]
    for n in [0, 2, 5, 9]:
        bucket.upload_multipart("lp", upload_id=upload_id, part_number=str(n), body=b"d", content_md5=md5_b64(b"d"))
    first = bucket.list_multipart("lp", upload_id=upload_id, limit="2")
    assert (4, [0, 2]) == (first["count"], [p["part_number"] for p in first["object_parts"]])
    rest = bucket.list_multipart("lp", upload_id=upload_id, limit="2", part_number_marker="2")
    assert [5, 9] == [p["part_number"] for p in rest["object_parts"]]


def test_reupload_part_overwrites(emu: Emulator) -> None:
    """Uploading the same part number again replaces the part."""
    bucket = sdk_bucket(emu)
    upload_id = bucket.initiate_multipart_upload("ow")["upload_id"]
    for data in (b"first", b"second!"):
        bucket.upload_multipart("ow", upload_id=upload_id, part_number="0", body=data, content_md5=md5_b64(data))
    parts = bucket.list_multipart("ow", upload_id=upload_id)["object_parts"]
    assert [(0, 7, hashlib.md5(b"second!").hexdigest())] == [(p["part_number"], p["size"], p["etag"]) for p in parts]
    bucket.complete_multipart_upload("ow", upload_id=upload_id, object_parts=[{"part_number": 0}])
    assert b"second!" == bucket.get_object("ow").content
