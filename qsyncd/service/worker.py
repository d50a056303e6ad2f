"""The upload stage: take a settled file from the pipeline, decide, upload it, report what happened.

One ``UploadWorker`` is shared by the ``upload-N`` threads (each runs ``loop``). For each file it:
checks what the file is (``keys.classify``: FIFOs, symlinks out of the tree, unreadable files, odd names
are skipped with a ``file_skipped`` event), reads the ledger once (``Ledger.lookup``), skips quietly what
the ledger holds (``decide``), uploads the rest (``Uploader``) and turns every failure into what
``qsyncd.policy`` says: retry the file later, give it up (``sync``), or pause every upload.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qsyncd.changes import ChangeRules
from qsyncd.decide import decide
from qsyncd.dryrun import examine
from qsyncd.errors import BucketMissing, ChangeRefused, FileChanged, RemoteError, SkipFile
from qsyncd.identity import FileIdentity
from qsyncd.keys import classify, object_key
from qsyncd.pipeline import CountingQueue, Item, Pipeline
from qsyncd.policy import RetryRules, Verdict, after_failure
from qsyncd.scan import relpath
from qsyncd.service.mode import Mode
from qsyncd.service.roots import Root, Roots
from qsyncd.state import Ledger
from qsyncd.stats import Counters
from qsyncd.upload import Interrupted, Known, Outcome, Uploader
from qsyncd.watch import Hint

TAKE_SECONDS = 1.0  # a worker waits this long for a file before it beats again
# upload_started is an info event for a file at least this big, and for every retry; a first attempt
# at a smaller file is over in moments, and its outcome (upload_finished, upload_failed) is the event
# that counts: logging its start too doubled the journal lines of a small-file sync and cost ~10 %
# of its time (bench/s3.py, 2026-12-04). At debug level every start is logged.
STARTED_EVENT_BYTES = 1 << 20


class Report:
    """What a finite run could not do: files given up (path -> why) and problems that are not one file's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.gave_up: dict[str, str] = {}
        self.problems: list[str] = []
        self._refused = False

    def give_up(self, path: str, why: str) -> None:
        with self._lock:
            self.gave_up.setdefault(path, why)

    def forgive(self, path: str) -> None:
        with self._lock:
            self.gave_up.pop(path, None)

    def refused(self, text: str) -> None:
        """The store refuses every request: said once, however many workers heard it."""
        with self._lock:
            if not self._refused:
                self._refused = True
                self.problems.append(text)


def log_started(log: Any, path: str, key: str, size: int, attempts: int) -> None:
    """``upload_started``: at info for a big file or a retry, else at debug (``STARTED_EVENT_BYTES``)."""
    emit = log.info if size >= STARTED_EVENT_BYTES or attempts else log.debug
    emit("upload_started", path=path, key=key, bytes=size, attempt=attempts + 1)


class UploadWorker:
    """Everything the upload threads share: the roots, the ledger, the uploader, the counts."""

    def __init__(
        self,
        roots: Roots,
        ledger: Ledger,
        uploader: Uploader,
        pipeline: Pipeline,
        hints: CountingQueue,
        counters: Counters,
        *,
        mode: Mode,
        rules: RetryRules,
        store: dict[str, str],
        clock: Callable[[], float],
        wall: Callable[[], float],
        stop: Callable[[], None],
        stopping: Callable[[], bool],
        log: Any,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.roots = roots
        self.ledger = ledger
        self.uploader = uploader
        self.pipeline = pipeline
        self.hints = hints
        self.counters = counters
        self.mode = mode
        self.rules = rules
        self.store = store  # bucket, zone, endpoint: named in remote_rejected
        self.clock = clock
        self.wall = wall
        self.stop = stop
        self.stopping = stopping
        self.log = log
        self.on_outcome = on_outcome
        self.report = Report()
        self.started_wall = wall()
        self.in_flight_bytes = 0
        self._lock = threading.Lock()
        self._skip_memo: dict[str, tuple[str, tuple[int, int, int]]] = {}

    def loop(self, beat: Callable[..., None]) -> None:
        """One upload thread: ``beat`` tells the liveness monitor this thread still makes progress."""
        while not self.stopping():
            beat()
            item = self.pipeline.take(TAKE_SECONDS)
            if item is None:
                continue
            try:
                self.process(item, beat)
            finally:
                self.pipeline.done(item, on_dirty=self.resettle)

    def resettle(self, path: str) -> None:
        """A file that changed while it was uploading goes back to settle."""
        root = self.roots.root_for(path)
        if root is not None:
            # "closed", not "write": the writer may be done already and no close event follows
            self.hints.put(Hint("closed", path, root.path, "changed_while_uploading"))

    # ------------------------------------------------------------------ one file
    def process(self, item: Item, beat: Callable[..., None] | None = None) -> None:
        path = item.path
        root = self.roots.root_for(path)
        if root is None:
            return
        try:
            st = classify(Path(path), Path(root.path), root.cfg.follow_symlinks)
            key = object_key(root.cfg.prefix, os.fsencode(relpath(root.path, path)), st.st_mtime)
        except SkipFile as skip:
            self._report_skip(path, skip)
            return
        except FileNotFoundError:
            self._vanished(path)
            return
        delete_after = root.cfg.after_upload == "delete"
        known = self.ledger.lookup(path)
        if decide(key=key, local=FileIdentity.of(st), record=known[0], delete_after=delete_after).action == "skip":
            return  # quietly: the ledger says this exact file is in the bucket (no request)
        # a followed symlink (classify checked that its target is inside the root) is read through
        # its resolved path: the uploader opens with O_NOFOLLOW
        source = os.path.realpath(path) if root.cfg.follow_symlinks else None
        if self.mode.sends:
            self._upload(item, root, key, st, known, source, beat, delete_after)
        else:
            self._guarded(item, key, lambda: self._dry_run(path, key, st, known, source, rules_of(root)))

    def _upload(
        self,
        item: Item,
        root: Root,
        key: str,
        st: os.stat_result,
        known: Known,
        source: str | None,
        beat: Callable[..., None] | None,
        delete_after: bool,
    ) -> None:
        path = item.path
        record = known[0]
        again = record is not None and record.uploaded_at >= self.started_wall  # its last version went up in this run
        log_started(self.log, path, key, st.st_size, item.attempts)
        with self._lock:
            self.in_flight_bytes += st.st_size
        try:
            out = self._guarded(
                item,
                key,
                lambda: self.uploader.upload(
                    path,
                    key,
                    delete_after=delete_after,
                    source=source,
                    progress=beat,
                    known=known,
                    rules=rules_of(root),
                    turn=item.turn,
                ),
            )
        finally:
            with self._lock:
                self.in_flight_bytes -= st.st_size
        if out is None:
            return
        since = self.pipeline.open_gate()
        if since is not None:
            self.log.info("remote_recovered", down_seconds=round(self.wall() - since, 1))
        self.report.forgive(path)
        self._skip_memo.pop(path, None)
        if out.kept:
            self.counters.kept_version()
        if out.action in ("copied", "moved"):
            self.counters.reused_file(path, self.wall())
            self.log.info(
                "object_" + out.action,
                path=path,
                key=key,
                source_key=out.source_key,
                bytes=out.bytes,
                md5=out.md5,
                seconds=round(out.seconds, 3),
            )
        elif out.action == "uploaded":
            self.counters.uploaded_file(path, out.bytes, self.wall(), again=again)
            self.log.info(
                "upload_finished",
                path=path,
                key=key,
                bytes=out.bytes,
                bytes_sent=out.bytes_sent,
                parts=out.parts,
                parts_resumed=out.parts_resumed,
                md5=out.md5,
                seconds=round(out.seconds, 3),
                deleted=out.deleted,
            )
        else:
            self.counters.skipped_file(path)
            self.log.info("upload_skipped", path=path, key=key, bytes=out.bytes, reason=out.reason, deleted=out.deleted)
        if self.on_outcome is not None:
            self.on_outcome(out)

    def _dry_run(
        self, path: str, key: str, st: os.stat_result, known: Known, source: str | None, rules: ChangeRules
    ) -> None:
        d = examine(self.uploader, path, key, source=source, known=known, rules=rules)
        self.report.forgive(path)
        self.counters.settled(path)
        if d.action == "skip":
            self.log.info("dry_run_skip", path=path, key=key, reason=d.reason)
            return
        self.log.info("dry_run_upload", path=path, key=key, bytes=st.st_size, reason=d.detail)
        if self.on_outcome is not None:
            self.on_outcome(Outcome("would_upload", key, path, bytes=st.st_size, reason=d.detail))

    def _guarded(self, item: Item, key: str, work: Callable[[], Any]) -> Any:
        """Run ``work`` for ``item``; every failure becomes an event and a policy verdict. None on failure."""
        path = item.path
        try:
            return work()
        except FileChanged as err:
            root = self.roots.root_for(path)
            self.log.info("file_changed", path=path, key=key, error=str(err), action="settle_again")
            if root is not None:  # settle again, no close awaited
                self.hints.put(Hint("closed", path, root.path, "changed_during_upload"))
        except FileNotFoundError:
            self._vanished(path, key)
        except ChangeRefused as err:
            self._refused(item, err)
        except Interrupted as err:
            self.log.info("upload_interrupted", path=path, key=key, reason=str(err))
        except PermissionError as err:
            reason = f"cannot read {path}: {err.strerror}; give the service user read access"
            self._report_skip(path, SkipFile("unreadable", reason))
        except OSError as err:
            self._failed(item, key, err, f"local error: {err.strerror or err}")
        except RemoteError as err:
            self.counters.remote_error(err.code or type(err).__name__)
            self._failed(item, key, err, str(err))
        except Exception as err:
            self.log.exception("upload_failed", path=path, key=key, error=repr(err), reason="internal_error")
            self._failed(item, key, err, repr(err), logged=True)
        return None

    # ------------------------------------------------------------------ what went wrong
    def _vanished(self, path: str, key: str | None = None) -> None:
        self.counters.settled(path)
        self.report.forgive(path)
        if key is None:
            self.log.info("file_vanished", path=path)
        else:
            self.log.info("file_vanished", path=path, key=key)

    def _said_before(self, path: str, reason: str) -> bool:
        """Whether this version of ``path`` was already reported for ``reason`` (then it is not again)."""
        try:
            st = os.lstat(path)
            ident = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            ident = (0, 0, 0)
        said, self._skip_memo[path] = self._skip_memo.get(path) == (reason, ident), (reason, ident)
        return said

    def _report_skip(self, path: str, skip: SkipFile) -> None:
        if self._said_before(path, skip.reason):
            return
        self.counters.skipped_file(path)
        self.log.warning("file_skipped", path=path, reason=skip.reason, error=str(skip))
        if self.mode.unreadable_is_failure and skip.reason == "unreadable":
            self.report.give_up(path, f"skipped: {skip}")

    def _refused(self, item: Item, err: ChangeRefused) -> None:
        """``on_change = "refuse"``: said once per version of the file, recorded as a permanent failure."""
        self.report.give_up(item.path, str(err))
        if self._said_before(item.path, "change_refused"):
            return
        self.counters.refused_change(item.path)
        if self.mode.writes_ledger:
            self.ledger.record_failure(item.path, err.key, str(err), True)
        self.log.warning("change_refused", path=item.path, key=err.key, remote_etag=err.remote_etag, error=str(err))

    def _failed(self, item: Item, key: str, err: BaseException, error: str, *, logged: bool = False) -> None:
        verdict = after_failure(err, item.attempts + 1, self.pipeline.gate.failures, self.rules)
        if verdict.action == "pause_unreachable":
            self._pause(item, verdict, err, "remote_unreachable")
            return
        if verdict.action == "pause_refused":
            self._pause(item, verdict, err, "remote_rejected")
            return
        if verdict.action == "stop_pass":  # every other file would fail the same way: say it once and stop
            self.report.refused(str(err))
            self.stop()
            return
        item.attempts += 1
        self.counters.failed_attempt(item.path, retried=verdict.action == "retry")
        if self.mode.writes_ledger:
            self.ledger.record_failure(item.path, key, error, verdict.permanent)
        fields = {
            "path": item.path,
            "key": key,
            "error": error,
            "permanent": verdict.permanent,
            "attempts": item.attempts,
            "code": getattr(err, "code", ""),
        }
        if verdict.action == "give_up":
            self.report.give_up(item.path, error)
            if not logged:
                self.log.error("upload_failed", **fields, gave_up=True)
            return
        if not logged:
            self.log.warning("upload_failed", **fields, retry_in=round(verdict.delay, 2))
        self.pipeline.retry_later(item, verdict.delay)

    def _pause(self, item: Item, verdict: Verdict, err: BaseException, event: str) -> None:
        """The store is down or refuses us: every worker waits; the file is kept and tried again later."""
        problem = "refused" if event == "remote_rejected" else "unreachable"
        if self.pipeline.close_gate(verdict.delay, str(err), self.wall(), problem=problem):
            waiting = self.pipeline.queued() + 1
            if event == "remote_unreachable":
                self.log.error(event, endpoint=self.store["endpoint"], error=str(err), waiting=waiting)
            else:
                what = (
                    "create the bucket or fix bucket and zone"
                    if isinstance(err, BucketMissing)
                    else "fix the credentials in the config (or the system clock)"
                )
                self.log.error(
                    event,
                    error=str(err),
                    code=getattr(err, "code", ""),
                    **self.store,
                    retry_in=verdict.delay,
                    waiting=waiting,
                    hint=f"{what}; files stay queued and qsyncd retries every {verdict.delay:g} s until then",
                )
        # due at once: the closed gate holds it back, and it goes as soon as the gate opens (not a delay of its own)
        self.pipeline.retry_later(item, 0.0)


def rules_of(root: Root) -> ChangeRules:
    """The root's ``renames``, ``on_change`` and ``kept_prefix``, as the uploader takes them."""
    c = root.cfg
    return ChangeRules(root=root.path, renames=c.renames, on_change=c.on_change, kept_prefix=c.kept_prefix)
