"""E2E: a burst of 2,000 small files in nested directories arrives completely, each file exactly once."""

from __future__ import annotations

import os

from e2e_support import assert_remote_equals, op_counts


def test_burst_of_2000_files(setup):
    """2,000 files written as fast as possible into nested dirs: all arrive, one PutObject per key."""
    setup.config(upload={"concurrency": 8})
    d = setup.daemon()
    expect: dict[str, bytes] = {}
    dirs = ["", "a", "a/b", "a/b/c", "z/y"]
    for sub in dirs:
        (setup.root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(2000):
        rel = f"{dirs[i % len(dirs)]}/f{i:04d}.txt".lstrip("/")
        data = f"file {i}\n".encode() + os.urandom(64 + i % 97)
        (setup.root / rel).write_bytes(data)
        expect[rel] = data
    setup.wait_uploaded(d, list(expect), timeout=150)
    puts = op_counts(setup.emu, "PutObject")
    attempts = op_counts(setup.emu, "PutObject", only_ok=False)
    assert set(puts) == set(expect)
    dup = {k: n for k, n in attempts.items() if n != 1}
    assert dup == {}, f"{len(dup)} keys not sent exactly once, e.g. {list(dup.items())[:5]}"
    for key, data in expect.items():
        assert_remote_equals(setup.emu, key, data)
    assert len(d.events("upload_finished")) == 2000
