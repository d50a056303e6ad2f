"""How the daemon runs: as the service (``qsyncd run``), one pass (``qsyncd sync``) or a dry run.

Every difference between them is a named property here, decided once, so that the stages ask "do I
rescan?" or "may I write the ledger?" instead of testing which command started them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """``finite``: the run ends once everything found is done; ``sends``: it uploads and writes the ledger."""

    name: str
    finite: bool
    sends: bool

    @property
    def service(self) -> bool:
        """Runs until stopped: watches, rescans periodically, re-arms roots, talks to systemd."""
        return not self.finite

    @property
    def takes_lock(self) -> bool:
        """Holds the state directory's lock; a dry run only reads, so it may run beside the service."""
        return self.sends

    @property
    def writes_ledger(self) -> bool:
        return self.sends

    @property
    def runs_maintenance(self) -> bool:
        """Aborts multipart uploads whose file is gone and orphaned ones (never in a dry run)."""
        return self.sends

    @property
    def verifies_periodically(self) -> bool:
        """Compares the bucket with the ledger every ``[verify] interval_seconds`` (the service only)."""
        return self.service and self.sends

    @property
    def lists_directories(self) -> bool:
        """Scans list a directory with many new files instead of one HEAD per file (the uploader's shortcut)."""
        return self.sends

    @property
    def unreadable_is_failure(self) -> bool:
        """A one-pass run must not exit 0 over a file it could not read; the service logs it and goes on."""
        return self.finite


RUN = Mode("run", finite=False, sends=True)
SYNC = Mode("sync", finite=True, sends=True)
DRY_RUN = Mode("dry-run", finite=True, sends=False)
