"""The native pair hasher (``qsyncd._md5pair``) against hashlib, its self-check, and the fallback."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from typing import Any

import pytest

from qsynctest import require_in_ci
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
        chunk = data[start:start + n]
        lead = native.MD5()
        lead.update(data[:start])
        part = native.MD5()
        pos = 0
        while pos < n:
            step = rnd.choice([1, 63, 64, 65, 4096, 70_000])
            native.update_both(part, lead, chunk[pos:pos + step])
            pos += step
        assert hashlib.md5(chunk).hexdigest() == part.hexdigest()
        assert hashlib.md5(data[:start + n]).digest() == lead.digest()


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
            native.update_both(part, whole, blobs[i][off:off + (1 << 20)])
        results[i] = (part.hexdigest(), whole.hexdigest())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, blob in enumerate(blobs):
        assert (hashlib.md5(blob).hexdigest(), hashlib.md5(b"p" * 128 + blob).hexdigest()) == results[i]


class _OffByOne:
    """A pair hasher that is wrong in one case: the self-check must catch it."""

    class MD5:
        def __init__(self) -> None:
            self.h = hashlib.md5()
            self.n = 0

        def update(self, data: bytes) -> None:
            self.h.update(data)
            self.n += len(data)

        def digest(self) -> bytes:
            d = self.h.digest()
            return bytes([d[0] ^ 1]) + d[1:] if self.n == 56 else d

        def hexdigest(self) -> str:
            return self.digest().hex()

        def copy(self) -> Any:
            return self

    @staticmethod
    def update_both(a: Any, b: Any, data: bytes) -> None:
        a.update(data)
        b.update(data)


def test_self_check_rejects_a_wrong_hasher_and_accepts_hashlib_semantics(native: Any) -> None:
    assert md5pair._agrees_with_hashlib(native)
    assert not md5pair._agrees_with_hashlib(_OffByOne)


def test_fallback_is_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(md5pair, "NATIVE", False)
    a, b = md5pair.new(), md5pair.new()
    assert isinstance(a, type(hashlib.md5()))
    md5pair.update_both(a, b, b"x" * 100)
    assert hashlib.md5(b"x" * 100).digest() == a.digest() == b.digest()
