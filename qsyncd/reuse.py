"""Server-side work before a file's bytes are sent: keep or refuse what its key holds, reuse a donor object.

The uploader asks ``ServerSide`` two things once ``qsyncd.decide`` says a file needs sending:

1. ``protect(...)``: the bucket holds another version under the key. By ``[[watch]] on_change``
   (``qsyncd.changes.protect``) it is kept (the bucket's versioning keeps it when enabled; otherwise a
   server-side copy to ``changes.kept_key``, recorded in the ledger's kept table), refused
   (``ChangeRefused``: nothing is written) or overwritten. A version the ledger knows under another key
   is not kept twice (a rename chain such as logrotate's moves each version to the next name).
2. ``donor(...)`` and ``reuse(...)``: another object already holds these bytes (a renamed or copied
   file, or a kept version): by ``[[watch]] renames`` it is copied or moved server-side, conditional on
   its ETag, and no byte is sent. A donor that is gone or holds other bytes (``NotFound``,
   ``SourceChanged``) means "send the bytes" (``reuse_fallback``), never an error.

Whether the bucket versions objects is asked lazily (``Remote.versioning``), at the first change, and
again every ``VERSIONING_TTL`` seconds: an unchanged tree costs no request.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from qsyncd.changes import ChangeRules, Donor, Via, kept_key, protect, reuse_via
from qsyncd.errors import ChangeRefused, NotFound, RemoteError, SourceChanged, TransientError
from qsyncd.identity import FileIdentity
from qsyncd.pipeline import Turns
from qsyncd.remote.base import Remote
from qsyncd.remoteindex import RemoteIndex
from qsyncd.state import FileRecord, Ledger

VERSIONING_TTL = 3600.0  # how long the bucket's versioning state is trusted before it is asked again
MAX_KEY_BYTES = 1023  # a kept name longer than this cannot be written: the change is refused instead
CLAIM_WAIT_SECONDS = 10.0  # how long a file waits for others to finish copying from its key (claimed)


class ServerSide:
    """Keeps, refuses and reuses objects for the uploader. Safe to call from many threads."""

    def __init__(
        self,
        remote: Remote,
        ledger: Ledger,
        *,
        log: Any,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        turns: Turns | None = None,
        index: RemoteIndex | None = None,
    ) -> None:
        self.remote = remote
        self.index = index  # recent listings: a moved-away key must no longer be vouched for
        self.turns = turns  # the order the upload workers took their files in
        self.ledger = ledger
        self.log = log
        self.wall = wall
        self.clock = clock
        self._cv = threading.Condition()  # guards the claims and the versioning state
        self._claims: dict[str, int] = {}  # donor key -> files copying from it now
        self._versioning: tuple[float, bool] | None = None  # (asked at, enabled)

    # ------------------------------------------------------------------ on_change
    def protect(self, path: str, key: str, record: FileRecord | None, rules: ChangeRules) -> str:
        """The bucket may hold another version under ``key``: keep it, refuse, or let it be replaced.

        Returns where the version was kept (a kept key, or ``"bucket_versioning"``), "" if nothing was.
        """
        if rules.on_change == "overwrite":
            return ""
        existing = self.remote.head(key)  # fresh: a listing's ETag may not be what a copy is conditional on
        if existing is None:
            return ""
        what = protect(rules.on_change, versioned=rules.on_change == "keep" and self.versioned())
        if what == "refuse":
            raise ChangeRefused(
                f"the bucket holds another version of {path} under {key} (size {existing.size}, ETag "
                f'{existing.etag}) and on_change = "refuse" leaves it there; move the file to a new name, '
                'or set on_change = "keep" or "overwrite" for this [[watch]]',
                key=key,
                remote_etag=existing.etag,
            )
        if what == "keep_versioned":
            self.log.info("version_kept", path=path, key=key, etag=existing.etag, by="bucket_versioning")
            return "bucket_versioning"
        if what != "keep_copy" or self.ledger.held_elsewhere(existing.size, existing.etag, key):
            return ""  # another key holds that version already (a rename moved it on): nothing is lost
        kept = kept_key(rules.kept_prefix, key, existing.etag, self.wall())
        if len(kept.encode("utf-8", "surrogateescape")) > MAX_KEY_BYTES:
            raise ChangeRefused(
                f"cannot keep the version under {key}: its kept name would pass {MAX_KEY_BYTES} bytes; "
                'shorten kept_prefix or the path, or set on_change = "overwrite"',
                key=key,
                remote_etag=existing.etag,
            )
        try:
            self.remote.copy(key, kept, etag=existing.etag, size=existing.size)
        except NotFound:
            return ""  # gone since the HEAD: nothing left to keep
        except SourceChanged as err:
            raise TransientError(
                f"the object under {key} changed while qsyncd kept it as {kept}; trying again",
                code="kept_source_changed",
                operation="CopyObject",
                key=key,
            ) from err
        self.ledger.record_kept(kept, key, path, size=existing.size, md5=existing.etag, kept_at=self.wall())
        self.log.info("version_kept", path=path, key=key, kept_key=kept, etag=existing.etag, bytes=existing.size)
        return kept

    def versioned(self) -> bool:
        """Whether the bucket keeps replaced versions itself (asked once per ``VERSIONING_TTL``)."""
        with self._cv:
            if self._versioning is not None and self.clock() - self._versioning[0] < VERSIONING_TTL:
                return self._versioning[1]
        try:
            enabled = self.remote.versioning() == "enabled"
        except RemoteError as err:
            self.log.warning(
                "versioning_unknown",
                error=str(err),
                action="kept versions are copied aside, as for a bucket without versioning",
            )
            enabled = False
        with self._cv:
            self._versioning = (self.clock(), enabled)
        return enabled

    # ------------------------------------------------------------------ renames
    def donor(self, path: str, ident: FileIdentity, md5: str, rules: ChangeRules) -> Donor | None:
        """An object that holds these bytes already (``None`` with ``renames = "upload"``)."""
        if rules.renames == "upload":
            return None
        return self.ledger.donor(
            rules.root, exclude=path, size=ident.size, md5=md5, ino=ident.ino, mtime_ns=ident.mtime_ns
        )

    def may_reuse(self, size: int, multipart: bool, rules: ChangeRules) -> bool:
        """Whether to look for a donor: a small file always (it is hashed before its PUT anyway), a large
        one only if the ledger holds an object of its size (else hashing it first would be wasted)."""
        if rules.renames == "upload" or size <= 0:
            return False
        return not multipart or self.ledger.holds_size(rules.root, size)

    @contextmanager
    def claimed(self, donor: Donor | None, turn: int) -> Iterator[None]:
        """Hold the donor's key against being replaced while this file copies from it.

        Upload workers run in parallel: in a rename chain (logrotate's ``.13 -> .14``, then ``.12 ->
        .13``) the file bound for ``.14`` must copy ``.13``'s object before ``.13``'s new bytes replace
        it. Each file says which object it copies from (its claim) before it sends any request, then
        resolves its ``turn`` (``pipeline.Turns``); ``before_replacing`` waits for both."""
        if donor is not None:
            with self._cv:
                self._claims[donor.key] = self._claims.get(donor.key, 0) + 1
        if self.turns is not None:
            self.turns.resolve(turn)
        try:
            yield
        finally:
            if donor is not None:
                with self._cv:
                    n = self._claims.pop(donor.key, 1) - 1
                    if n > 0:
                        self._claims[donor.key] = n
                    self._cv.notify_all()

    def pass_turn(self, turn: int) -> None:
        """This file copies from no object: files taken after it need not wait for it."""
        if self.turns is not None:
            self.turns.resolve(turn)

    def before_replacing(self, key: str, turn: int, rules: ChangeRules) -> None:
        """Wait (at most ``CLAIM_WAIT_SECONDS``) until every file taken before this one has claimed its
        donor and no file copies from ``key`` any more. A cycle (two files swapped) waits out the limit;
        the conditional copy then fails and the bytes are sent: slower, never wrong."""
        if rules.renames == "upload":
            return
        deadline = time.monotonic() + CLAIM_WAIT_SECONDS
        if self.turns is not None:
            self.turns.wait_older(turn, CLAIM_WAIT_SECONDS)
        with self._cv:
            while self._claims.get(key, 0) > 0 and (left := deadline - time.monotonic()) > 0:
                self._cv.wait(min(left, 1.0))

    def via(self, donor: Donor, rules: ChangeRules) -> Via:
        """How ``reuse`` would put the donor's object in place: ``"copy"``, ``"move"`` (or ``"upload"``)."""
        return reuse_via(rules.renames, donor, source_on_disk=_on_disk(donor))

    def reuse(
        self, path: str, key: str, donor: Donor, ident: FileIdentity, md5: str, rules: ChangeRules
    ) -> tuple[Via, Donor]:
        """Put the donor's object under ``key`` server-side; ``"upload"`` when the bytes must be sent after all.

        A donor that is gone or holds other bytes by now (another worker replaced it) is asked for once
        more: the ledger may know the bytes elsewhere, e.g. the version that worker kept."""
        tried = {key}
        for _ in range(2):
            if donor.key in tried:
                break
            tried.add(donor.key)
            via = self.via(donor, rules)
            if via == "upload":
                break
            try:
                if via == "move":
                    etag = self.remote.move(donor.key, key, etag=donor.md5, size=donor.size)
                else:
                    etag = self.remote.copy(donor.key, key, etag=donor.md5, size=donor.size)
            except (NotFound, SourceChanged) as err:
                self.log.info(
                    "reuse_fallback",
                    path=path,
                    key=key,
                    source_key=donor.key,
                    via=via,
                    reason=err.code or type(err).__name__,
                )
                again = self.donor(path, ident, md5, rules)
                if again is None:
                    break
                donor = again
                continue
            if etag != donor.md5:
                raise TransientError(
                    f"the store copied {donor.key} to {key} with ETag {etag}, expected {donor.md5}",
                    code="etag_mismatch",
                    operation="CopyObject",
                    key=key,
                )
            if via == "move" and donor.kind == "file":
                self.ledger.forget_moved(donor.path, donor.key, donor.md5)
            if via == "move" and self.index is not None:
                self.index.forget(donor.key)
            return via, donor
        return "upload", donor


def _on_disk(donor: Donor) -> bool:
    """Whether the donor's file still holds its bytes at its path (then it must keep its object: copy, never move)."""
    if donor.kind != "file":
        return False
    try:
        st = os.lstat(donor.path)
    except OSError:
        return False
    return FileIdentity.of(st).same_version(FileIdentity.recorded(donor.size, donor.mtime_ns, donor.ino))
