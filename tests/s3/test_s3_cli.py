"""``qsyncd check-config`` on an ``[s3]`` config: accepted credentials, a wrong secret (78), a missing bucket
(78) and nothing listening (69), each message naming the host that was contacted and never the secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qsynctest import SECRET
from qsynctest.seaweed import Seaweed, free_ports, write_s3_config


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qsyncd", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_check_config_on_s3(tmp_path: Path, seaweed: Seaweed, s3_bucket: str) -> None:
    (tmp_path / "w").mkdir()
    config = tmp_path / "qsyncd.toml"

    def write(**kw: object) -> Path:
        return write_s3_config(config, server=seaweed, watch=tmp_path / "w", state=tmp_path / "st", **kw)  # type: ignore[arg-type]

    ok = check_config(write(bucket=s3_bucket))
    assert 0 == ok.returncode, ok.stdout + ok.stderr
    assert f"bucket {s3_bucket} at {seaweed.endpoint}: reachable, credentials accepted" in ok.stdout

    wrong = check_config(write(bucket=s3_bucket, secret="not-" + SECRET))
    assert 78 == wrong.returncode, wrong.stdout + wrong.stderr
    assert "signature does not match" in wrong.stderr and "SignatureDoesNotMatch" in wrong.stderr
    missing = check_config(write(bucket="qsyncd-not-there"))
    assert 78 == missing.returncode
    assert f"'qsyncd-not-there', region 'us-east-1' at {seaweed.endpoint}" in missing.stderr, missing.stderr
    down = f"http://127.0.0.1:{free_ports(1)[0]}"
    refused = check_config(write(bucket=s3_bucket, endpoint=down))
    assert 69 == refused.returncode
    assert f"cannot reach {down}" in refused.stderr, refused.stderr
    for res in (ok, wrong, missing, refused):
        assert SECRET not in res.stdout + res.stderr
