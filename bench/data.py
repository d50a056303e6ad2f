"""Test data for the benchmarks: one large random file and trees of small random files.

Random bytes, so nothing on either side can win by compressing or deduplicating. The mtimes of
generated trees are set into the past so qsyncd treats them as settled (as files that have been
lying there would be) and a scan does not wait out the quiet period for freshly written files.
"""

from __future__ import annotations

import os
from pathlib import Path

MiB = 1 << 20


def large_file(path: Path, size: int) -> Path:
    """Write ``size`` random bytes to ``path`` (1 MiB random blocks, each block different)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(MiB, left)
            fh.write(os.urandom(n))
            left -= n
    _age(path)
    return path


def small_tree(root: Path, files: int, dirs: int, size: int) -> list[Path]:
    """``files`` files of ``size`` random bytes spread over ``dirs`` directories two levels deep."""
    root.mkdir(parents=True, exist_ok=True)
    top = max(1, int(dirs**0.5))
    dir_paths = []
    for i in range(dirs):
        d = root / f"d{i % top:03d}" / f"s{i:05d}"
        d.mkdir(parents=True, exist_ok=True)
        dir_paths.append(d)
    blob = os.urandom(size + files)  # each file a different slice: different content, cheap to make
    out = []
    for i in range(files):
        p = dir_paths[i % dirs] / f"f{i:06d}.bin"
        with open(p, "wb") as fh:
            fh.write(blob[i : i + size])
        _age(p)
        out.append(p)
    return out


def _age(path: Path, seconds: float = 3600.0) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))
