"""E2E on S3: the real daemon (``qsyncd run``) uploading to SeaweedFS through an ``[s3]`` config.

The promises of the QingStor e2e suite, on S3: files arrive byte-exact with the whole-file MD5 in
``x-amz-meta-md5chksum`` (also multipart ones); a second start sends nothing; with the ledger gone the
bucket's copies are recognised (HEAD / listing) instead of uploaded again; a multipart upload killed
with SIGKILL resumes through ListParts and sends only the missing parts; an outage of the store loses
nothing and every file arrives once it is back.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from qsynctest import SECRET, wait_for
from qsynctest.seaweed import Seaweed, write_s3_config

MiB = 1024 * 1024


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class World:
    """One test's watched tree, state dir, bucket and config on a SeaweedFS server."""

    def __init__(self, tmp: Path, server: Seaweed, bucket: str, factory: Any) -> None:
        self.tmp, self.server, self.bucket, self.factory = tmp, server, bucket, factory
        self.root, self.state, self.config_path = tmp / "watch", tmp / "state", tmp / "qsyncd.toml"
        self.root.mkdir()
        self.config()

    def config(self, **kw: Any) -> Path:
        return write_s3_config(
            self.config_path, server=self.server, bucket=self.bucket, watch=self.root, state=self.state, **kw
        )

    def daemon(self) -> Any:
        d = self.factory(self.config_path).start()
        d.wait_event("daemon_ready", timeout=60)
        d.wait_event("rescan_finished", timeout=60, pred=lambda e: e.get("reason") == "startup")
        return d

    def wait_uploaded(self, d: Any, keys: list[str], timeout: float = 90) -> None:
        def done() -> bool:
            seen = {e.get("key") for e in d.events("upload_finished") + d.events("upload_skipped")}
            return set(keys) <= seen

        wait_for(done, timeout=timeout, interval=0.2, what=f"{len(keys)} uploads\n{d.tail()}")

    def stored(self, key: str) -> tuple[bytes, dict[str, str]]:
        reply = self.server.client().get_object(Bucket=self.bucket, Key=key)
        try:
            return bytes(reply["Body"].read()), dict(reply.get("Metadata") or {})
        finally:
            reply["Body"].close()

    def assert_stored(self, key: str, data: bytes) -> None:
        got, meta = self.stored(key)
        assert md5(got) == md5(data) and got == data, f"{key}: the bucket's bytes differ from the file"
        assert base64.b64encode(hashlib.md5(data).digest()).decode() == meta.get("md5chksum"), meta


@pytest.fixture
def world(tmp_path: Path, seaweed: Seaweed, s3_bucket: str, daemon_factory: Any) -> World:
    return World(tmp_path, seaweed, s3_bucket, daemon_factory)


def _write(root: Path, rel: str, data: bytes) -> None:
    """Write ``data`` to ``root/rel`` in one rename, so the daemon sees a finished file."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / (path.name + ".tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def test_files_arrive_whole_and_a_second_start_sends_nothing(world: World) -> None:
    world.config(upload={"multipart_threshold": "8MiB", "part_size": "5MiB"})
    files = {f"d{i % 2}/small{i}.txt": os.urandom(300 + i) for i in range(6)}
    files["big/video.mp4"] = os.urandom(13 * MiB + 5)  # 3 parts
    d1 = world.daemon()
    for rel, data in files.items():
        _write(world.root, rel, data)
    world.wait_uploaded(d1, list(files))
    for rel, data in files.items():
        world.assert_stored(rel, data)
    big = next(e for e in d1.events("upload_finished") if e["key"] == "big/video.mp4")
    assert 3 == big["parts"]
    assert 0 == d1.stop()
    out = d1.tail(400)
    assert SECRET not in out

    d2 = world.daemon()  # the ledger knows every file: nothing is sent
    assert 0 == d2.events("rescan_finished")[0]["queued"]
    time.sleep(1.5)
    assert [] == d2.events("upload_started") == d2.events("upload_finished")
    assert 0 == d2.stop()

    shutil.rmtree(world.state)  # no ledger: the bucket's copies are recognised by their MD5, not re-sent
    d3 = world.daemon()
    world.wait_uploaded(d3, list(files))
    skipped = {e["key"]: e.get("reason") for e in d3.events("upload_skipped")}
    assert dict.fromkeys(files, "remote_match") == skipped, d3.tail()
    assert [] == d3.events("upload_finished")  # the multipart one too: its md5chksum matched
    d3.stop()


def test_multipart_resumes_after_sigkill_through_list_parts(world: World) -> None:
    world.config(upload={"multipart_threshold": "8MiB", "part_size": "5MiB", "max_bytes_per_second": "4MiB"})
    data = os.urandom(40 * MiB)  # 8 parts, about 10 s at 4 MiB/s
    d1 = world.daemon()
    _write(world.root, "huge.bin", data)
    client = world.server.client()

    def stored_parts() -> int:
        uploads = client.list_multipart_uploads(Bucket=world.bucket).get("Uploads") or []
        if not uploads:
            return 0
        parts = client.list_parts(Bucket=world.bucket, Key="huge.bin", UploadId=uploads[0]["UploadId"])
        return len(parts.get("Parts") or [])

    wait_for(lambda: stored_parts() >= 2, timeout=90, interval=0.2, what=f">= 2 parts stored\n{d1.tail()}")
    d1.kill9()
    time.sleep(1.0)  # the server drops the part bodies that were cut off
    before = stored_parts()
    assert 2 <= before < 8

    world.config(upload={"multipart_threshold": "8MiB", "part_size": "5MiB"})
    d2 = world.daemon()
    fin = d2.wait_event("upload_finished", timeout=90, pred=lambda e: e.get("key") == "huge.bin")[0]
    resumed = d2.wait_event("multipart_resumed", pred=lambda e: e.get("key") == "huge.bin")[0]
    assert before == resumed["parts_stored"]
    assert (8, before) == (fin["parts"], fin["parts_resumed"])
    assert [] == d2.events("multipart_started")  # no new upload was begun
    world.assert_stored("huge.bin", data)
    assert [] == (client.list_multipart_uploads(Bucket=world.bucket).get("Uploads") or [])
    d2.stop()


def test_store_outage_then_recovery(tmp_path: Path, daemon_factory: Any) -> None:
    """SeaweedFS stopped: remote_unreachable, nothing lost; started again on the same ports: all files arrive."""
    with Seaweed(tmp_path / "weed") as server:
        (tmp_path / "w").mkdir()
        world = World(tmp_path / "w", server, server.create_bucket(), daemon_factory)
        d = world.daemon()
        _write(world.root, "before.txt", b"before the outage")
        world.wait_uploaded(d, ["before.txt"])
        server.stop()
        during = {f"during/{i}.bin": os.urandom(500 + i) for i in range(8)}
        for rel, data in during.items():
            _write(world.root, rel, data)
        d.wait_event("remote_unreachable", timeout=60)
        server.start()
        world.wait_uploaded(d, list(during), timeout=120)
        d.wait_event("remote_recovered", timeout=30)
        for rel, data in during.items():
            world.assert_stored(rel, data)
        world.assert_stored("before.txt", b"before the outage")
        assert [] == d.events("file_skipped")
        d.stop()
