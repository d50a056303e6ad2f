"""E2E: after_upload = "delete" frees local disk only after the bucket holds a verified copy."""

from __future__ import annotations

import os
import time

from e2e_support import assert_remote_equals, remote_bytes

from qsyncd.emulator import Fault


def test_delete_after_verified_upload_and_keep_on_failure(setup):
    """Uploaded files vanish locally only once the remote copy exists; a file the bucket refuses (403) stays."""
    setup.config(watch_opts={"after_upload": "delete"}, upload={"permanent_retry_seconds": 3600})
    deny = setup.emu.inject(Fault(status=403, key_prefix="keep/", count=None))
    d = setup.daemon()
    (setup.root / "keep").mkdir()
    kept = os.urandom(2048)
    (setup.root / "keep" / "refused.bin").write_bytes(kept)
    # refused first and alone: one key's 403 must not pause the uploads of every other file
    d.wait_event("upload_failed", pred=lambda e: e.get("key") == "keep/refused.bin" and e.get("permanent"))
    expect: dict[str, bytes] = {}
    for i in range(20):
        rel = f"go/f{i}.bin"
        (setup.root / rel).parent.mkdir(exist_ok=True)
        expect[rel] = os.urandom(1000 + i)
        (setup.root / rel).write_bytes(expect[rel])

    pending = dict(expect)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for rel in list(pending):
            if not (setup.root / rel).exists():
                # the moment it is gone locally, the bucket must already hold exactly these bytes
                assert remote_bytes(setup.emu, rel) == pending.pop(rel), f"{rel} deleted before a verified upload"
        time.sleep(0.01)
    assert not pending, f"never deleted: {sorted(pending)}\n{d.tail()}"
    for rel, data in expect.items():
        assert_remote_equals(setup.emu, rel, data)
    # upload_finished is logged just after the delete: wait for all of them, then check each said so
    finished = d.wait_event("upload_finished", pred=lambda e: e.get("key") in expect, count=len(expect))
    fins = {e["key"]: e for e in finished}
    assert all(fins[k]["deleted"] is True for k in expect), fins

    assert deny.fired >= 1
    time.sleep(1.0)
    assert (setup.root / "keep" / "refused.bin").read_bytes() == kept, "a file that was never uploaded was deleted"
    assert remote_bytes(setup.emu, "keep/refused.bin") is None
