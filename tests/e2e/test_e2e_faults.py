"""E2E: the emulator misbehaves (503s, connection resets mid-body) and every file still arrives intact."""

from __future__ import annotations

import os
import time

from e2e_support import assert_remote_equals, ok, op_counts

from qsyncd.emulator import Fault


def test_mixed_set_survives_503s_and_resets(setup):
    """50 small files + 2 multipart under ~30% 503s and resets on PUT/part: all arrive byte-exact, once complete."""
    setup.config(upload={"multipart_threshold": "4MiB", "part_size": "4MiB", "part_retries": 8})
    # a few certain failures of each kind first (there are only 7 parts), then ~30% of all uploads fail
    certain = [
        setup.emu.inject(Fault(status=503, operation="UploadMultipart", count=2)),
        setup.emu.inject(Fault(reset_after_bytes=64 * 1024, operation="UploadMultipart", count=2)),
        setup.emu.inject(Fault(status=503, operation="PutObject", count=3)),
        setup.emu.inject(Fault(reset_after_bytes=300, operation="PutObject", count=3)),
    ]
    random_faults = [
        setup.emu.inject(Fault(status=503, operation="PutObject", probability=0.15, count=None)),
        setup.emu.inject(Fault(reset_after_bytes=300, operation="PutObject", probability=0.15, count=None)),
        setup.emu.inject(Fault(status=503, operation="UploadMultipart", probability=0.15, count=None)),
        setup.emu.inject(Fault(reset_after_bytes=64 * 1024, operation="UploadMultipart", probability=0.15, count=None)),
    ]
    d = setup.daemon()
    expect: dict[str, bytes] = {}
    for i in range(50):
        rel = f"small/{i % 5}/s{i}.bin"
        (setup.root / rel).parent.mkdir(parents=True, exist_ok=True)
        expect[rel] = os.urandom(500 + 37 * i)
        (setup.root / rel).write_bytes(expect[rel])
    for rel, size in (("big/one.bin", 9 * 1024 * 1024 + 1), ("big/two.bin", 13 * 1024 * 1024 - 5)):
        (setup.root / "big").mkdir(exist_ok=True)
        expect[rel] = os.urandom(size)
        (setup.root / rel).write_bytes(expect[rel])
    # keep the faults on for a while, then let the network heal
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and (any(f.count for f in certain) or sum(f.fired for f in random_faults) < 20):
        time.sleep(0.1)
    fired = [f.fired for f in certain]
    setup.emu.clear_faults()
    assert fired == [2, 2, 3, 3], f"the certain faults did not all fire: {fired}"
    setup.wait_uploaded(d, list(expect), timeout=90)
    failed = [r for r in setup.emu.requests if r.operation in ("PutObject", "UploadMultipart") and not ok(r)]
    assert failed, "no upload request failed: the faults did not hit anything"
    for key, data in expect.items():
        assert_remote_equals(setup.emu, key, data)
    completes = op_counts(setup.emu, "CompleteMultipartUpload")
    assert completes["big/one.bin"] == 1 and completes["big/two.bin"] == 1, completes
    puts = op_counts(setup.emu, "PutObject")
    assert all(puts[k] == 1 for k in expect if k.startswith("small/")), puts
