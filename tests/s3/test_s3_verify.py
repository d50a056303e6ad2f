"""``qsyncd verify`` and the service's periodic verify on S3 (SeaweedFS), multipart objects included.

On S3 a multipart object's listed ETag is ``md5(part MD5s)-N``, not the file's MD5: the listing's entry
for it is completed with one HEAD, which reads the whole-file MD5 from ``x-amz-meta-md5chksum``
(``remote.s3.listed_md5``; tests/s3/test_s3_remote.py counts those HEADs). The scenario is the QingStor
one of tests/e2e/test_e2e_verify.py: an object deleted and one corrupted behind qsyncd's back (with
botocore, as another tool would) are found, ``--repair`` mends them, verify then exits 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from qsynctest import wait_for
from qsynctest.seaweed import Seaweed, write_s3_config

MiB = 1024 * 1024
MULTIPART = {"multipart_threshold": "8MiB", "part_size": "5MiB"}


def qsyncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qsyncd", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def stored(server: Seaweed, bucket: str, key: str) -> bytes:
    body = server.client().get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return bytes(body.read())
    finally:
        body.close()


def foreign_multipart(server: Seaweed, bucket: str, key: str, data: bytes) -> None:
    """Overwrite ``key`` with a multipart upload that carries no md5chksum (another tool's)."""
    client = server.client()
    up = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    chunks = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    etags = [
        client.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n + 1, Body=c)["ETag"]
        for n, c in enumerate(chunks)
    ]
    parts = [{"ETag": e, "PartNumber": n + 1} for n, e in enumerate(etags)]
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts})


def test_verify_on_s3_finds_a_deleted_and_corrupted_objects_and_repair_mends_them(
    tmp_path: Path, seaweed: Seaweed, s3_bucket: str
) -> None:
    root = tmp_path / "w"
    files = {
        "a.txt": b"alpha " * 100,
        "sub/b.txt": b"bravo " * 100,
        "big/intact.bin": os.urandom(11 * MiB),  # multipart (3 parts): listed as <hex>-3, HEAD tells its MD5
        "big/spoilt.bin": os.urandom(11 * MiB),
    }
    write_tree(root, files)
    config = write_s3_config(
        tmp_path / "qsyncd.toml",
        server=seaweed,
        bucket=s3_bucket,
        watch=root,
        state=tmp_path / "state",
        prefix="bk/",
        upload=MULTIPART,
    )
    synced = qsyncd(config, "sync", "--no-progress")
    assert 0 == synced.returncode, synced.stderr
    raw = seaweed.client().head_object(Bucket=s3_bucket, Key="bk/big/intact.bin")
    assert raw["ETag"].strip('"').endswith("-3")  # the store's own ETag is not the file's MD5
    first = qsyncd(config, "verify")
    assert 0 == first.returncode, first.stdout + first.stderr
    assert "verify: ok: 4 files on disk, 4 objects" in first.stdout

    client = seaweed.client()
    client.delete_object(Bucket=s3_bucket, Key="bk/a.txt")
    client.put_object(Bucket=s3_bucket, Key="bk/sub/b.txt", Body=b"BRAVO " * 100)  # same size, other bytes
    foreign_multipart(seaweed, s3_bucket, "bk/big/spoilt.bin", os.urandom(11 * MiB))  # same size, other bytes
    client.put_object(Bucket=s3_bucket, Key="bk/stray.txt", Body=b"not from this machine")

    found = qsyncd(config, "verify", "--json")
    assert 1 == found.returncode, found.stdout + found.stderr
    data = json.loads(found.stdout)
    assert [("bk/a.txt", "deleted_from_bucket")] == [(f["key"], f["reason"]) for f in data["missing"]]
    assert [("bk/big/spoilt.bin", "md5_unknown"), ("bk/sub/b.txt", "content_differs")] == sorted(
        (f["key"], f["reason"]) for f in data["changed"]
    )
    assert [("bk/stray.txt", "not_on_disk")] == [(f["key"], f["reason"]) for f in data["extra"]]

    repaired = qsyncd(config, "verify", "--repair", "--json")
    assert 0 == repaired.returncode, repaired.stdout + repaired.stderr
    after = json.loads(repaired.stdout)
    assert after["ok"] and [] == after["missing"] and [] == after["changed"]
    assert sorted(str(root / r) for r in ("a.txt", "big/spoilt.bin", "sub/b.txt")) == after["repaired"]
    for rel, content in files.items():
        assert content == stored(seaweed, s3_bucket, "bk/" + rel), rel

    again = qsyncd(config, "verify")
    assert 0 == again.returncode, again.stdout + again.stderr
    assert "0 missing, 0 changed, 1 extra" in again.stdout


def test_the_service_uploads_a_multipart_object_deleted_behind_its_back_again(
    tmp_path: Path, seaweed: Seaweed, s3_bucket: str, daemon_factory: Any
) -> None:
    root = tmp_path / "w"
    files = {"small.txt": b"small", "big.bin": os.urandom(11 * MiB)}
    write_tree(root, files)
    config = write_s3_config(
        tmp_path / "qsyncd.toml",
        server=seaweed,
        bucket=s3_bucket,
        watch=root,
        state=tmp_path / "state",
        upload=MULTIPART,
        extra="[verify]\ninterval_seconds = 1\n",
    )
    d = daemon_factory(config).start()
    d.wait_event("daemon_ready", timeout=60)

    def uploads(key: str) -> int:
        return len([e for e in d.events("upload_finished") if e.get("key") == key])

    wait_for(lambda: uploads("big.bin") == 1 and uploads("small.txt") == 1, timeout=90, what=d.tail())
    d.wait_event("verify_finished", timeout=30, pred=lambda e: e.get("checked") == 2)
    assert [] == d.events("object_changed")  # the multipart object's listed <hex>-2 was not taken for its MD5
    seaweed.client().delete_object(Bucket=s3_bucket, Key="big.bin")
    missing = d.wait_event("object_missing", timeout=30)[0]
    assert ("big.bin", "deleted_from_bucket") == (missing["key"], missing["reason"])
    wait_for(lambda: uploads("big.bin") == 2, timeout=60, what=d.tail())
    assert files["big.bin"] == stored(seaweed, s3_bucket, "big.bin")
    assert 1 == uploads("small.txt")  # nothing else was sent again
    n = len([e for e in d.events("verify_finished") if e.get("checked") == 2])
    d.wait_event("verify_finished", timeout=30, count=n + 1, pred=lambda e: e.get("checked") == 2)  # all again
    assert [] == d.events("object_changed") and 1 == len(d.events("object_missing"))
    assert 0 == d.stop()
