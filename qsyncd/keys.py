"""What gets uploaded and under which key.

* ``PathFilter`` applies a watch's include/exclude globs (fnmatch-style, case-sensitive). A glob
  without "/" matches a name (the file's, or for excludes any parent directory's too); a glob with
  "/" matches the path relative to the watch root (``*`` also crosses "/" there).
* ``object_key`` maps a relative path (bytes, exactly as the file system gives it) to a key:
  ``prefix`` + the path with "/" separators, byte-exact (NFC and NFD names stay different keys).
  A prefix with ``{mtime:FORMAT}`` fields (``qsyncd.prefixes``) is filled in from the file's mtime,
  so such a key changes when the file's mtime moves to another date.
* ``classify`` says whether a path is a regular file qsyncd can read, without ever opening a FIFO
  or device, and raises ``SkipFile`` with a human message otherwise.
* ``content_type`` guesses a MIME type from the name (built-in table only, so it is the same on
  every machine).
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import mimetypes
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from qsyncd import prefixes
from qsyncd.errors import SkipFile

MAX_KEY_BYTES = 1023


def _compile(globs: Sequence[str]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))


class PathFilter:
    """Include/exclude globs of one watch."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._inc_name = _compile([g for g in include if "/" not in g])
        self._inc_path = _compile([g.lstrip("/") for g in include if "/" in g])
        self._exc_name = _compile([g for g in exclude if "/" not in g])
        self._exc_path = _compile([g.lstrip("/").rstrip("/") for g in exclude if "/" in g])

    def _excluded(self, parts: list[str]) -> bool:
        for i, name in enumerate(parts):
            if self._exc_name is not None and self._exc_name.match(name):
                return True
            if self._exc_path is not None and self._exc_path.match("/".join(parts[: i + 1])):
                return True
        return False

    def wanted(self, relpath: str) -> bool:
        """Whether the file at ``relpath`` (POSIX, relative to the root) is to be uploaded."""
        parts = [p for p in relpath.split("/") if p]
        if not parts:
            return False
        if self._excluded(parts):
            return False
        name_ok = self._inc_name is not None and self._inc_name.match(parts[-1]) is not None
        path_ok = self._inc_path is not None and self._inc_path.match("/".join(parts)) is not None
        return name_ok or path_ok

    def file_wanted(self, name: str, relpath: str) -> bool:
        """``wanted(relpath)`` for a file whose directories all passed ``dir_wanted`` (a scan's walk
        prunes the others): only the file's own name and path are left to match, not every directory
        of its path again. ``relpath`` is clean (no empty components), as the walk builds it."""
        if self._exc_name is not None and self._exc_name.match(name):
            return False
        if self._exc_path is not None and self._exc_path.match(relpath):
            return False
        if self._inc_name is not None and self._inc_name.match(name) is not None:
            return True
        return self._inc_path is not None and self._inc_path.match(relpath) is not None

    def dir_wanted(self, reldir: str) -> bool:
        """Whether a directory may hold wanted files (False: prune it from scans and watches)."""
        parts = [p for p in reldir.split("/") if p and p != "."]
        return not self._excluded(parts)


def _show(raw: bytes) -> str:
    """A file name for humans: undecodable bytes as \\xNN, control characters escaped."""
    return repr(raw.decode("utf-8", "backslashreplace"))


def object_key(prefix: str, relpath_bytes: bytes, mtime: float | None = None) -> str:
    """``prefix`` + ``relpath_bytes`` as a key; raises ``SkipFile`` when no valid key exists.

    ``mtime`` (the file's, in seconds) fills a templated prefix's ``{mtime:FORMAT}`` fields (UTC); it is
    required for such a prefix and ignored otherwise.
    """
    try:
        rel = relpath_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise SkipFile(
            "invalid_utf8",
            f"file name {_show(relpath_bytes)} is not valid UTF-8 and QingStor keys must be: rename it "
            "(e.g. convmv -f latin1 -t utf8 --notest NAME)",
        ) from None
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SkipFile(
            "invalid_name",
            f'path {_show(relpath_bytes)} has an empty, "." or ".." component and cannot be a key',
        )
    key = prefixes.expand(prefix, mtime) + rel
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise SkipFile(
            "key_too_long",
            f"key for {_show(relpath_bytes)} would be {size} bytes, over QingStor's {MAX_KEY_BYTES}: "
            "shorten the name, the directories or the watch prefix",
        )
    return key


def classify(path: Path, root: Path, follow_symlinks: bool) -> os.stat_result:
    """The stat of ``path`` when it is a regular file qsyncd can read; ``SkipFile`` otherwise.

    Never opens a FIFO or device. ``FileNotFoundError`` propagates when ``path`` does not exist.
    """
    st = os.lstat(path)
    target = path
    if stat.S_ISREG(st.st_mode):
        return _regular(path, root, follow_symlinks)
    if stat.S_ISLNK(st.st_mode):
        if not follow_symlinks:
            raise SkipFile(
                "symlink",
                f"{path} is a symbolic link; links are not followed: set follow_symlinks = true in its "
                "[[watch]] to upload what it points to",
            )
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                raise SkipFile(
                    "broken_symlink",
                    f"{path} is a symbolic link to {os.readlink(path)!r}, which does not exist (or loops): "
                    "fix or remove the link",
                ) from None
            raise
        real = Path(os.path.realpath(path))
        real_root = Path(os.path.realpath(root))
        if real != real_root and real_root not in real.parents:
            raise SkipFile(
                "symlink_outside_root",
                f"{path} is a symbolic link to {real}, outside the watched directory {real_root}; "
                "qsyncd only follows links that stay inside it: copy the file in instead",
            )
        target = real
    else:
        _check_parents(path, root, follow_symlinks)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise SkipFile("directory", f"{path} is a directory, not a file")
    if stat.S_ISFIFO(mode):
        raise SkipFile("fifo", f"{path} is a named pipe (FIFO); pipes have no content to upload")
    if stat.S_ISSOCK(mode):
        raise SkipFile("socket", f"{path} is a Unix socket; sockets have no content to upload")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise SkipFile("device", f"{path} is a device node; devices are never uploaded")
    if not stat.S_ISREG(mode):
        raise SkipFile("special", f"{path} is not a regular file (mode {mode:o})")
    return _open_stat(target, path)


def _regular(path: Path, root: Path, follow_symlinks: bool) -> os.stat_result:
    """``classify`` for the common case, a regular file named by its path.

    Whether a symlinked directory on the way leads to it is read back from the kernel (``/proc``'s
    path of an ``O_PATH`` descriptor, which does not open the file), not resolved one component at
    a time; when that path is not the plain one below the root (or ``/proc`` is missing),
    ``_check_parents`` decides, as for every other kind of file, before the file is opened.
    """
    real = _kernel_path(path)
    if real is None or real != _plain_real_path(path, root):
        _check_parents(path, root, follow_symlinks)
    return _open_stat(path, path)


# O_NONBLOCK: if the file was swapped for a FIFO since the lstat, open() must not hang.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
_O_PATH = getattr(os, "O_PATH", 0)


def _open_stat(target: Path, path: Path) -> os.stat_result:
    """Open ``target`` for reading (the proof qsyncd can read it) and return its stat."""
    try:
        fd = os.open(target, _OPEN_FLAGS)
    except PermissionError:
        raise SkipFile("unreadable", _unreadable(path)) from None
    try:
        fst = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(fst.st_mode):
        raise SkipFile("special", f"{path} changed into something that is not a regular file")
    return fst


def _kernel_path(path: Path) -> str | None:
    """The path the kernel resolves ``path`` to, from an ``O_PATH`` descriptor (None: cannot tell)."""
    if not _O_PATH:
        return None
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    finally:
        os.close(fd)


def _plain_real_path(path: Path, root: Path) -> str | None:
    """The real path ``path`` has if no component below ``root`` is a symlink (None: not below it by name).

    The kernel's path of a file has no symlink, ".", ".." or "//" in it, so it can only equal
    this string when ``path`` is the plain one.
    """
    p, r = str(path), str(root)
    below = r if r.endswith("/") else r + "/"
    if not p.startswith(below):
        return None
    return os.path.join(_real_root(r), p[len(below) :])


@functools.lru_cache(maxsize=256)
def _real_root(root: str) -> str:
    """``realpath`` of a watch root, resolved once per process.

    If the root is later swapped for a link to somewhere else, files there no longer match the old
    answer and go to ``_check_parents``, which resolves the root again.
    """
    return os.path.realpath(root)


def _check_parents(path: Path, root: Path, follow_symlinks: bool) -> None:
    """A file reached through a symlinked directory obeys the same rules as a symlinked file."""
    rel = os.path.relpath(path, root)
    if rel == ".." or rel.startswith("../"):
        return  # not below root by name: the caller's business
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real == os.path.join(real_root, rel):
        return
    if not follow_symlinks:
        raise SkipFile(
            "symlink",
            f"{path} is reached through a symbolic link to a directory (it is really {real}); links are "
            "not followed: set follow_symlinks = true in its [[watch]] to upload it",
        )
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise SkipFile(
            "symlink_outside_root",
            f"{path} is reached through a symbolic link and is really {real}, outside the watched "
            f"directory {real_root}; qsyncd only follows links that stay inside it",
        )


def _unreadable(path: Path) -> str:
    return (
        f"{path} is not readable by the user qsyncd runs as (uid {os.geteuid()}): "
        "grant read permission (chmod/chown or an ACL)"
    )


_MIME = mimetypes.MimeTypes()  # built-in table only: the same answer on every machine
_COMPRESSED = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}


def content_type(relpath: str) -> str:
    """The MIME type for a name; compressed files get the compressor's type (``.tar.gz`` -> gzip)."""
    # a leading "/" keeps names like "data:x" from being parsed as URLs
    mime, encoding = _MIME.guess_type("/" + relpath, strict=False)
    if encoding:
        return _COMPRESSED.get(encoding, "application/octet-stream")
    return mime or "application/octet-stream"
