"""The native pair hasher (``qsyncd._md5pair``) against hashlib, its self-check, and the fallback."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from qsynctest import BUCKET, require_in_ci, write_config

from qsyncd import md5pair


@pytest.fixture
def native() -> Any:
    if md5pair._md5pair is None:
        require_in_ci("qsyncd._md5pair was not built (no C compiler when qsyncd was installed)")
    assert md5pair.NATIVE, "the extension is built but disagreed with hashlib at import"
    return md5pair._md5pair


def test_random_lengths_and_splits_equal_hashlib(native: Any) -> None:
    """One MD5 and both of a pair equal hashlib's for random data cut at random places, with the
    pair starting fresh, aligned but in different states (a part beside the whole file at a part
    boundary: the interleaved path) and misaligned."""
    rnd = random.Random(5)
    data = os.urandom(600_000)
    for _ in range(300):
        start = rnd.choice([0, 64 * rnd.randrange(1, 4000), rnd.randrange(1, 200)])
        n = rnd.choice([rnd.randrange(0, 200), rnd.randrange(0, len(data) - start)])
        chunk = data[start : start + n]
        lead = native.MD5()
        lead.update(data[:start])
        part = native.MD5()
        pos = 0
        while pos < n:
            step = rnd.choice([1, 63, 64, 65, 4096, 70_000])
            native.update_both(part, lead, chunk[pos : pos + step])
            pos += step
        assert hashlib.md5(chunk).hexdigest() == part.hexdigest()
        assert hashlib.md5(data[: start + n]).digest() == lead.digest()


def test_digest_does_not_end_the_hash_and_copy_is_independent(native: Any) -> None:
    h = native.MD5()
    h.update(b"abc")
    assert hashlib.md5(b"abc").hexdigest() == h.hexdigest() == h.hexdigest()
    c = h.copy()
    c.update(b"def")
    h.update(memoryview(bytearray(b"xyz")))
    assert (hashlib.md5(b"abcdef").digest(), hashlib.md5(b"abcxyz").digest()) == (c.digest(), h.digest())
    with pytest.raises(ValueError):
        native.update_both(h, h, b"data")  # the same object twice would hash the bytes twice
    with pytest.raises(TypeError):
        native.update_both(h, hashlib.md5(), b"data")


def test_threads_hash_in_parallel_without_mixing(native: Any) -> None:
    """The GIL is released while hashing: four threads, each with its own pair, get the right sums."""
    blobs = [os.urandom(3 << 20) for _ in range(4)]
    results: dict[int, tuple[str, str]] = {}

    def work(i: int) -> None:
        part, whole = native.MD5(), native.MD5()
        whole.update(b"p" * 128)  # a part boundary ahead: the interleaved path
        for off in range(0, len(blobs[i]), 1 << 20):
            native.update_both(part, whole, blobs[i][off : off + (1 << 20)])
        results[i] = (part.hexdigest(), whole.hexdigest())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, blob in enumerate(blobs):
        assert (hashlib.md5(blob).hexdigest(), hashlib.md5(b"p" * 128 + blob).hexdigest()) == results[i]


# A pair hasher that is right except for 56-byte inputs: the import self-check must reject it.
# Used in-process (exec'd into a module) and, through sitecustomize, in a daemon subprocess.
_BROKEN_HASHER = """
import hashlib

class MD5:
    def __init__(self):
        self.h, self.n = hashlib.md5(), 0
    def update(self, data):
        self.h.update(data)
        self.n += len(data)
    def digest(self):
        d = self.h.digest()
        return bytes([d[0] ^ 1]) + d[1:] if self.n == 56 else d
    def hexdigest(self):
        return self.digest().hex()
    def copy(self):
        return self

def update_both(a, b, data):
    a.update(data)
    b.update(data)
"""
_SHIM = (
    _BROKEN_HASHER
    + """
import sys, types
module = types.ModuleType("qsyncd._md5pair")
module.MD5, module.update_both = MD5, update_both
sys.modules["qsyncd._md5pair"] = module
"""
)


def _broken_hasher() -> Any:
    module = types.ModuleType("broken_md5pair")
    exec(_BROKEN_HASHER, module.__dict__)
    return module


def test_self_check_rejects_a_wrong_hasher_and_accepts_hashlib_semantics(native: Any) -> None:
    assert md5pair._agrees_with_hashlib(native)
    assert not md5pair._agrees_with_hashlib(_broken_hasher())


def test_fallback_is_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(md5pair, "NATIVE", False)
    a, b = md5pair.new(), md5pair.new()
    assert isinstance(a, type(hashlib.md5()))
    md5pair.update_both(a, b, b"x" * 100)
    assert hashlib.md5(b"x" * 100).digest() == a.digest() == b.digest()


def test_daemon_with_a_rejected_pair_hasher_warns_and_uploads_with_hashlib(
    tmp_path: Path, emulator: Any, daemon_factory: Any
) -> None:
    """A built extension that disagrees with hashlib is not used: the daemon says so at start
    (``md5_pair_rejected``, ``md5_paired=False``) and a multipart upload still gets ETag == MD5."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(_SHIM)
    drop = tmp_path / "drop"
    drop.mkdir()
    cfg = write_config(
        tmp_path / "q.toml",
        endpoint=emulator.url,
        watch=drop,
        state=tmp_path / "state",
        upload={"multipart_threshold": "8MiB", "part_size": "4MiB"},
    )
    d = daemon_factory(cfg, env={"PYTHONPATH": str(shim)}).start()
    d.wait_event("daemon_ready")
    assert [False] == [e["md5_paired"] for e in d.events("daemon_starting")]
    assert 1 == len(d.events("md5_pair_rejected"))
    data = os.urandom(9 * (1 << 20) + 3)
    (drop / "big.bin").write_bytes(data)
    ev = d.wait_event("upload_finished")[0]
    assert (3, hashlib.md5(data).hexdigest()) == (ev["parts"], ev["md5"])
    assert data == emulator.object_bytes(BUCKET, "big.bin")
    assert 0 == d.stop()
