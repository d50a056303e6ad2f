"""Send one settled file to the remote, exactly once and never as a mix of two versions.

``Uploader.upload()`` is the whole life of one file:

1. The ledger already holds this path with the same size, mtime and inode: nothing to do, no request.
2. Otherwise HEAD the key (or, when given a ``RemoteIndex``, use a fresh listing of the key's
   directory instead). Same size and ETag == MD5 of the file: record it and skip.
3. Small files: one PUT with Content-MD5. Large files: multipart with parts sent in parallel,
   each with Content-MD5; the uploading thread hashes the whole file in part order (together with
   each part's MD5 in one pass, ``md5pair``), and that MD5 is sent as the ETag on Complete, so
   the remote ETag is always the MD5 of the bytes.
4. The upload id is in the ledger before the first part is sent. After a crash the upload
   resumes: ListMultipart says which parts are stored, and a stored part whose size and ETag
   match the MD5 of the local bytes is not sent again.
5. Content-MD5 on every request means the server never stores bytes that differ from what was
   hashed. If the file changes while it is read, the upload is aborted and the file goes back
   to settle (``FileChanged``); it is uploaded again once it holds still.
"""

from __future__ import annotations

import os
import socket
import stat as statmod
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from qsyncd import md5pair
from qsyncd.errors import BadRequest, FileChanged, NotFound, PermanentError, RemoteError, TransientError
from qsyncd.keys import content_type as guess_content_type
from qsyncd.remote.base import ObjectInfo, PartInfo, Remote
from qsyncd.remoteindex import RemoteIndex
from qsyncd.retry import backoff_delay
from qsyncd.settle import FileSig
from qsyncd.source import (
    RateLimiter,
    Section,
    b64,
    feed_section,
    md5_section,
    part_and_whole,
    part_size_for,
    plan_parts,
)
from qsyncd.state import FileRecord, Ledger, MultipartRecord, PartRecord


class Interrupted(Exception):
    """The daemon is stopping; the multipart upload stays recorded and resumes at the next start."""


@dataclass(frozen=True)
class UploadSettings:
    """What the uploader needs from ``[upload]``."""

    multipart_threshold: int = 64 << 20
    part_size: int = 16 << 20
    part_concurrency: int = 4
    storage_class: str | None = None
    part_retries: int = 4
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 30.0
    store_metadata: bool = True


@dataclass
class Outcome:
    """What happened to one file. ``action`` is ``uploaded`` or ``skipped``."""

    action: str
    key: str
    path: str
    bytes: int = 0
    bytes_sent: int = 0
    parts: int = 0
    parts_resumed: int = 0
    reason: str = ""
    md5: str = ""
    seconds: float = 0.0
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def sig_of(st: os.stat_result) -> FileSig:
    return FileSig.from_stat(st)


def _same_identity(rec: FileRecord | MultipartRecord, key: str, st: os.stat_result) -> bool:
    return rec.key == key and rec.size == st.st_size and rec.mtime_ns == st.st_mtime_ns and rec.ino == st.st_ino


class Uploader:
    """Uploads files through a ``Remote`` and keeps the ledger true. Safe to call from many threads."""

    def __init__(
        self,
        remote: Remote,
        ledger: Ledger,
        settings: UploadSettings,
        *,
        log: Any,
        limiter: RateLimiter | None = None,
        hostname: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[int], None] | None = None,
        on_part_retry: Callable[[], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        index: RemoteIndex | None = None,
    ) -> None:
        self.remote = remote
        self.index = index  # recent listings that stand in for a HEAD (None: always HEAD)
        self.ledger = ledger
        self.s = settings
        self.log = log
        self.limiter = limiter
        self.hostname = hostname or socket.gethostname()
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.on_progress = on_progress
        self.on_part_retry = on_part_retry
        self.should_stop = should_stop
        self._progress: dict[int, Callable[[int], None] | None] = {}
        self._parts_pool = ThreadPoolExecutor(
            max_workers=max(1, settings.part_concurrency * 2), thread_name_prefix="part"
        )
        self._sem = threading.BoundedSemaphore(max(1, settings.part_concurrency))

    def close(self) -> None:
        self._parts_pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ entry point
    def already_uploaded(self, path: str, key: str, st: os.stat_result) -> bool:
        rec = self.ledger.get(path)
        return rec is not None and _same_identity(rec, key, st)

    def upload(
        self,
        path: str,
        key: str,
        *,
        delete_after: bool = False,
        check_remote: bool = True,
        source: str | None = None,
        progress: Callable[[int], None] | None = None,
        ledger_checked: bool = False,
    ) -> Outcome:
        """Upload ``path`` as ``key``. Raises ``FileChanged``, ``RemoteError`` or ``OSError``.

        ``source``: the file to read instead of ``path`` when ``path`` is a symlink the caller has
        resolved and vetted (follow_symlinks); ``path`` stays the ledger's name for it.
        ``ledger_checked``: the caller has just seen ``already_uploaded()`` say no for this file.
        """
        t0 = self.clock()
        try:
            fd = os.open(source or path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise
        self._progress[fd] = progress or self.on_progress  # called with every block read for this file
        try:
            st = os.fstat(fd)
            if not statmod.S_ISREG(st.st_mode):
                raise FileChanged(f"{path} is no longer a regular file")
            if not ledger_checked and self.already_uploaded(path, key, st):
                out = Outcome("skipped", key, path, bytes=st.st_size, reason="ledger_match")
                if delete_after:  # e.g. a crash between upload and unlink: verify again, then delete
                    rec = self.ledger.get(path)
                    info = self.remote.head(key)
                    if rec is not None and info is not None and (info.size, info.etag) == (rec.size, rec.md5):
                        out.deleted = self._delete_if_unchanged(path, st, key)
                return out
            mp = self.ledger.get_multipart(path)
            if mp is not None and not _same_identity(mp, key, st):
                self._abort(mp.key, mp.upload_id, reason="file_changed_since_upload_started")
                mp = None
            try:
                if mp is not None:
                    out = self._multipart(fd, path, key, st, resume=mp, t0=t0)
                else:
                    out = self._fresh(fd, path, key, st, check_remote=check_remote, t0=t0)
            finally:
                if self.index is not None:  # the object may have changed: no earlier listing speaks for it
                    self.index.forget(key)
            if delete_after:
                out.deleted = self._delete_if_unchanged(path, st, key)
            return out
        finally:
            self._progress.pop(fd, None)
            os.close(fd)

    def _fresh(
        self, fd: int, path: str, key: str, st: os.stat_result, *, check_remote: bool, t0: float, use_index: bool = True
    ) -> Outcome:
        size = st.st_size
        multipart = size >= self.s.multipart_threshold and size > 0
        pre: tuple[str, list[str]] | None = None
        if check_remote:
            info = self._remote_info(key, use_index)
            if info is not None and info.size == size:
                pre = self._hash_all(fd, st, multipart)
                if info.etag == pre[0]:
                    self._record(path, key, st, pre[0])
                    return Outcome(
                        "skipped", key, path, bytes=size, reason="remote_match", md5=pre[0], seconds=self.clock() - t0
                    )
        if multipart:
            return self._multipart(fd, path, key, st, resume=None, t0=t0, prehashed=pre)
        return self._put(fd, path, key, st, t0=t0, prehashed=pre)

    def _remote_info(self, key: str, use_index: bool) -> ObjectInfo | None:
        """What is stored under ``key``: from a fresh listing of its directory if one covers it, else HEAD."""
        if use_index and self.index is not None:
            covered, info = self.index.lookup(key)
            if covered:
                return info
        return self.remote.head(key)

    # ------------------------------------------------------------------ hashing
    def _hash_all(self, fd: int, st: os.stat_result, multipart: bool) -> tuple[str, list[str]]:
        part_md5s: list[str] = []
        if multipart:
            whole = md5pair.new()
            psize = part_size_for(st.st_size, self.s.part_size)
            for _, off, length in plan_parts(st.st_size, psize):
                part_md5s.append(part_and_whole(fd, off, length, whole))
        else:
            whole = md5_section(fd, 0, st.st_size)
        self._check_unchanged(fd, st)
        return whole.hexdigest(), part_md5s

    def _check_unchanged(self, fd: int, st: os.stat_result) -> None:
        now = os.fstat(fd)
        if sig_of(now) != sig_of(st):
            raise FileChanged("the file changed while it was being read")

    # ------------------------------------------------------------------ single PUT
    def _put(
        self, fd: int, path: str, key: str, st: os.stat_result, *, t0: float, prehashed: tuple[str, list[str]] | None
    ) -> Outcome:
        size = st.st_size
        if prehashed is None:
            digest = md5_section(fd, 0, size)
            self._check_unchanged(fd, st)
            md5_hex, md5_b64 = digest.hexdigest(), b64(digest.digest())
        else:
            md5_hex = prehashed[0]
            md5_b64 = b64(bytes.fromhex(md5_hex))
        body = Section(fd, 0, size, limiter=self.limiter, on_read=self._progress.get(fd))
        try:
            etag = self.remote.put(
                key,
                body,
                size,
                md5_b64,
                content_type=guess_content_type(key),
                metadata=self._metadata(st),
                storage_class=self.s.storage_class,
            )
        except BadRequest as err:
            if err.code in ("bad_digest", "incomplete_body"):  # incomplete_body: the file shrank while read
                raise FileChanged(
                    f"the file changed while it was being uploaded ({err.code}); it will be sent again"
                ) from err
            raise
        if etag and etag != md5_hex:
            raise TransientError(
                f"the server stored {key} with ETag {etag}, expected {md5_hex}",
                code="etag_mismatch",
                operation="PutObject",
                key=key,
            )
        self._record(path, key, st, md5_hex)
        return Outcome(
            "uploaded", key, path, bytes=size, bytes_sent=size, parts=1, md5=md5_hex, seconds=self.clock() - t0
        )

    # ------------------------------------------------------------------ multipart
    def _multipart(
        self,
        fd: int,
        path: str,
        key: str,
        st: os.stat_result,
        *,
        resume: MultipartRecord | None,
        t0: float,
        prehashed: tuple[str, list[str]] | None = None,
    ) -> Outcome:
        size = st.st_size
        stored: dict[int, PartInfo] = {}
        if resume is not None:
            psize = resume.part_size
            upload_id = resume.upload_id
            try:
                stored = {p.part_number: p for p in self.remote.list_parts(key, upload_id)}
            except NotFound:
                self.log.info("multipart_restarted", key=key, path=path, upload_id=upload_id, reason="upload_gone")
                self.ledger.finish_multipart(upload_id)
                # The upload may be gone because its Complete succeeded just before a crash: HEAD the key
                # (and skip on ETag == MD5) before sending every part again.
                return self._fresh(fd, path, key, st, check_remote=True, t0=t0, use_index=False)
        if resume is None:
            psize = part_size_for(size, self.s.part_size)
            upload_id = self.remote.initiate(
                key,
                content_type=guess_content_type(key),
                metadata=self._metadata(st),
                storage_class=self.s.storage_class,
            )
            self.ledger.start_multipart(
                MultipartRecord(
                    path=path,
                    key=key,
                    upload_id=upload_id,
                    size=size,
                    mtime_ns=st.st_mtime_ns,
                    ino=st.st_ino,
                    md5="",
                    part_size=psize,
                    created_at=self.wall(),
                    parts={},
                )
            )
            self.log.info("multipart_started", key=key, path=path, upload_id=upload_id, bytes=size, part_size=psize)
        else:
            self.log.info("multipart_resumed", key=key, path=path, upload_id=upload_id, parts_stored=len(stored))

        plan = plan_parts(size, psize)
        # Every byte goes into two MD5s: its part's (the Content-MD5) and the whole file's, in part
        # order (the ETag sent with Complete). With the native pair hasher this thread computes both
        # in one pass and hands each part's MD5 to its worker; with hashlib the two run side by side
        # instead, this thread hashing the whole file and each worker its own part just before
        # sending it. A write in between changes ctime, which the final _check_unchanged() catches
        # before Complete, and Content-MD5 pins what the server stores.
        whole = md5pair.new()
        known: list[str | None] = list(prehashed[1]) if prehashed is not None and prehashed[1] else [None] * len(plan)
        futures: list[Future[tuple[PartInfo, bool]]] = []
        try:
            for n, off, length in plan:
                if prehashed is None and md5pair.NATIVE:
                    known[n] = part_and_whole(fd, off, length, whole)
                elif prehashed is None:
                    feed_section(fd, off, length, whole)
                self._raise_first_error(futures)
                if self.should_stop():
                    raise Interrupted(f"stopping: {key} resumes from part {n} at the next start")
                self._sem.acquire()
                if self.should_stop():  # the wait for a free slot may have spanned the SIGTERM
                    self._sem.release()
                    raise Interrupted(f"stopping: {key} resumes from part {n} at the next start")
                fut = self._parts_pool.submit(self._part, fd, key, upload_id, n, off, length, known[n], stored.get(n))
                fut.add_done_callback(lambda _f: self._sem.release())  # runs on cancel too
                futures.append(fut)
            wait(futures, return_when=FIRST_EXCEPTION)
            self._raise_first_error(futures)
            wait(futures)
            self._raise_first_error(futures)
            md5_hex = prehashed[0] if prehashed is not None else whole.hexdigest()
            self._check_unchanged(fd, st)
        except FileChanged:
            for f in futures:
                f.cancel()
            wait(futures)
            self._abort(key, upload_id, reason="file_changed_during_upload")
            raise
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            raise

        done = [f.result() for f in futures]
        parts = [info for info, _ in done]
        resumed = sum(1 for _, was_sent in done if not was_sent)
        sent = sum(info.size for info, was_sent in done if was_sent)
        self._complete(key, upload_id, parts, md5_hex, size)
        self.ledger.finish_multipart(upload_id)
        self._record(path, key, st, md5_hex)
        return Outcome(
            "uploaded",
            key,
            path,
            bytes=size,
            bytes_sent=sent,
            parts=len(plan),
            parts_resumed=resumed,
            md5=md5_hex,
            seconds=self.clock() - t0,
            extra={"upload_id": upload_id},
        )

    @staticmethod
    def _raise_first_error(futures: list[Future[Any]]) -> None:
        for f in futures:
            if f.done() and not f.cancelled():
                exc = f.exception()
                if exc is not None:
                    raise exc

    def _part(
        self,
        fd: int,
        key: str,
        upload_id: str,
        n: int,
        off: int,
        length: int,
        part_hex: str | None,
        have: PartInfo | None,
    ) -> tuple[PartInfo, bool]:
        """Hash one part (unless known) and send it unless the server holds it already; returns
        (the part, whether it was sent)."""
        if part_hex is None:
            part_hex = md5_section(fd, off, length).hexdigest()
        info = PartInfo(n, length, part_hex)
        if have is not None and have.size == length and have.etag == part_hex:
            return info, False
        self._send_part(fd, key, upload_id, n, off, length, part_hex)
        return info, True

    def _send_part(self, fd: int, key: str, upload_id: str, n: int, off: int, length: int, part_hex: str) -> None:
        attempt = 0
        while True:
            attempt += 1
            body = Section(fd, off, length, limiter=self.limiter, on_read=self._progress.get(fd))
            try:
                etag = self.remote.upload_part(key, upload_id, n, body, length, b64(bytes.fromhex(part_hex)))
            except BadRequest as err:
                if err.code in ("bad_digest", "incomplete_body"):  # incomplete_body: the file shrank
                    raise FileChanged("the file changed while a part was being uploaded") from err
                raise
            except TransientError as err:
                if attempt > self.s.part_retries:
                    raise
                delay = backoff_delay(attempt, self.s.retry_initial_seconds, self.s.retry_max_seconds)
                self.log.warning(
                    "part_retried",
                    key=key,
                    part=n,
                    attempt=attempt,
                    error=str(err),
                    code=err.code,
                    retry_in=round(delay, 2),
                )
                if self.on_part_retry is not None:
                    self.on_part_retry()
                self.sleep(delay)
                continue
            if etag and etag != part_hex:
                raise TransientError(
                    f"part {n} of {key} stored with ETag {etag}, expected {part_hex}",
                    code="etag_mismatch",
                    operation="UploadMultipart",
                    key=key,
                )
            self.ledger.record_part(upload_id, PartRecord(n, length, part_hex))
            return

    def _complete(self, key: str, upload_id: str, parts: list[PartInfo], md5_hex: str, size: int) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.remote.complete(key, upload_id, parts, md5_hex)
                break
            except (TransientError, NotFound) as err:
                # The Complete may have been applied even though its answer was lost.
                info = self._head_quiet(key)
                if info is not None and info.size == size and info.etag == md5_hex:
                    break
                if isinstance(err, NotFound) or attempt > self.s.part_retries:
                    raise
                self.sleep(backoff_delay(attempt, self.s.retry_initial_seconds, self.s.retry_max_seconds))
        info = self.remote.head(key)
        if info is None or info.size != size or info.etag != md5_hex:
            raise PermanentError(
                f"after Complete, {key} has size {getattr(info, 'size', None)} and ETag "
                f"{getattr(info, 'etag', None)}; expected {size} bytes with MD5 {md5_hex}",
                code="verify_failed",
                operation="CompleteMultipartUpload",
                key=key,
            )

    def _head_quiet(self, key: str) -> Any:
        try:
            return self.remote.head(key)
        except RemoteError:
            return None

    def _abort(self, key: str, upload_id: str, *, reason: str) -> None:
        try:
            self.remote.abort(key, upload_id)
            self.log.info("multipart_aborted", key=key, upload_id=upload_id, reason=reason)
        except RemoteError as err:
            self.log.warning("multipart_abort_failed", key=key, upload_id=upload_id, reason=reason, error=str(err))
        self.ledger.finish_multipart(upload_id)

    # ------------------------------------------------------------------ bookkeeping
    def _metadata(self, st: os.stat_result) -> dict[str, str] | None:
        if not self.s.store_metadata:
            return None
        host = self.hostname.encode("ascii", "backslashreplace").decode("ascii")
        return {
            "qsyncd-mtime": f"{st.st_mtime_ns / 1e9:.9f}",
            "qsyncd-mode": f"{statmod.S_IMODE(st.st_mode):o}",
            "qsyncd-host": host,
        }

    def _record(self, path: str, key: str, st: os.stat_result, md5_hex: str) -> None:
        self.ledger.record_uploaded(
            FileRecord(
                path=path,
                key=key,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                ino=st.st_ino,
                md5=md5_hex,
                uploaded_at=self.wall(),
            )
        )

    def _delete_if_unchanged(self, path: str, st: os.stat_result, key: str) -> bool:
        """Remove the local file only if it is still exactly what was uploaded and verified."""
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            return False
        if sig_of(now) != sig_of(st):
            self.log.info("delete_skipped", path=path, key=key, reason="file_changed_after_upload")
            return False
        os.unlink(path)
        self.ledger.forget(path)
        return True
