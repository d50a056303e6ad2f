"""qsyncd.scan: the walk lists every non-directory under a root, prunes excluded directories and never
follows a symlink out of the root or round a loop; relpath gives the key-side path."""

from __future__ import annotations

import os
from pathlib import Path

from qsyncd.keys import PathFilter
from qsyncd.scan import relpath, walk, walk_dirs

ALL = PathFilter(["*"], [])


def listed(root: Path, *, recursive: bool = True, follow: bool = False, filt: PathFilter = ALL) -> list[str]:
    out = walk(str(root), str(root), recursive=recursive, follow_symlinks=follow, filt=filt)
    return sorted(relpath(str(root), path) for path, _st in out)


def make(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())


def test_relpath_is_posix_and_relative() -> None:
    """The fast path and the os.path fallback agree: a trailing slash on the root or a ``..`` do not matter."""
    assert "a/b.txt" == relpath("/srv/r", "/srv/r/a/b.txt")
    assert "a/b.txt" == relpath("/srv/r/", "/srv/r/a/b.txt")
    assert "b.txt" == relpath("/srv/r", "/srv/r/a/../b.txt")
    assert "../rx/c" == relpath("/srv/r", "/srv/rx/c")  # a sibling with the root as prefix is not inside


def test_walk_lists_files_with_their_lstat(tmp_path: Path) -> None:
    """Every file at any depth, once, with the stat of the entry itself (size is the file's)."""
    make(tmp_path, "top.txt", "a/one.bin", "a/b/c/deep.txt")
    seen = dict(walk(str(tmp_path), str(tmp_path), recursive=True, follow_symlinks=False, filt=ALL))
    assert {str(tmp_path / r) for r in ("top.txt", "a/one.bin", "a/b/c/deep.txt")} == set(seen)
    assert len(b"a/b/c/deep.txt") == seen[str(tmp_path / "a/b/c/deep.txt")].st_size


def test_not_recursive_stays_at_the_top(tmp_path: Path) -> None:
    make(tmp_path, "top.txt", "a/one.bin")
    assert ["top.txt"] == listed(tmp_path, recursive=False)


def test_excluded_directories_are_pruned(tmp_path: Path) -> None:
    """An excluded directory is not entered; files with an excluded name elsewhere are still yielded (the
    walk filters directories; the file filter is the caller's)."""
    make(tmp_path, "keep/a.txt", "build/out.o", "build/sub/x.o", "cache/tmp/t", "cache/keep.txt")
    filt = PathFilter(["*"], ["build", "cache/tmp"])
    assert ["cache/keep.txt", "keep/a.txt"] == listed(tmp_path, filt=filt)


def test_a_symlink_is_listed_not_followed_by_default(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make(root, "d/inside.txt")
    (root / "link-to-d").symlink_to(root / "d")
    (root / "link-to-file").symlink_to(root / "d/inside.txt")
    assert ["d/inside.txt", "link-to-d", "link-to-file"] == listed(root)


def test_followed_symlinks_never_leave_the_root_or_loop(tmp_path: Path) -> None:
    """With follow_symlinks a link to a directory inside the root may be walked, but each directory once (an
    alias and a loop back to the root are not walked again); a link to a directory outside is skipped; a
    dangling link is yielded as itself."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    make(root, "d/inside.txt")
    make(outside, "secret.txt")
    (root / "alias").symlink_to(root / "d")
    (root / "d" / "loop").symlink_to(root)
    (root / "out").symlink_to(outside)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    got = listed(root, follow=True)
    assert "dangling" in got
    assert not [p for p in got if "secret" in p or p.startswith("out")]
    # d is one directory: walked once, by whichever path the walk met first
    assert got in (["alias/inside.txt", "dangling"], ["d/inside.txt", "dangling"]), got


def test_unreadable_directory_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    """on_error gets the path and the OSError; the rest of the tree is still listed."""
    make(tmp_path, "ok/a.txt")
    gone = str(tmp_path / "vanished")
    errors: list[tuple[str, int]] = []
    beats: list[int] = []
    out = walk(
        str(tmp_path),
        gone,
        recursive=True,
        follow_symlinks=False,
        filt=ALL,
        beat=lambda: beats.append(1),
        on_error=lambda p, e: errors.append((p, e.errno or 0)),
    )
    assert [] == list(out)
    assert [(gone, 2)] == errors  # ENOENT
    assert [1] == beats  # one beat per directory visited
    assert ["ok/a.txt"] == listed(tmp_path)


def test_fifo_and_other_non_directories_are_yielded(tmp_path: Path) -> None:
    """The walk yields every non-directory; whether it can be uploaded is decided later (a FIFO is skipped)."""
    os.mkfifo(tmp_path / "pipe")
    make(tmp_path, "f.txt")
    assert ["f.txt", "pipe"] == listed(tmp_path)


def test_walk_dirs_gives_each_directory_once_with_names_and_relpaths(tmp_path: Path) -> None:
    """One item per directory holding files (a scan reads the ledger per item), each entry's relpath the same
    as relpath() gives, also when the walk starts below the root."""
    make(tmp_path, "top.txt", "a/one.bin", "a/two.bin", "a/b/c/deep.txt")
    (tmp_path / "empty").mkdir()
    got = {
        d: sorted(n for n, _r, _s in fs)
        for d, fs in walk_dirs(str(tmp_path), str(tmp_path), recursive=True, follow_symlinks=False, filt=ALL)
    }
    assert {
        str(tmp_path): ["top.txt"],
        str(tmp_path / "a"): ["one.bin", "two.bin"],
        str(tmp_path / "a/b/c"): ["deep.txt"],
    } == got
    below = list(walk_dirs(str(tmp_path), str(tmp_path / "a" / "b"), recursive=True, follow_symlinks=False, filt=ALL))
    assert [(str(tmp_path / "a/b/c"), "deep.txt", "a/b/c/deep.txt")] == [(d, n, r) for d, fs in below for n, r, _ in fs]
