"""E2E: the endpoint goes away while the daemon runs; files written meanwhile wait and go up once it is back."""

from __future__ import annotations

import os

from e2e_support import BUCKET, assert_remote_equals, op_counts

from qsyncd.emulator import Emulator


def test_remote_outage_then_recovery(setup):
    """Emulator stopped: remote_unreachable, nothing lost; restarted on the same port: all files arrive once."""
    d = setup.daemon()
    (setup.root / "before.txt").write_bytes(b"before the outage")
    setup.wait_uploaded(d, ["before.txt"])
    port, emu_root = setup.emu.port, setup.emu.root
    setup.emu.stop()
    expect = {f"during/{i}.bin": os.urandom(400 + i) for i in range(10)}
    (setup.root / "during").mkdir()
    for rel, data in expect.items():
        (setup.root / rel).write_bytes(data)
    d.wait_event("remote_unreachable", timeout=30)
    back = Emulator(
        emu_root, port=port, credentials={setup.shared.ACCESS_KEY: setup.shared.SECRET}, buckets=[BUCKET], fsync=False
    )
    back.start()
    try:
        setup.wait_uploaded(d, list(expect), timeout=90)
        d.wait_event("remote_recovered", timeout=10)
        for rel, data in expect.items():
            assert_remote_equals(back, rel, data)
        assert op_counts(back, "PutObject") == dict.fromkeys(expect, 1)
        assert_remote_equals(back, "before.txt", b"before the outage")
        assert d.events("file_skipped") == []
    finally:
        back.stop()
