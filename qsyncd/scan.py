"""Walk a watch root and list what is there: the reconciliation that makes lost events harmless.

The walk uses ``os.scandir`` (one ``lstat`` per entry), prunes excluded directories, never
follows a directory symlink unless told to, and never leaves the root or loops.
"""

from __future__ import annotations

import os
import stat as statmod
from collections.abc import Callable, Iterator

from qsyncd.keys import PathFilter


def relpath(root: str, path: str) -> str:
    """``path`` relative to ``root``, with "/" separators (paths under ``root`` without a string
    round trip through ``os.path.relpath``, which normalises both paths on every call)."""
    base = root.rstrip("/")
    if path.startswith(base) and path[len(base) : len(base) + 1] == "/" and "/." not in path and "//" not in path:
        return path[len(base) + 1 :]
    return os.path.relpath(path, root).replace(os.sep, "/")


def walk(
    root: str,
    start: str,
    *,
    recursive: bool,
    follow_symlinks: bool,
    filt: PathFilter,
    beat: Callable[[], None] = lambda: None,
    on_error: Callable[[str, OSError], None] = lambda p, e: None,
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield ``(path, lstat)`` for every non-directory entry under ``start`` (inside ``root``)."""
    for directory, files in walk_dirs(
        root, start, recursive=recursive, follow_symlinks=follow_symlinks, filt=filt, beat=beat, on_error=on_error
    ):
        for name, _rel, st in files:
            yield os.path.join(directory, name), st


def walk_dirs(
    root: str,
    start: str,
    *,
    recursive: bool,
    follow_symlinks: bool,
    filt: PathFilter,
    beat: Callable[[], None] = lambda: None,
    on_error: Callable[[str, OSError], None] = lambda p, e: None,
) -> Iterator[tuple[str, list[tuple[str, str, os.stat_result]]]]:
    """Yield ``(directory, [(name, relpath, lstat), ...])`` for every directory under ``start`` (inside
    ``root``) that holds non-directory entries: one directory at a time, so a scan can compare it with
    the ledger's records of that directory alone (memory bounded by the largest directory)."""
    real_root = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    stack = [start]
    while stack:
        d = stack.pop()
        beat()
        try:
            st = os.stat(d)
        except OSError as err:
            on_error(d, err)
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            it = os.scandir(d)
        except OSError as err:
            on_error(d, err)
            continue
        # the relative path of an entry is the directory's plus its name (one relpath per directory)
        rel_dir = relpath(root, d)
        rel_base = "" if rel_dir in ("", ".") else rel_dir + "/"
        files: list[tuple[str, str, os.stat_result]] = []
        with it:
            for entry in it:
                try:
                    est = entry.stat(follow_symlinks=False)
                except OSError as err:
                    on_error(entry.path, err)
                    continue
                rel = rel_base + entry.name
                if statmod.S_ISDIR(est.st_mode):
                    if recursive and filt.dir_wanted(rel):
                        stack.append(entry.path)
                    continue
                if statmod.S_ISLNK(est.st_mode) and follow_symlinks and recursive:
                    try:
                        target = os.path.realpath(entry.path)
                        tst = os.stat(target)
                    except OSError:
                        files.append((entry.name, rel, est))
                        continue
                    if statmod.S_ISDIR(tst.st_mode):
                        inside = target == real_root or target.startswith(real_root + os.sep)
                        if inside and filt.dir_wanted(rel):
                            stack.append(entry.path)
                        continue
                files.append((entry.name, rel, est))
        if files:
            yield d, files
