"""Send one settled file to the remote, exactly once and never as a mix of two versions.

``Uploader.upload()`` is the whole life of one file:

1. ``qsyncd.decide`` says whether it needs sending: the ledger holds this version (no request), or a
   HEAD (or a fresh listing of the key's directory, ``RemoteIndex``) finds an object of the same size
   whose ETag is the file's MD5 (recorded, skipped).
2. Small files: one PUT with Content-MD5. Large files: a resumable multipart upload (``qsyncd.multipart``);
   a multipart upload the ledger holds for this version of the file is resumed instead. A store that
   keeps the file's MD5 from initiate on (``Remote.needs_md5_at_initiate``, S3) gets the file hashed first.
3. Content-MD5 on every request means the server never stores bytes that differ from what was hashed.
   If the file changes while it is read, the upload is aborted and the file goes back to settle
   (``FileChanged``); it is uploaded again once it holds still.
4. With ``after_upload = "delete"`` the file is removed only after the bucket confirmed it, and only if
   it is still exactly the version that was sent.

``qsyncd.dryrun.examine()`` answers the same question without sending anything (``qsyncd sync --dry-run``).
"""

from __future__ import annotations

import os
import socket
import stat as statmod
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qsyncd import md5pair
from qsyncd.changes import OLD_BEHAVIOUR, ChangeRules
from qsyncd.config import UploadConfig
from qsyncd.decide import UNKNOWN, decide
from qsyncd.errors import BodyMismatch, FileChanged, RemoteError, TransientError
from qsyncd.identity import FileIdentity
from qsyncd.keys import content_type as guess_content_type
from qsyncd.multipart import Interrupted, PartSender, complete_and_verify, stored_parts
from qsyncd.pipeline import Turns
from qsyncd.policy import RetryRules
from qsyncd.remote.base import ObjectInfo, Remote
from qsyncd.remoteindex import RemoteIndex
from qsyncd.reuse import ServerSide
from qsyncd.source import RateLimiter, Section, b64, check_unchanged, hash_file, part_size_for, plan_parts
from qsyncd.state import FileRecord, Ledger, MultipartRecord

__all__ = ["Interrupted", "Outcome", "Uploader"]

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)

Known = tuple[FileRecord | None, MultipartRecord | None]  # what the ledger holds of a path (Ledger.lookup)
DONE = {"copy": "copied", "move": "moved"}  # Outcome.action of a file put in place server-side


@dataclass
class Outcome:
    """What happened to one file. ``action`` is ``uploaded``, ``copied`` or ``moved`` (server-side, from
    ``source_key``: no byte sent) or ``skipped``; ``kept`` where the version it replaced was kept."""

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
    kept: str = ""
    source_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Uploader:
    """Uploads files through a ``Remote`` and keeps the ledger true. Safe to call from many threads."""

    def __init__(
        self,
        remote: Remote,
        ledger: Ledger,
        settings: UploadConfig,
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
        turns: Turns | None = None,
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
        self.rules = RetryRules(
            initial=settings.retry_initial_seconds,
            maximum=settings.retry_max_seconds,
            permanent=settings.permanent_retry_seconds,
            part_retries=settings.part_retries,
        )
        self.parts = PartSender(
            remote,
            ledger,
            self.rules,
            part_concurrency=settings.part_concurrency,
            limiter=limiter,
            log=log,
            sleep=sleep,
            on_part_retry=on_part_retry,
            should_stop=should_stop,
        )
        self._progress: dict[int, Callable[[int], None] | None] = {}
        self.server = ServerSide(remote, ledger, log=log, wall=wall, clock=clock, turns=turns, index=index)

    def close(self) -> None:
        self.parts.close()

    # ------------------------------------------------------------------ entry points
    def upload(
        self,
        path: str,
        key: str,
        *,
        delete_after: bool = False,
        source: str | None = None,
        progress: Callable[[int], None] | None = None,
        known: Known | None = None,
        rules: ChangeRules = OLD_BEHAVIOUR,
        turn: int = -1,
    ) -> Outcome:
        """Upload ``path`` as ``key``; raises ``FileChanged``, ``Interrupted``, ``ChangeRefused``, ``RemoteError``,
        ``OSError``. ``source``: the file to read instead of a symlink ``path`` the caller resolved and vetted
        (follow_symlinks). ``known``: what the caller just read from the ledger for ``path`` (``Ledger.lookup``).
        ``rules``: the root's renames and on_change (``qsyncd.changes``); ``turn``: see ``pipeline.Turns``."""
        t0 = self.clock()
        fd = os.open(source or path, OPEN_FLAGS)
        self._progress[fd] = progress or self.on_progress  # called with every block read for this file
        try:
            st = regular(fd, path)
            record, mp = known if known is not None else self.ledger.lookup(path)
            if mp is not None and not (mp.key == key and FileIdentity.of(st).same_version(mp.identity)):
                self._abort(mp.key, mp.upload_id, reason="file_changed_since_upload_started")
                mp = None
            try:
                if mp is not None:
                    self.server.pass_turn(turn)  # a resumed upload copies from nothing
                    out = self._multipart(fd, path, key, st, resume=mp, t0=t0)
                else:
                    out = self._fresh(
                        fd, path, key, st, record=record, delete_after=delete_after, t0=t0, rules=rules, turn=turn
                    )
            finally:
                if self.index is not None:  # the object may have changed: no earlier listing speaks for it
                    self.index.forget(key)
            if delete_after:
                out.deleted = delete_if_unchanged(path, st, key, self.ledger, self.log)
            return out
        finally:
            self._progress.pop(fd, None)
            os.close(fd)

    # ------------------------------------------------------------------ deciding
    def _fresh(
        self,
        fd: int,
        path: str,
        key: str,
        st: os.stat_result,
        *,
        record: FileRecord | None,
        delete_after: bool,
        t0: float,
        use_index: bool = True,
        rules: ChangeRules = OLD_BEHAVIOUR,
        turn: int = -1,
    ) -> Outcome:
        size = st.st_size
        multipart = size >= self.s.multipart_threshold and size > 0
        ident = FileIdentity.of(st)
        remote: ObjectInfo | object | None = UNKNOWN
        pre: tuple[str, list[str]] | None = None
        donor = None
        if self.server.may_reuse(size, multipart, rules):  # a donor first, claimed before any request is sent
            pre = self._hash(fd, ident, multipart)  # a small file is hashed before its PUT anyway
            donor = self.server.donor(path, ident, pre[0], rules)
        with self.server.claimed(donor, turn):  # a rename chain's files copy from each other in order
            while True:
                d = decide(
                    key=key,
                    local=ident,
                    record=record,
                    delete_after=delete_after,
                    remote=remote,  # type: ignore[arg-type]
                    md5=pre[0] if pre else None,
                )
                if d.action == "ask_remote":
                    remote = self._remote_info(key, use_index)
                elif d.action == "hash":
                    pre = self._hash(fd, ident, multipart)
                else:
                    break
            if d.action == "skip":
                if d.reason == "remote_match" and pre is not None:
                    self._record(path, key, st, pre[0])
                md5 = pre[0] if pre else ""
                return Outcome("skipped", key, path, bytes=size, reason=d.reason, md5=md5, seconds=self.clock() - t0)
            # the bucket needs this version's bytes under key: keep or refuse what is there, then write
            kept = ""
            if remote is not None:
                self.server.before_replacing(key, turn, rules)
                kept = self.server.protect(path, key, record, rules)
            if donor is not None and pre is not None:
                via, donor = self.server.reuse(path, key, donor, ident, pre[0], rules)
                if via != "upload":
                    check_unchanged(fd, ident)  # what is recorded as copied must still be what is on disk
                    self._record(path, key, st, pre[0])
                    secs, src, md5 = self.clock() - t0, donor.key, pre[0]
                    return Outcome(DONE[via], key, path, bytes=size, md5=md5, seconds=secs, source_key=src, kept=kept)
            if multipart and pre is None and self.remote.needs_md5_at_initiate:
                # The store keeps the file's MD5 from initiate on (S3 metadata): hash every part and the
                # whole in one pass first; the parts then go out without being hashed again.
                pre = self._hash(fd, ident, multipart)
            out = (
                self._multipart(fd, path, key, st, resume=None, t0=t0, prehashed=pre)
                if multipart
                else self._put(fd, path, key, st, t0=t0, md5_hex=pre[0] if pre else None)
            )
        out.kept = kept
        return out

    def _hash(self, fd: int, ident: FileIdentity, multipart: bool) -> tuple[str, list[str]]:
        """The file's MD5 (and its parts' when ``multipart``), read once; raises FileChanged if it moved meanwhile."""
        pre = hash_file(fd, ident.size, part_size_for(ident.size, self.s.part_size) if multipart else None)
        check_unchanged(fd, ident)
        return pre

    def _remote_info(self, key: str, use_index: bool) -> ObjectInfo | None:
        """What is stored under ``key``: from a fresh listing of its directory if one covers it, else HEAD."""
        if use_index and self.index is not None:
            covered, info = self.index.lookup(key)
            if covered:
                return info
        return self.remote.head(key)

    # ------------------------------------------------------------------ single PUT
    def _put(self, fd: int, path: str, key: str, st: os.stat_result, *, t0: float, md5_hex: str | None) -> Outcome:
        size = st.st_size
        md5_hex = md5_hex or self._hash(fd, FileIdentity.of(st), False)[0]
        body = Section(fd, 0, size, limiter=self.limiter, on_read=self._progress.get(fd))
        try:
            etag = self.remote.put(
                key,
                body,
                size,
                b64(bytes.fromhex(md5_hex)),
                content_type=guess_content_type(key),
                metadata=object_metadata(st, self.hostname) if self.s.store_metadata else None,
                storage_class=self.s.storage_class,
            )
        except BodyMismatch as err:  # the file changed (bad_digest) or shrank (incomplete_body) while read
            raise FileChanged(
                f"the file changed while it was being uploaded ({err.code}); it will be sent again"
            ) from err
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
        if resume is not None:
            psize, upload_id = resume.part_size, resume.upload_id
            stored = stored_parts(self.remote, resume)
            if stored is None:
                self.log.info("multipart_restarted", key=key, path=path, upload_id=upload_id, reason="upload_gone")
                self.ledger.finish_multipart(upload_id)
                # The upload may be gone because its Complete succeeded just before a crash: HEAD the key
                # (and skip on ETag == MD5) before sending every part again.
                return self._fresh(fd, path, key, st, record=None, delete_after=False, t0=t0, use_index=False)
            self.log.info("multipart_resumed", key=key, path=path, upload_id=upload_id, parts_stored=len(stored))
        else:
            stored = {}
            psize = part_size_for(size, self.s.part_size)
            upload_id = self.remote.initiate(
                key,
                content_type=guess_content_type(key),
                metadata=object_metadata(st, self.hostname) if self.s.store_metadata else None,
                storage_class=self.s.storage_class,
                md5_hex=prehashed[0] if prehashed is not None else None,
            )
            self.ledger.start_multipart(MultipartRecord.of(path, key, upload_id, st, psize, self.wall()))
            self.log.info("multipart_started", key=key, path=path, upload_id=upload_id, bytes=size, part_size=psize)

        plan = plan_parts(size, psize)
        whole = md5pair.new()
        part_md5s: list[str | None] = list(prehashed[1]) if prehashed and prehashed[1] else [None] * len(plan)
        try:
            done = self.parts.send_all(
                fd,
                key,
                upload_id,
                plan,
                stored=stored,
                part_md5s=part_md5s,
                whole=whole,
                on_read=self._progress.get(fd),
            )
            md5_hex = prehashed[0] if prehashed is not None else whole.hexdigest()
            check_unchanged(fd, FileIdentity.of(st))
        except FileChanged:
            self._abort(key, upload_id, reason="file_changed_during_upload")
            raise
        parts = [info for info, _ in done]
        resumed = sum(1 for _, was_sent in done if not was_sent)
        sent = sum(info.size for info, was_sent in done if was_sent)
        complete_and_verify(self.remote, key, upload_id, parts, md5_hex, size, self.rules, self.sleep)
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

    def _abort(self, key: str, upload_id: str, *, reason: str) -> None:
        try:
            self.remote.abort(key, upload_id)
            self.log.info("multipart_aborted", key=key, upload_id=upload_id, reason=reason)
        except RemoteError as err:
            self.log.warning("multipart_abort_failed", key=key, upload_id=upload_id, reason=reason, error=str(err))
        self.ledger.finish_multipart(upload_id)

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, path: str, key: str, st: os.stat_result, md5_hex: str) -> None:
        self.ledger.record_uploaded(FileRecord.of(path, key, st, md5_hex, self.wall()))


def object_metadata(st: os.stat_result, hostname: str) -> dict[str, str]:
    """What ``store_metadata = true`` stores with an object: the file's mtime and mode, and this host."""
    host = hostname.encode("ascii", "backslashreplace").decode("ascii")
    return {
        "qsyncd-mtime": f"{st.st_mtime_ns / 1e9:.9f}",
        "qsyncd-mode": f"{statmod.S_IMODE(st.st_mode):o}",
        "qsyncd-host": host,
    }


def delete_if_unchanged(path: str, st: os.stat_result, key: str, ledger: Ledger, log: Any) -> bool:
    """Remove the local file only if it is still exactly the version that was uploaded and verified."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    if FileIdentity.of(now) != FileIdentity.of(st):
        log.info("delete_skipped", path=path, key=key, reason="file_changed_after_upload")
        return False
    os.unlink(path)
    ledger.forget(path)
    return True


def regular(fd: int, path: str) -> os.stat_result:
    st = os.fstat(fd)
    if not statmod.S_ISREG(st.st_mode):
        raise FileChanged(f"{path} is no longer a regular file")
    return st
