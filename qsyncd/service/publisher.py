"""The daemon's status: one ``Status`` snapshot built from the stages, published every few seconds.

``qsyncd status`` reads it from the ledger (safe while the daemon runs); the service also sends it to
systemd as the ``STATUS=`` line (``systemctl status qsyncd``), only when the line changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qsyncd.errors import QsyncdError
from qsyncd.notify import Notifier
from qsyncd.pipeline import Pipeline
from qsyncd.service.mode import Mode
from qsyncd.service.roots import Roots
from qsyncd.settle import Settler
from qsyncd.state import Ledger
from qsyncd.stats import Counters, Status


class StatusPublisher:
    """Reads the stages (never changes them) and writes the snapshot where its readers look."""

    def __init__(
        self,
        *,
        roots: Roots,
        pipeline: Pipeline,
        settler: Settler,
        counters: Counters,
        in_flight_bytes: Callable[[], int],
        ledger: Ledger,
        notifier: Notifier,
        mode: Mode,
        started_wall: float,
        wall: Callable[[], float],
        log: Any,
    ) -> None:
        self.roots = roots
        self.pipeline = pipeline
        self.settler = settler
        self.counters = counters
        self.in_flight_bytes = in_flight_bytes
        self.ledger = ledger
        self.notifier = notifier
        self.mode = mode
        self.started_wall = started_wall
        self.wall = wall
        self.log = log
        self._line = ""

    def snapshot(self, *, running: bool = True) -> Status:
        """The daemon now: its counts, its queues and the remote's state."""
        gate, c = self.pipeline.gate, self.counters
        return Status(
            started_at=self.started_wall,
            updated_at=self.wall(),
            running=running,
            roots=self.roots.watched(),
            queued=self.pipeline.queued(),
            settling=len(self.settler),
            uploading=self.pipeline.inflight(),
            in_flight_bytes=max(0, self.in_flight_bytes()),
            uploaded=c.uploaded,
            reuploaded=c.reuploaded,
            uploaded_bytes=c.uploaded_bytes,
            skipped=c.skipped,
            copied=c.copied,
            kept=c.kept,
            refused=c.refused,
            failed=c.failed,
            retries=c.retries,
            last_upload_at=c.last_upload_wall,
            remote_down_since=gate.since,
            remote_problem=gate.problem if gate.since else "",
            remote_error=gate.reason if gate.since else "",
        )

    def publish(self, *, final: bool = False) -> None:
        """Write the snapshot to the ledger and, in the service, to systemd."""
        if not self.mode.writes_ledger:  # beside a dry run, the status in the ledger is the daemon's
            return
        snap = self.snapshot(running=not final)
        try:
            self.ledger.set_daemon_status(snap.to_json())
        except QsyncdError as err:
            self.log.error("state_write_failed", error=str(err))
        if self.mode.service and not final:
            line = snap.line(self.wall())
            if line != self._line:
                self._line = line
                self.notifier.status(line)
