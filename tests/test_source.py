"""Part planning, sections over a descriptor, hashing in part order, the rate limiter and backoff."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from qsyncd import md5pair
from qsyncd.retry import backoff_delay
from qsyncd.source import MAX_PARTS, MIN_PART, RateLimiter, Section, part_and_whole, part_size_for, plan_parts

MiB = 1 << 20


@pytest.mark.parametrize(
    "size, wanted, expected",
    [
        (0, 16 * MiB, 16 * MiB),
        (100, 1 * MiB, MIN_PART),  # never below the 4 MiB minimum
        (16 * MiB * MAX_PARTS, 16 * MiB, 16 * MiB),  # exactly 10,000 parts
        (16 * MiB * MAX_PARTS + 1, 16 * MiB, 17 * MiB),  # grown to a whole MiB
        (1 << 40, 16 * MiB, 105 * MiB),  # 1 TiB
    ],
)
def test_part_size_keeps_within_10000_parts(size: int, wanted: int, expected: int) -> None:
    """The part size grows so that no file needs more than 10,000 parts."""
    got = part_size_for(size, wanted)
    assert expected == got
    assert len(plan_parts(size, got)) <= MAX_PARTS


def test_part_size_refuses_impossible_files() -> None:
    """A file larger than 10,000 x 5 GiB cannot be uploaded and says so."""
    with pytest.raises(ValueError, match="10,000 parts"):
        part_size_for(10_001 * (5 << 30), 16 * MiB)


def test_plan_covers_the_file_exactly() -> None:
    """Parts are numbered from 0, contiguous, and add up to the size."""
    plan = plan_parts(10 * MiB + 3, 4 * MiB)
    assert [(0, 0, 4 * MiB), (1, 4 * MiB, 4 * MiB), (2, 8 * MiB, 2 * MiB + 3)] == plan


def test_section_reads_only_its_range(tmp_path: Path) -> None:
    """A section yields exactly its bytes, in bounded blocks, whatever the reader asks for."""
    data = os.urandom(3 * MiB + 17)
    f = tmp_path / "f"
    f.write_bytes(data)
    fd = os.open(f, os.O_RDONLY)
    try:
        sec = Section(fd, MiB + 5, 2 * MiB)
        assert 2 * MiB == len(sec)
        chunks = []
        while True:
            c = sec.read(10 * MiB)
            if not c:
                break
            assert len(c) <= MiB
            chunks.append(c)
        assert data[MiB + 5 : 3 * MiB + 5] == b"".join(chunks)
        whole = md5pair.new()
        parts = [part_and_whole(fd, off, ln, whole) for _, off, ln in plan_parts(len(data), MiB)]
        assert hashlib.md5(data).hexdigest() == whole.hexdigest()
        assert hashlib.md5(data[:MiB]).hexdigest() == parts[0]
    finally:
        os.close(fd)


def test_rate_limiter_paces_by_the_clock() -> None:
    """Sending 10x the rate takes about 10 s of (fake) sleeping, never less than the budget allows."""
    t = [0.0]
    slept = []

    def sleep(s: float) -> None:
        slept.append(s)
        t[0] += s

    lim = RateLimiter(4 * MiB, clock=lambda: t[0], sleep=sleep)
    for _ in range(40):
        lim.consume(MiB)
    # 40 MiB at 4 MiB/s with a 1 MiB burst: at least 9.75 s of waiting
    assert t[0] >= (40 * MiB - lim.burst) / lim.rate - 1e-9
    assert t[0] < 11


@pytest.mark.parametrize("attempt, lo, hi", [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (10, 30.0, 60.0)])
def test_backoff_doubles_with_jitter_and_a_cap(attempt: int, lo: float, hi: float) -> None:
    """Backoff doubles per attempt, is jittered into [base/2, base], and is capped."""
    assert lo == backoff_delay(attempt, 1.0, 60.0, rand=lambda: 0.0)
    assert hi == backoff_delay(attempt, 1.0, 60.0, rand=lambda: 1.0)
