"""Fixtures of tests/remote: ``target`` (the emulator or live QingStor, see remote_support) and ``store``
(each store of the ``Remote`` contract suite, test_contract.py)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from qsynctest.seaweed import s3_bucket, seaweed  # noqa: F401  (fixtures of the seaweedfs store)
from remote_support import EMU_AKID, EMU_BUCKET, EMU_SECRET, Store, Target, live_settings, put_versioning

from qsyncd.remote.qingstor import QingStorRemote


def _sdk_bucket(target: Target) -> Any:
    """The target's bucket through the QingStor SDK: Remote has no delete (qsyncd never deletes)."""
    from qingstor.sdk.config import Config
    from qingstor.sdk.service.qingstor import QingStor

    from qsyncd.remote.qingstor import parse_endpoint

    ep = parse_endpoint(target.endpoint)
    config = Config(target.access_key_id, target.secret_access_key)
    config.host, config.port, config.protocol = ep.host, ep.port, ep.scheme
    return QingStor(config).Bucket(target.bucket, target.zone)


def _cleanup_live(target: Target) -> None:
    """Abort uploads and delete objects under the test prefix (live QingStor only)."""
    remote = target.remote()
    for upload in remote.list_uploads(target.prefix):
        remote.abort(upload.key, upload.upload_id)
    bucket = _sdk_bucket(target)
    listing = bucket.list_objects(prefix=target.prefix, limit="1000")
    for item in listing.get("keys") or []:
        bucket.delete_object(item["key"])


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    """The object store under test: live QingStor if configured, else a fresh emulator."""
    prefix = f"qsyncd-test-{uuid.uuid4().hex[:12]}/"
    live = live_settings()
    if live is not None:
        t = Target(
            endpoint=live["ENDPOINT"],
            zone=live["ZONE"],
            bucket=live["BUCKET"],
            access_key_id=live["ACCESS_KEY_ID"],
            secret_access_key=live["SECRET_ACCESS_KEY"],
            prefix=prefix,
        )
        try:
            yield t
        finally:
            try:
                _cleanup_live(t)
            finally:
                for r in t.remotes:
                    r.close()
        return

    from qsyncd.emulator import Emulator

    # Crash safety is not under test here; skip the emulator's fsyncs when it offers that extra.
    extra = {"fsync": False} if "fsync" in inspect.signature(Emulator).parameters else {}
    emu = Emulator(
        tmp_path / "emu",
        host="127.0.0.1",
        port=0,
        credentials={EMU_AKID: EMU_SECRET},
        buckets=[EMU_BUCKET],
        **extra,
    )
    emu.start()
    t = Target(
        endpoint=emu.url,
        zone="",
        bucket=EMU_BUCKET,
        access_key_id=EMU_AKID,
        secret_access_key=EMU_SECRET,
        prefix=prefix,
        emu=emu,
    )
    try:
        yield t
    finally:
        try:
            for r in t.remotes:
                r.close()
        finally:
            emu.stop()


@pytest.fixture
def emu(target: Target) -> Any:
    """The emulator behind ``target``; skips the test against live QingStor."""
    if target.emu is None:
        pytest.skip("needs the emulator (fault injection / request log / on-disk bytes)")
    return target.emu


@pytest.fixture
def remote(target: Target) -> QingStorRemote:
    """A QingStorRemote with the right credentials for ``target``."""
    return target.remote()


# ---- the stores of the contract suite (test_contract.py) ----------------------------------------


def _emulator_store(request: pytest.FixtureRequest) -> Store:
    """The emulator over real HTTP on 127.0.0.1 (or live QingStor when configured, see remote_support)."""
    target: Target = request.getfixturevalue("target")

    def emu() -> Any:
        if target.emu is None:
            pytest.skip("reads the emulator's store (live QingStor: not implemented)")
        return target.emu

    return Store(
        name="emulator",
        remote=target.remote(),
        prefix=target.prefix,
        min_part_size=4 * 1024 * 1024,
        wrong_secret=lambda: target.remote(secret_access_key=target.secret_access_key + "-wrong"),
        missing_bucket=lambda: target.remote(bucket=f"qsyncd-missing-{uuid.uuid4().hex[:8]}"),
        copy_limited=lambda limit: target.remote(max_copy_size=limit),
        read=lambda key: bytes(emu().object_bytes(target.bucket, key)),
        parts=lambda key: len(emu().object_files(target.bucket, key)),
        set_versioning=lambda status: put_versioning(target, status),
        delete=lambda key: _sdk_bucket(target).delete_object(key),
    )


def _memory_store(request: pytest.FixtureRequest) -> Store:
    """The in-memory Remote of tests/qsynctest/memremote.py."""
    from qsynctest.memremote import BUCKET, MIN_PART_SIZE, SECRET_ACCESS_KEY, MemRemote, MemStore

    mem = MemStore()
    return Store(
        name="memory",
        remote=MemRemote(mem),
        prefix=f"qsyncd-test-{uuid.uuid4().hex[:12]}/",
        min_part_size=MIN_PART_SIZE,
        wrong_secret=lambda: MemRemote(mem, secret_access_key=SECRET_ACCESS_KEY + "-wrong"),
        missing_bucket=lambda: MemRemote(mem, bucket="qsyncd-missing"),
        copy_limited=lambda limit: MemRemote(mem, max_copy_size=limit),
        read=lambda key: mem.objects()[key],
        parts=mem.parts,
        set_versioning=lambda status: mem.versioning.__setitem__(BUCKET, status.lower()),
        delete=mem.remove,
    )


def _seaweedfs_store(request: pytest.FixtureRequest) -> Store:
    """SeaweedFS's S3 gateway behind ``S3Remote`` (tests/qsynctest/seaweed.py; a new bucket per test)."""
    server = request.getfixturevalue("seaweed")
    bucket = request.getfixturevalue("s3_bucket")
    client = server.client()

    def parts(key: str) -> int:  # a multipart object's ETag is md5(part MD5s)-N
        etag = str(client.head_object(Bucket=bucket, Key=key)["ETag"]).strip('"')
        return int(etag.rpartition("-")[2]) if "-" in etag else 1

    def set_versioning(status: str) -> None:  # SeaweedFS 4.48 implements PutBucketVersioning
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status.title()})

    return Store(
        name="seaweedfs",
        remote=server.remote(bucket),
        prefix=f"qsyncd-test-{uuid.uuid4().hex[:12]}/",
        min_part_size=5 * 1024 * 1024,
        wrong_secret=lambda: server.remote(bucket, secret_access_key=server.secret + "-wrong"),
        missing_bucket=lambda: server.remote(f"qsyncd-missing-{uuid.uuid4().hex[:8]}"),
        copy_limited=lambda limit: server.remote(bucket, max_copy_size=limit),
        read=lambda key: bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read()),
        parts=parts,
        set_versioning=set_versioning,
        delete=lambda key: client.delete_object(Bucket=bucket, Key=key),
    )


STORES: dict[str, Callable[[pytest.FixtureRequest], Store]] = {
    "emulator": _emulator_store,
    "memory": _memory_store,
    "seaweedfs": _seaweedfs_store,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest) -> Store:
    """Each store of the contract suite in turn (the store's own fixtures clean up after it)."""
    return STORES[request.param](request)
