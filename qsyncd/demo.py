"""``qsyncd demo``: the emulator and the daemon on a temporary folder, to see qsyncd work in one command."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEMO_BUCKET = "qsyncd-demo"
SUMMARY_LINES = 50  # objects listed by name at the end; the rest are counted


def run_demo(*, seconds: float | None = None, directory: Path | None = None) -> int:
    from qsyncd.config import load_config
    from qsyncd.emulator import Emulator
    from qsyncd.events import configure_logging, register_secret
    from qsyncd.service import Daemon

    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="qsyncd-demo-"))
    drop, store, state = base / "drop", base / "bucket-data", base / "state"
    for d in (drop, store, state):
        d.mkdir(parents=True, exist_ok=True)
    akid, secret = "QSYNCDDEMO", secrets.token_urlsafe(24)
    register_secret(secret)
    (base / "secret-key").write_text(secret)
    os.chmod(base / "secret-key", 0o600)
    emu = Emulator(store, credentials={akid: secret}, buckets=[DEMO_BUCKET]).start()
    cfg_path = base / "qsyncd.toml"
    cfg_path.write_text(
        f'''[qingstor]
endpoint = "{emu.url}"
zone = ""
bucket = "{DEMO_BUCKET}"
access_key_id = "{akid}"
secret_access_key_file = "{base / "secret-key"}"

[[watch]]
path = "{drop}"
prefix = "demo/"

[state]
dir = "{state}"

[log]
format = "console"
'''
    )
    cfg = load_config(cfg_path)
    configure_logging("console", "info")
    logging.getLogger("qsyncd.emulator").setLevel(logging.WARNING)  # the daemon's own events tell the story
    (drop / "hello.txt").write_text("hello from qsyncd\n")
    print(
        f"\nqsyncd demo\n"
        f"  drop files into:   {drop}\n"
        f"  they are uploaded to the local QingStor emulator at {emu.url}/{DEMO_BUCKET}/demo/...\n"
        f"  stored bytes live under {store}; config {cfg_path}\n"
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
        emu.stop()
        print(summary(emu.requests, base, kept=directory is not None))


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
