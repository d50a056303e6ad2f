"""A store that outgrows one machine: SeaweedFS as a cluster (a master, two volume servers with
replication 001, a filer and the S3 gateway, each its own process), one volume server killed with
SIGKILL while the daemon uploads.

What must hold: nothing already stored is lost (every object stays readable from the replica while
the volume server is down), the daemon reports the failed writes (``upload_failed``) instead of
hiding them, and once the volume server is back every file written meanwhile arrives, byte-exact.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from qsynctest import wait_for
from qsynctest.seaweed import write_s3_config
from qsynctest.seaweed_cluster import WeedCluster, cluster_client

MiB = 1024 * 1024


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / (path.name + ".tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


def _stored(client: Any, bucket: str, key: str) -> tuple[bytes, dict[str, str]]:
    reply = client.get_object(Bucket=bucket, Key=key)
    try:
        return bytes(reply["Body"].read()), dict(reply.get("Metadata") or {})
    finally:
        reply["Body"].close()


def test_a_volume_server_killed_while_files_upload_loses_nothing(tmp_path: Path, daemon_factory: Any) -> None:
    bucket = "qsyncd-cluster"
    with WeedCluster(tmp_path / "cluster") as cluster:
        cluster.wait_writable(bucket)
        root, state, config = tmp_path / "watch", tmp_path / "state", tmp_path / "qsyncd.toml"
        root.mkdir()
        write_s3_config(
            config,
            server=cluster,
            bucket=bucket,
            watch=root,
            state=state,
            upload={"multipart_threshold": "8MiB", "part_size": "5MiB", "concurrency": 4},
            read_timeout=5,
        )
        d = daemon_factory(config).start()
        d.wait_event("daemon_ready", timeout=60)

        def uploaded() -> set[str]:
            """Keys sent, or found stored by a retry (a PUT that timed out may have been stored after all)."""
            return {e.get("key") for e in d.events("upload_finished") + d.events("upload_skipped")}

        before = {f"before/{i}.bin": os.urandom(50_000 + i) for i in range(8)}
        for rel, data in before.items():
            _write(root, rel, data)
        wait_for(lambda: set(before) <= uploaded(), timeout=120, interval=0.2, what=f"first batch\n{d.tail()}")

        cluster.kill("volume1")  # a crash: SIGKILL, no goodbye to the master
        during = {f"during/{i}.bin": os.urandom(60_000 + i) for i in range(8)}
        during["during/big.bin"] = os.urandom(12 * MiB + 1)  # multipart: 3 parts
        for rel, data in during.items():
            _write(root, rel, data)
        d.wait_event("upload_failed", timeout=120)  # the daemon reports the writes the store cannot take
        client = cluster_client(cluster)
        for rel, data in before.items():  # nothing stored is lost: the replica on volume0 serves it
            assert data == _stored(client, bucket, rel)[0], rel

        cluster.start_process("volume1")
        wait_for(lambda: set(during) <= uploaded(), timeout=300, interval=0.5, what=f"second batch\n{d.tail()}")
        for rel, data in {**before, **during}.items():
            got, meta = _stored(client, bucket, rel)
            assert got == data, f"{rel}: the bucket's bytes differ from the file"
            assert base64.b64encode(hashlib.md5(data).digest()).decode() == meta.get("md5chksum"), rel
        failed = d.events("upload_failed")
        assert failed and all(e.get("code") for e in failed), failed[:3]
        assert [] == d.events("file_skipped")
        assert 0 == d.stop()
