"""Faults on the way to S3: the daemon uploads to SeaweedFS through a proxy that resets or stalls some of
the traffic (requests cut off mid-body, answers cut off, stalls past the read timeout), and every file
still arrives exactly once, byte-exact, with its whole-file MD5 in ``md5chksum``."""

from __future__ import annotations

import base64
import hashlib
import os
import random
from pathlib import Path
from typing import Any

from qsynctest import SECRET, wait_for
from qsynctest.faultproxy import FaultProxy
from qsynctest.seaweed import Seaweed, write_s3_config

MiB = 1024 * 1024


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / (path.name + ".tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def test_resets_and_stalls_through_a_proxy_every_file_arrives_intact(
    tmp_path: Path, seaweed: Seaweed, s3_bucket: str, daemon_factory: Any
) -> None:
    rng = random.Random(19)
    files = {f"cam{i % 4}/{i:04}.jpg": rng.randbytes(1000 + rng.randrange(30_000)) for i in range(150)}
    files.update({f"video/{i}.mp4": rng.randbytes(12 * MiB + i) for i in range(2)})  # multipart, 3 parts each
    root, state, config = tmp_path / "watch", tmp_path / "state", tmp_path / "qsyncd.toml"
    root.mkdir()
    with FaultProxy(
        ("127.0.0.1", seaweed.ports["s3"]), reset_probability=0.03, stall_probability=0.005, stall_seconds=3, seed=19
    ) as proxy:
        write_s3_config(
            config,
            server=seaweed,
            bucket=s3_bucket,
            watch=root,
            state=state,
            endpoint=proxy.url,
            read_timeout=2,
            upload={"multipart_threshold": "8MiB", "part_size": "5MiB", "concurrency": 8},
        )
        d = daemon_factory(config).start()
        d.wait_event("daemon_ready", timeout=60)
        for rel, data in files.items():
            _write(root, rel, data)

        def sent() -> set[str]:
            """Uploaded, or found stored by a retry (an answer cut off after the store kept the object)."""
            skipped = [e for e in d.events("upload_skipped") if e.get("reason") == "remote_match"]
            return {e.get("key") for e in d.events("upload_finished") + skipped}

        def done() -> bool:
            return set(files) <= sent()

        wait_for(done, timeout=300, interval=0.5, what=f"{len(files)} uploads through faults\n{d.tail()}")
        proxy.enabled = False
        assert 0 == d.stop()
    client = seaweed.client()
    for rel, data in files.items():
        reply = client.get_object(Bucket=s3_bucket, Key=rel)
        got = reply["Body"].read()
        assert got == data, f"{rel}: the bucket's bytes differ from the file"
        assert base64.b64encode(hashlib.md5(data).digest()).decode() == reply["Metadata"]["md5chksum"], rel
    assert proxy.resets > 0, "the proxy injected no resets: the test proved nothing"
    retried = d.events("upload_failed") + d.events("part_retried")
    assert retried, "no failure was reported"
    assert [] == d.events("file_skipped")
    assert set(files) == sent()
    assert SECRET not in d.tail(100_000)
