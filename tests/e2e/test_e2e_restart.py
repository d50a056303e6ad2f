"""E2E: stopping and starting the daemon: ledger hits, files added while down, multipart resumed after SIGKILL."""

from __future__ import annotations

import os
import time

from e2e_support import BUCKET, assert_remote_equals, ok, op_counts, requests_for
from qsynctest import md5_hex

from qsyncd.emulator import Fault

MP = {"multipart_threshold": "4MiB", "part_size": "4MiB"}


def _files(root, n: int, size: int = 700) -> dict[str, bytes]:
    out = {}
    for i in range(n):
        rel = f"d{i % 3}/f{i}.bin"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size + i)
        (root / rel).write_bytes(data)
        out[rel] = data
    return out


def test_restart_with_everything_uploaded_sends_nothing(setup):
    """A second daemon finds every file in the ledger: no PUT, part or HEAD, and rescan says queued=0."""
    setup.config(upload=MP)
    files = _files(setup.root, 12)
    big = os.urandom(9 * 1024 * 1024 + 7)
    (setup.root / "big.bin").write_bytes(big)
    files["big.bin"] = big
    d1 = setup.daemon()
    setup.wait_uploaded(d1, list(files))
    assert d1.stop() == 0
    setup.emu.clear_requests()

    d2 = setup.daemon()
    scans = d2.events("rescan_finished")
    assert scans[0]["reason"] == "startup" and scans[0]["queued"] == 0 and scans[0]["files"] == len(files), scans
    time.sleep(1.5)  # three quiet periods: anything queued would have been sent by now
    sent = [
        r
        for r in setup.emu.requests
        if r.key in files and r.operation in ("PutObject", "UploadMultipart", "HeadObject", "InitiateMultipartUpload")
    ]
    assert sent == []
    assert d2.events("upload_started") == [] and d2.events("upload_finished") == []
    for key, data in files.items():
        assert_remote_equals(setup.emu, key, data)


def test_files_added_while_down_are_uploaded_on_start(setup):
    """Files written while no daemon runs are uploaded by the next start; the old ones are not resent."""
    old = _files(setup.root, 3)
    d1 = setup.daemon()
    setup.wait_uploaded(d1, list(old))
    d1.stop()
    new = {}
    for rel in ("later/one.txt", "later/deep/two.txt", "three.txt"):
        (setup.root / rel).parent.mkdir(parents=True, exist_ok=True)
        new[rel] = os.urandom(999)
        (setup.root / rel).write_bytes(new[rel])
    setup.emu.clear_requests()
    d2 = setup.daemon()
    assert d2.events("rescan_finished")[0]["queued"] == len(new)
    setup.wait_uploaded(d2, list(new))
    for key, data in new.items():
        assert_remote_equals(setup.emu, key, data)
    puts = op_counts(setup.emu, "PutObject")
    assert set(puts) == set(new) and all(v == 1 for v in puts.values()), puts


def test_multipart_resumes_after_sigkill(setup):
    """SIGKILL mid-multipart, restart: only the missing parts are sent; bytes, MD5 and ETag match."""
    setup.config(upload={"multipart_threshold": "8MiB", "part_size": "4MiB"})
    data = os.urandom(48 * 1024 * 1024)
    slow = setup.emu.inject(Fault(latency=0.3, operation="UploadMultipart", count=None))
    d1 = setup.daemon()
    path = setup.root / "huge.bin"
    tmp = setup.tmp / "huge.tmp"
    tmp.write_bytes(data)
    os.rename(tmp, path)

    def parts_ok() -> set[int]:
        return {r.part_number for r in requests_for(setup.emu, "huge.bin", ("UploadMultipart",)) if ok(r)}

    setup.shared.wait_for(lambda: len(parts_ok()) >= 3, timeout=60, what=f">= 3 parts stored\n{d1.tail()}")
    d1.kill9()
    killed_at = time.time()  # the emulator stamps each request with time.time() at its arrival
    setup.emu.clear_faults()
    assert slow.fired >= 3
    time.sleep(1.0)  # let the emulator finish (or drop) the bodies that were in flight at the kill
    before = {
        r.part_number for r in requests_for(setup.emu, "huge.bin", ("UploadMultipart",)) if ok(r) and r.time < killed_at
    }
    assert 3 <= len(before) < 12, before
    assert op_counts(setup.emu, "CompleteMultipartUpload")["huge.bin"] == 0

    d2 = setup.daemon()
    fin = d2.wait_event("upload_finished", timeout=60, pred=lambda e: e.get("key") == "huge.bin")[0]
    resumed = d2.wait_event("multipart_resumed", pred=lambda e: e.get("key") == "huge.bin")[0]
    assert resumed["parts_stored"] == len(before)
    assert fin["parts"] == 12 and fin["parts_resumed"] == len(before)
    after = [r for r in setup.emu.requests if r.key == "huge.bin" and r.time > killed_at]
    assert not any(r.operation == "InitiateMultipartUpload" for r in after), "a new upload was started"
    resent = [r.part_number for r in after if r.operation == "UploadMultipart"]
    assert sorted(resent) == sorted(set(range(12)) - before), (sorted(resent), sorted(before))
    assert_remote_equals(setup.emu, "huge.bin", data)

    from qsyncd.remote.qingstor import QingStorRemote

    remote = QingStorRemote(
        endpoint=setup.emu.url,
        zone="",
        bucket=BUCKET,
        access_key_id=setup.shared.ACCESS_KEY,
        secret_access_key=setup.shared.SECRET,
        connect_timeout=2,
        read_timeout=10,
    )
    try:
        head = remote.head("huge.bin")
    finally:
        close = getattr(remote, "close", None)
        if close:
            close()
    assert head is not None and head.size == len(data)
    assert head.etag == md5_hex(data) == fin["md5"]


def test_sigterm_mid_multipart_checkpoints_then_resumes(setup):
    """SIGTERM during a multipart: exit 0 without starting another part; the next start resumes and completes it."""
    # one part at a time, each held 1 s by the emulator: a part that starts after the SIGTERM is unambiguous
    setup.config(upload={"multipart_threshold": "8MiB", "part_size": "4MiB", "part_concurrency": 1})
    data = os.urandom(48 * 1024 * 1024)
    setup.emu.inject(Fault(latency=1.0, operation="UploadMultipart", count=None))
    d1 = setup.daemon()
    tmp = setup.tmp / "huge.tmp"
    tmp.write_bytes(data)
    os.rename(tmp, setup.root / "huge.bin")

    def parts_ok() -> set[int]:
        return {r.part_number for r in requests_for(setup.emu, "huge.bin", ("UploadMultipart",)) if ok(r)}

    setup.shared.wait_for(lambda: len(parts_ok()) >= 2, timeout=60, what=">= 2 parts stored")
    time.sleep(0.4)  # the next part is now in flight (inside its 1 s of latency)
    stopped_at = time.time()
    assert d1.stop(timeout=60) == 0, d1.tail()
    late = [r.part_number for r in requests_for(setup.emu, "huge.bin", ("UploadMultipart",)) if r.time > stopped_at]
    assert late == [], f"parts {late} were started after SIGTERM"
    assert op_counts(setup.emu, "CompleteMultipartUpload")["huge.bin"] == 0
    stored = parts_ok()
    setup.emu.clear_faults()
    d2 = setup.daemon()
    fin = d2.wait_event("upload_finished", timeout=60, pred=lambda e: e.get("key") == "huge.bin")[0]
    assert fin["parts_resumed"] == len(stored)
    assert_remote_equals(setup.emu, "huge.bin", data)
