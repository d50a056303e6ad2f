"""One resumable multipart upload: start or resume it, send the parts in parallel, complete and verify it.

Every byte goes into two MD5s: its part's (the part's Content-MD5) and the whole file's, in part order
(sent as the ETag with Complete, so the object's ETag is the file's MD5). With the native pair hasher
the uploading thread computes both in one pass and hands each part's MD5 to its worker; with hashlib
the two run side by side instead, this thread hashing the whole file and each worker its own part just
before sending it. A write in between changes the file's ctime, which the final check catches before
Complete, and Content-MD5 pins what the server stores.

The upload id is in the ledger before the first part is sent. After a crash the upload resumes:
ListMultipart says which parts are stored, and a stored part whose size and ETag match the MD5 of the
local bytes is not sent again. A part that fails transiently is resent (``policy.part_retry_delay``);
a file that changes while it is sent aborts the upload (``FileChanged``) and goes back to settle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any

from qsyncd import md5pair
from qsyncd.errors import BodyMismatch, FileChanged, NotFound, PermanentError, RemoteError, TransientError
from qsyncd.policy import RetryRules, part_retry_delay
from qsyncd.remote.base import PartInfo, Remote
from qsyncd.source import RateLimiter, Section, b64, feed_section, md5_section, part_and_whole
from qsyncd.state import Ledger, MultipartRecord, PartRecord


class Interrupted(Exception):
    """The daemon is stopping; the multipart upload stays recorded and resumes at the next start."""


class PartSender:
    """Sends parts for every multipart upload of one ``Uploader``: a shared pool and one cap on parts in flight."""

    def __init__(
        self,
        remote: Remote,
        ledger: Ledger,
        rules: RetryRules,
        *,
        part_concurrency: int,
        limiter: RateLimiter | None,
        log: Any,
        sleep: Callable[[float], None],
        on_part_retry: Callable[[], None] | None,
        should_stop: Callable[[], bool],
    ) -> None:
        self.remote = remote
        self.ledger = ledger
        self.rules = rules
        self.limiter = limiter
        self.log = log
        self.sleep = sleep
        self.on_part_retry = on_part_retry
        self.should_stop = should_stop
        self.pool = ThreadPoolExecutor(max_workers=max(1, part_concurrency * 2), thread_name_prefix="part")
        self.slots = threading.BoundedSemaphore(max(1, part_concurrency))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def send_all(
        self,
        fd: int,
        key: str,
        upload_id: str,
        plan: list[tuple[int, int, int]],
        *,
        stored: dict[int, PartInfo],
        part_md5s: list[str | None],
        whole: Any,
        on_read: Callable[[int], None] | None,
    ) -> list[tuple[PartInfo, bool]]:
        """Hash (into ``whole`` unless ``part_md5s`` is known) and send every part not already stored.

        Returns (the part, whether it was sent) in part order. Raises the first part's error after
        cancelling the rest, ``Interrupted`` when the daemon stops."""
        futures: list[Future[tuple[PartInfo, bool]]] = []
        prehashed = all(m is not None for m in part_md5s)
        try:
            for n, off, length in plan:
                if not prehashed and md5pair.NATIVE:
                    part_md5s[n] = part_and_whole(fd, off, length, whole)
                elif not prehashed:
                    feed_section(fd, off, length, whole)
                _raise_first_error(futures)
                self._wait_for_slot(key, n)
                fut = self.pool.submit(
                    self._part, fd, key, upload_id, n, off, length, part_md5s[n], stored.get(n), on_read
                )
                fut.add_done_callback(lambda _f: self.slots.release())  # runs on cancel too
                futures.append(fut)
            wait(futures, return_when=FIRST_EXCEPTION)
            _raise_first_error(futures)
            wait(futures)
            _raise_first_error(futures)
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            raise
        return [f.result() for f in futures]

    def _wait_for_slot(self, key: str, n: int) -> None:
        if self.should_stop():
            raise Interrupted(f"stopping: {key} resumes from part {n} at the next start")
        self.slots.acquire()
        if self.should_stop():  # the wait for a free slot may have spanned the SIGTERM
            self.slots.release()
            raise Interrupted(f"stopping: {key} resumes from part {n} at the next start")

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
        on_read: Callable[[int], None] | None,
    ) -> tuple[PartInfo, bool]:
        """Hash one part (unless known) and send it unless the server holds it already."""
        if part_hex is None:
            part_hex = md5_section(fd, off, length).hexdigest()
        info = PartInfo(n, length, part_hex)
        if have is not None and have.size == length and have.etag == part_hex:
            return info, False
        attempt = 0
        while True:
            attempt += 1
            body = Section(fd, off, length, limiter=self.limiter, on_read=on_read)
            try:
                etag = self.remote.upload_part(key, upload_id, n, body, length, b64(bytes.fromhex(part_hex)))
            except BodyMismatch as err:  # the file changed (or shrank) under the read
                raise FileChanged("the file changed while a part was being uploaded") from err
            except TransientError as err:
                delay = part_retry_delay(attempt, self.rules)
                if delay is None:
                    raise
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
            return info, True


def complete_and_verify(
    remote: Remote,
    key: str,
    upload_id: str,
    parts: list[PartInfo],
    md5_hex: str,
    size: int,
    rules: RetryRules,
    sleep: Callable[[float], None],
) -> None:
    """Complete the upload (its answer may be lost: a HEAD then tells) and check the object is the file."""
    attempt = 0
    while True:
        attempt += 1
        try:
            remote.complete(key, upload_id, parts, md5_hex)
            break
        except (TransientError, NotFound) as err:
            # The Complete may have been applied even though its answer was lost.
            info = _head_quiet(remote, key)
            if info is not None and info.size == size and info.etag == md5_hex:
                break
            delay = part_retry_delay(attempt, rules)
            if isinstance(err, NotFound) or delay is None:
                raise
            sleep(delay)
    info = remote.head(key)
    if info is None or info.size != size or info.etag != md5_hex:
        raise PermanentError(
            f"after Complete, {key} has size {getattr(info, 'size', None)} and ETag "
            f"{getattr(info, 'etag', None)}; expected {size} bytes with MD5 {md5_hex}",
            code="verify_failed",
            operation="CompleteMultipartUpload",
            key=key,
        )


def stored_parts(remote: Remote, resume: MultipartRecord) -> dict[int, PartInfo] | None:
    """The parts the server holds for an upload to resume, or None when the upload is gone."""
    try:
        return {p.part_number: p for p in remote.list_parts(resume.key, resume.upload_id)}
    except NotFound:
        return None


def _head_quiet(remote: Remote, key: str) -> Any:
    try:
        return remote.head(key)
    except RemoteError:
        return None


def _raise_first_error(futures: list[Future[Any]]) -> None:
    for f in futures:
        if f.done() and not f.cancelled():
            exc = f.exception()
            if exc is not None:
                raise exc
