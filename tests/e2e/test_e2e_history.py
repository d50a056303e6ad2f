"""Renames without re-upload and changed files without loss, on QingStor (the emulator) and S3 (SeaweedFS).

The real daemon (``qsyncd run``) watches a real directory; the store is reached through a counting TCP
proxy (``FaultProxy`` with no faults), so "sends about the new data only" is measured on the wire, not
taken from qsyncd's own events. Each test runs once per store with the same steps:

- a numbered logrotate chain (rotate 14, compress, 30 rotations; CI runs that on QingStor and rotate 5
  with 9 rotations on S3, the soak the full chain on both) sends about the new data only and leaves
  every local file byte-exact in the bucket, what each rotation drops kept under ``.qsyncd-kept/``;
- every file rewritten in place with random bytes while the daemon runs (ransomware) loses no original:
  with ``on_change = "keep"`` the originals are kept and the new bytes stored, with ``"refuse"`` the
  bucket is left exactly as it was and each file is reported (``change_refused``).
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qsynctest import BUCKET, wait_for, write_config
from qsynctest.faultproxy import FaultProxy
from qsynctest.seaweed import Seaweed, seaweed, write_s3_config  # noqa: F401  (the session's SeaweedFS)

from qsyncd.config import load_config
from qsyncd.service.daemon import make_remote

KiB = 1024
SOAK = os.environ.get("QSYNCD_SOAK") == "1"
KEPT = ".qsyncd-kept/"
GZ1 = "logs/app.log.1.gz"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Store:
    """One store behind a counting proxy: writes the config, reads objects back byte for byte."""

    def __init__(self, kind: str, tmp: Path, backend: Any, bucket: str) -> None:
        self.kind, self.tmp, self.backend, self.bucket = kind, tmp, backend, bucket
        url = backend.url if kind == "qingstor" else backend.endpoint
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.proxy = FaultProxy((host, int(port)))
        self.root, self.state, self.config_path = tmp / "watch", tmp / "state", tmp / "qsyncd.toml"
        self.root.mkdir()

    def config(self, **watch_opts: Any) -> Path:
        settle = {"quiet_seconds": 0.3}
        if self.kind == "qingstor":
            return write_config(
                self.config_path,
                endpoint=self.proxy.url,
                watch=self.root,
                state=self.state,
                settle=settle,
                watch_opts=watch_opts,
            )
        return write_s3_config(
            self.config_path,
            server=self.backend,
            bucket=self.bucket,
            watch=self.root,
            state=self.state,
            settle=settle,
            endpoint=self.proxy.url,
            watch_opts=watch_opts,
        )

    def remote(self) -> Any:
        return make_remote(load_config(self.config_path))

    def get(self, key: str) -> bytes | None:
        if self.kind == "qingstor":
            try:
                return bytes(self.backend.object_bytes(BUCKET, key))
            except KeyError:
                return None
        client = self.backend.client()
        try:
            reply = client.get_object(Bucket=self.bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None
        try:
            return bytes(reply["Body"].read())
        finally:
            reply["Body"].close()

    def keys(self, prefix: str = "") -> list[str]:
        remote = self.remote()
        try:
            return [o.key for o in remote.list_objects(prefix)]
        finally:
            remote.close()

    def close(self) -> None:
        self.proxy.close()


@pytest.fixture(params=["qingstor", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "qingstor":
        backend: Any = request.getfixturevalue("fast_emulator")
        bucket = BUCKET
    else:
        backend = request.getfixturevalue("seaweed")
        bucket = backend.create_bucket()
    s = Store(request.param, tmp_path, backend, bucket)
    yield s
    s.close()


def start(store: Store, factory: Any) -> Any:
    d = factory(store.config_path).start()
    d.wait_event("daemon_ready", timeout=60)
    d.wait_event("rescan_finished", timeout=60, pred=lambda e: e.get("reason") == "startup")
    return d


def in_bucket(store: Store, files: dict[str, bytes]) -> bool:
    """Every ``key -> bytes`` is in the bucket byte for byte."""
    return all(store.get(k) == v for k, v in files.items())


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def rotate(logs: Path, rng: random.Random, count: int, size: int) -> tuple[int, int]:
    """One logrotate run with ``rotate 14`` and ``compress`` (no delaycompress); returns the new bytes
    written (the compressed log and the new app.log), which is what should go up, and the renames."""
    renamed = 0
    oldest = logs / f"app.log.{count}.gz"
    if oldest.exists():
        oldest.unlink()
    for i in range(count - 1, 0, -1):
        src = logs / f"app.log.{i}.gz"
        if src.exists():
            src.rename(logs / f"app.log.{i + 1}.gz")
            renamed += 1
    current = logs / "app.log"
    if current.exists():
        current.rename(logs / "app.log.1")
        raw = (logs / "app.log.1").read_bytes()
        with gzip.open(logs / "app.log.1.gz", "wb", compresslevel=1) as gz:  # what gzip(1) does: new file
            gz.write(raw)
        (logs / "app.log.1").unlink()
    data = rng.randbytes(size)  # the application writes its next log
    current.write_bytes(data)
    gz_size = (logs / "app.log.1.gz").stat().st_size if (logs / "app.log.1.gz").exists() else 0
    return len(data) + gz_size, renamed


def test_logrotate_chain_sends_the_new_data_only(store: Store, daemon_factory: Any) -> None:
    # the chain (rotate 14, 30 rotations) on QingStor; on S3 a shorter one in CI (SeaweedFS is
    # slower per request), the full one in the soak
    rotations, count = (30, 14) if SOAK or store.kind == "qingstor" else (9, 5)
    size = 48 * KiB
    rng = random.Random(20)
    logs = store.root / "logs"
    logs.mkdir()
    store.config()  # the defaults: renames = "copy", on_change = "keep"
    d = start(store, daemon_factory)
    new_bytes = renames = 0
    for n in range(1, rotations + 1):
        grown, renamed = rotate(logs, rng, count, size)
        new_bytes, renames = new_bytes + grown, renames + renamed

        def rotated(n: int = n, renames: int = renames) -> bool:  # this rotation is in the bucket (per the events)
            sent = collections.Counter(e.get("key") for e in d.events("upload_finished"))
            gz = n - 1  # app.log.1.gz is new from the second rotation on
            return len(d.events("object_copied")) >= renames and sent["logs/app.log"] >= n and sent[GZ1] >= gz

        wait_for(rotated, timeout=60, interval=0.05, what=f"rotation {n} in the bucket\n{d.tail()}")
    sent = store.proxy.upstream_bytes
    copies = len(d.events("object_copied"))
    kept = store.keys(KEPT)
    print(
        f"{store.kind}: {rotations} rotations, new data {new_bytes / KiB:.0f} KiB, sent {sent / KiB:.0f} KiB"
        f" ({sent / new_bytes:.2f}x), {renames} renames, {copies} server-side copies, {len(kept)} kept versions,"
        f" {len(d.events('reuse_fallback'))} fallbacks"
    )
    # Every rotated file is a rename: without renames about 13 files of ~48 KiB would go up per rotation
    # (~13x the new data). Request heads (copies, HEADs, listings) are the only other bytes on the wire.
    assert sent <= 1.25 * new_bytes + rotations * 24 * KiB, "renamed files were uploaded again"
    assert copies >= renames, "the rotated files were not copied server-side"
    # what left the disk is kept, once: the oldest log each rotation drops (from the 15th on), and each
    # app.log replaced by the next (its bytes went into app.log.1.gz compressed, so no other key holds them)
    by_key = collections.Counter(k.split("@")[0].removeprefix(KEPT) for k in kept)
    assert rotations - count - 1 <= by_key.pop(f"logs/app.log.{count}.gz", 0) <= rotations - count, kept
    assert rotations - 2 <= by_key.pop("logs/app.log", 0) <= rotations - 1, kept
    assert not by_key, f"versions still on disk or in the bucket were kept too: {by_key}"
    assert in_bucket(store, {f"logs/{k}": v for k, v in local_files(logs).items()})
    assert not d.events("upload_failed"), d.events("upload_failed")[:3]
    d.stop()


@pytest.mark.parametrize("on_change", ["keep", "refuse"])
def test_ransomware_rewrite_loses_no_original(store: Store, daemon_factory: Any, on_change: str) -> None:
    rng = random.Random(7)
    originals = {f"docs/f{i:02d}.bin": rng.randbytes(24 * KiB + i) for i in range(8)}
    for rel, data in originals.items():
        (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / rel).write_bytes(data)
    store.config(on_change=on_change)
    d = start(store, daemon_factory)
    wait_for(lambda: in_bucket(store, originals), timeout=60, interval=0.1, what=f"first upload\n{d.tail()}")
    encrypted = {}
    for rel, data in originals.items():  # rewritten in place: the same inode, new bytes of the same size
        encrypted[rel] = rng.randbytes(len(data))
        with open(store.root / rel, "r+b") as f:
            f.write(encrypted[rel])
    if on_change == "keep":
        wait_for(lambda: in_bucket(store, encrypted), timeout=60, interval=0.1, what=f"new bytes\n{d.tail()}")
        kept = {k: store.get(k) for k in store.keys(KEPT)}
        kept_md5s = {md5(v) for v in kept.values() if v is not None}
        assert {md5(v) for v in originals.values()} <= kept_md5s, "an original was lost from the bucket"
        assert len(d.events("version_kept")) == len(originals)
    else:
        wait_for(
            lambda: {e.get("path") for e in d.events("change_refused")} >= {str(store.root / rel) for rel in originals},
            timeout=60,
            interval=0.1,
            what=f"change_refused for every file\n{d.tail()}",
        )
        assert in_bucket(store, originals), "refuse replaced an original"
        assert store.keys(KEPT) == []
        assert all(e.get("md5") == md5(originals[e["key"]]) for e in d.events("upload_finished"))
    d.stop()
