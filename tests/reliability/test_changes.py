"""Files that change during upload: the bucket never holds a mix of two versions and ends equal to the file."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from relsupport import FIGURES, Rig, bucket_objects, local_tree

MiB = 1 << 20
KEPT = ".qsyncd-kept/"  # on_change = "keep" (the default) keeps replaced versions as KEPT + key + "@<time>-<etag>"


def original_key(key: str) -> str:
    """The key a kept version was kept from (the key itself for any other object)."""
    return key[len(KEPT) :].rsplit("@", 1)[0] if key.startswith(KEPT) else key


class VersionWatch:
    """Polls the bucket and checks every object it sees is byte-identical to some complete local version."""

    def __init__(self, emu_root: Path) -> None:
        self.emu_root = emu_root
        self.versions: dict[str, set[str]] = {}
        self.bad: list[str] = []
        self.seen = 0
        self._stop = threading.Event()
        self._checked: set[tuple[str, str]] = set()
        self._t = threading.Thread(target=self._run, daemon=True)

    def version(self, key: str, data: bytes) -> bytes:
        self.versions.setdefault(key, set()).add(hashlib.md5(data).hexdigest())
        return data

    def start(self) -> VersionWatch:
        self._t.start()
        return self

    def check_once(self) -> None:
        for key, stored in bucket_objects(self.emu_root).items():
            if (key, stored.name) in self._checked:
                continue
            try:
                digest = hashlib.md5(stored.read_bytes()).hexdigest()
            except OSError:
                continue  # replaced meanwhile: the next poll sees the new one
            self._checked.add((key, stored.name))
            self.seen += 1
            if digest not in self.versions.get(original_key(key), set()):  # a kept version was complete too
                self.bad.append(f"{key}: bucket holds bytes that were never a complete local version")

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.check_once()

    def stop(self) -> None:
        self._stop.set()
        self._t.join(timeout=5)
        self.check_once()


def wait_started(d: Any, key: str, attempt_min: int = 1) -> None:
    d.wait_event("upload_started", timeout=30, pred=lambda e: e.get("key") == key, count=attempt_min)


def test_files_changing_during_upload_never_leave_a_mix(rig: Rig, seed: int) -> None:
    """Append, truncate, rename-over and delete during upload: only whole versions ever reach the bucket."""
    rng = random.Random(seed)
    rig.write_config(
        upload={
            "multipart_threshold": "5MiB",
            "part_size": "4MiB",
            "part_concurrency": 2,
            "max_bytes_per_second": "3MiB",
            "concurrency": 2,
        },
        settle={"quiet_seconds": 0.3},
    )
    watch = VersionWatch(rig.emu_root).start()
    d = rig.daemon()
    d.wait_event("daemon_ready", timeout=30)
    t = rig.tree
    try:
        # 1. appended while a multipart upload runs
        big = t / "append.bin"
        v1 = watch.version("append.bin", rng.randbytes(9 * MiB))
        big.write_bytes(v1)
        wait_started(d, "append.bin")
        time.sleep(0.3)
        extra = rng.randbytes(MiB + 123)
        with open(big, "ab") as f:
            f.write(extra)
        watch.version("append.bin", v1 + extra)

        # 2. truncated while a single PUT runs
        tr = t / "truncate.bin"
        v1 = watch.version("truncate.bin", rng.randbytes(4 * MiB))
        tr.write_bytes(v1)
        wait_started(d, "truncate.bin")
        with open(tr, "r+b") as f:  # as `truncate -s` does: the close tells qsyncd the write is over
            f.truncate(1000)
        watch.version("truncate.bin", v1[:1000])

        # 3. replaced by rename while it uploads (the new version was written under an excluded .tmp name)
        rp = t / "replace.bin"
        rp.write_bytes(watch.version("replace.bin", rng.randbytes(4 * MiB + 7)))
        wait_started(d, "replace.bin")
        tmp = t / "replace.bin.tmp"
        tmp.write_bytes(watch.version("replace.bin", rng.randbytes(3 * MiB + 5)))
        os.rename(tmp, rp)

        # 4. deleted before its upload (while settling): never uploaded
        gone = t / "gone-early.bin"
        gone.write_bytes(watch.version("gone-early.bin", rng.randbytes(1000)))
        gone.unlink()

        # 5. deleted during its upload: either absent, or one complete version
        dl = t / "deleted-during.bin"
        dl.write_bytes(watch.version("deleted-during.bin", rng.randbytes(6 * MiB)))
        wait_started(d, "deleted-during.bin")
        dl.unlink()

        # 6. rewritten in place (same size, different bytes) during a multipart upload
        rw = t / "rewrite.bin"
        v1 = watch.version("rewrite.bin", rng.randbytes(9 * MiB))
        rw.write_bytes(v1)
        wait_started(d, "rewrite.bin")
        time.sleep(0.2)
        v2 = bytearray(v1)
        v2[5 * MiB : 5 * MiB + 10] = rng.randbytes(10)
        with open(rw, "r+b") as f:
            f.seek(5 * MiB)
            f.write(bytes(v2[5 * MiB : 5 * MiB + 10]))
        watch.version("rewrite.bin", bytes(v2))

        diff = rig.converge(timeout=120, daemon=d, allow_extra=True)
        assert diff.equal
    finally:
        watch.stop()
    remote = bucket_objects(rig.emu_root)
    assert "gone-early.bin" not in remote
    current = {k for k in remote if not k.startswith(KEPT)}
    assert current - set(local_tree(rig.tree)) <= {"deleted-during.bin"}, sorted(remote)
    assert not watch.bad, watch.bad
    assert watch.seen >= len(local_tree(rig.tree))
    # The changes were noticed as changes (not silently uploaded as a mix).
    assert d.events("file_changed") or d.events("upload_failed"), d.tail()
    # No multipart upload is left open for the files that changed.
    d.stop()
    from qsyncd.state import Ledger

    ledger = Ledger(rig.state, readonly=True)
    try:
        assert ledger.multiparts() == []
    finally:
        ledger.close()
    FIGURES["faults_injected"] += 6  # six kinds of local change
