"""Housekeeping in the bucket: abort multipart uploads that can never be completed.

Two kinds: uploads the ledger holds whose file is gone or changed (they cannot resume), and orphans,
uploads under a watch root's prefix that the ledger does not know (a lost state directory, another
machine's crash) once they are ``ORPHAN_MIN_AGE`` old (QingStor never removes them, and their parts are
billed). The service sweeps orphans only after running that long and then every ``MAINTENANCE_EVERY``;
``qsyncd sync`` sweeps once, at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from qsyncd.errors import RemoteError
from qsyncd.identity import FileIdentity
from qsyncd.prefixes import fixed_part
from qsyncd.remote.base import Remote
from qsyncd.service.roots import Roots
from qsyncd.state import Ledger

MAINTENANCE_EVERY = 6 * 3600.0  # the service sweeps the bucket for orphaned uploads this often
ORPHAN_MIN_AGE = 3600.0  # an upload the ledger does not know is aborted once it is this old
RETRY_AFTER_ERROR = 60.0  # a sweep that failed on a remote error is tried again after this long


class Maintenance:
    """``loop()`` is the maintenance thread; ``sweep()`` one pass."""

    def __init__(
        self,
        remote: Remote,
        ledger: Ledger,
        roots: Roots,
        *,
        once: bool,
        clock: Callable[[], float],
        wall: Callable[[], float],
        wait: Callable[[float], bool],
        log: Any,
    ) -> None:
        self.remote = remote
        self.ledger = ledger
        self.roots = roots
        self.once = once
        self.clock = clock
        self.wall = wall
        self.wait = wait  # waits up to N seconds; True when the daemon is stopping
        self.log = log

    def loop(self) -> None:
        # A (re)started service sends no housekeeping request: orphans (uploads the ledger does not
        # know, never aborted before they are ORPHAN_MIN_AGE old anyway) are listed only once the
        # daemon has run that long; `qsyncd sync` still sweeps at once.
        orphans_due = self.clock() + (0.0 if self.once else ORPHAN_MIN_AGE)
        while True:
            try:
                sweep = self.clock() >= orphans_due
                self.sweep(orphans=sweep)
                delay = MAINTENANCE_EVERY if sweep else max(1.0, orphans_due - self.clock())
            except RemoteError as err:
                self.log.warning("maintenance_failed", error=str(err), retry_in=RETRY_AFTER_ERROR)
                delay = RETRY_AFTER_ERROR
            if self.once or self.wait(delay):
                return

    def sweep(self, orphans: bool = True) -> None:
        known = {m.upload_id: m for m in self.ledger.multiparts()}
        for mp in known.values():
            try:
                same = FileIdentity.of(os.lstat(mp.path)).same_version(mp.identity)
            except OSError:
                same = False
            if not same:
                self.remote.abort(mp.key, mp.upload_id)
                self.ledger.finish_multipart(mp.upload_id)
                self.log.info("multipart_aborted", key=mp.key, upload_id=mp.upload_id, reason="file_gone_or_changed")
        prefixes = {fixed_part(r.cfg.prefix) for r in self.roots} if orphans else set()  # before any {mtime:...}
        now = self.wall()
        for prefix in sorted(prefixes):
            for up in self.remote.list_uploads(prefix):
                if up.upload_id in known:
                    continue
                age = age_seconds(up.created, now)
                if age is not None and age < ORPHAN_MIN_AGE:
                    continue
                self.remote.abort(up.key, up.upload_id)
                self.log.info(
                    "multipart_aborted",
                    key=up.key,
                    upload_id=up.upload_id,
                    reason="orphaned",
                    age_seconds=None if age is None else round(age),
                )


def age_seconds(created: str, now: float) -> float | None:
    """How old an upload is from its RFC 3339 ``created`` time (None when the store sent none we can read)."""
    try:
        ts = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None
    return now - ts
