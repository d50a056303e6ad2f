"""One daemon per state directory: an exclusive ``flock`` on ``<state dir>/qsyncd.lock`` holding its pid."""

from __future__ import annotations

import errno
import fcntl
import os
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from qsyncd.errors import StateError, StateLockedError

LOCK_NAME = "qsyncd.lock"


def ensure_dir(dir: Path) -> None:
    try:
        dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StateError(
            f"state directory {dir} exists but is not a directory: move it away or set [state] dir"
        ) from None
    except OSError as exc:
        raise StateError(
            f"cannot create state directory {dir}: {exc.strerror}; create it (mode 0700) for the user "
            "qsyncd runs as, or set [state] dir"
        ) from None
    if not dir.is_dir():
        raise StateError(f"state directory {dir} exists but is not a directory: move it away or set [state] dir")


class StateLock:
    """An exclusive, non-blocking ``flock`` on ``<dir>/qsyncd.lock`` holding our pid."""

    def __init__(self, dir: Path) -> None:
        self.dir = Path(dir)
        self.path = self.dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``StateLockedError`` naming the holder's pid."""
        if self._fd is not None:
            return
        ensure_dir(self.dir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open lock file {self.path}: {exc.strerror}; is {self.dir} writable?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"pid {holder}" if holder else "pid unknown"
                raise StateLockedError(
                    f"another qsyncd ({who}) is using {self.dir}: stop it first, or give this instance "
                    "its own [state] dir"
                ) from None
            raise StateError(f"cannot lock {self.path}: {exc.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; removing it would race with the next holder)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
