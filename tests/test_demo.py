"""Tests for qsyncd.demo: the closing summary (each object once, every object counted, the folder named)
and the demo's settings (the documented defaults, not a shortened quiet period)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

from qsyncd.demo import SUMMARY_LINES, summary


def _put(key: str, status: int = 201, operation: str = "PutObject") -> SimpleNamespace:
    return SimpleNamespace(key=key, status=status, operation=operation)


def test_summary_counts_objects_once_and_says_what_it_left_out(tmp_path: Path) -> None:
    """55 objects, one sent four times and one refused: "55 object(s)", each key once, and the rest counted."""
    requests = [_put(f"demo/f{i:02}.bin") for i in range(55)]
    requests += [_put("demo/f00.bin")] * 3 + [_put("demo/refused.bin", status=503)]
    requests += [_put("demo/big.iso", operation="CompleteMultipartUpload"), _put("demo/big.iso", 200, "HeadObject")]
    (tmp_path / "drop").mkdir()
    (tmp_path / "drop" / "x").write_bytes(b"x" * 2**20)
    text = summary(requests, tmp_path, kept=False)
    lines = text.splitlines()
    assert "uploaded during the demo: 56 object(s)" in lines
    listed = [line for line in lines if line.startswith("  qsyncd-demo/")]
    assert SUMMARY_LINES == len(listed) == len(set(listed))
    assert "  qsyncd-demo/demo/f00.bin (sent 4 times: the file changed after it was uploaded)" in listed
    assert f"  ... and {56 - SUMMARY_LINES} more" in lines
    kept = f"the demo folder {tmp_path} is kept (1.0 MiB: drop folder, bucket data, state)"
    assert f"{kept}; remove it with: rm -r {tmp_path}" in lines
    assert "rm -r" not in summary(requests, tmp_path, kept=True)


def test_demo_uses_the_default_quiet_period_and_says_where_its_folder_is(tmp_path: Path) -> None:
    """`qsyncd demo --dir D --seconds N`: the config it writes keeps the default quiet_seconds (a demo with
    1 s uploaded partial versions of slow writers), hello.txt goes up, and the folder is named as kept."""
    qsyncd = Path(sys.executable).with_name("qsyncd")
    base = tmp_path / "demo"
    res = subprocess.run(
        [str(qsyncd), "demo", "--dir", str(base), "--seconds", "5"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert 0 == res.returncode, res.stdout + res.stderr
    cfg = tomllib.loads((base / "qsyncd.toml").read_text())
    assert "quiet_seconds" not in cfg.get("settle", {}), cfg
    assert "uploaded during the demo: 1 object(s)\n  qsyncd-demo/demo/hello.txt\n" in res.stdout, res.stdout
    assert f"everything is in {base}, which is kept when the demo ends" in res.stdout, res.stdout
    assert f"the demo folder {base} is kept" in res.stdout, res.stdout
