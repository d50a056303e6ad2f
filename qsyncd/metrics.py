"""Optional Prometheus endpoint (``[metrics] listen = "127.0.0.1:9464"``): the daemon's counts and status.

The collector reads a ``Status`` snapshot and the ``Counters`` (both ``qsyncd.stats``) at each scrape;
it never sees the daemon itself. The counts mean what README ("What the counts mean") says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from qsyncd.stats import Counters, Status


class _Collector:
    def __init__(self, status: Callable[[], Status], counters: Counters) -> None:
        self.status = status
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        c, snap = self.counters, self.status()
        yield CounterMetricFamily(
            "qsyncd_files_uploaded",
            "Files uploaded (a file sent again after it changed counts once)",
            value=snap.uploaded,
        )
        yield CounterMetricFamily(
            "qsyncd_files_reuploaded",
            "Further uploads of files already uploaded, after they changed",
            value=snap.reuploaded,
        )
        yield CounterMetricFamily("qsyncd_bytes_uploaded", "Bytes uploaded", value=snap.uploaded_bytes)
        yield CounterMetricFamily(
            "qsyncd_files_skipped", "Files skipped (already present or not uploadable)", value=snap.skipped
        )
        yield CounterMetricFamily(
            "qsyncd_files_copied",
            "Files put in place by a server-side copy or move of an object with the same bytes (renames)",
            value=snap.copied,
        )
        yield CounterMetricFamily(
            "qsyncd_versions_kept", 'Replaced versions kept (on_change = "keep")', value=snap.kept
        )
        yield CounterMetricFamily(
            "qsyncd_changes_refused",
            'Files not uploaded because the bucket holds another version (on_change = "refuse")',
            value=snap.refused,
        )
        yield GaugeMetricFamily("qsyncd_files_failed", "Files whose last upload attempt failed", value=snap.failed)
        yield CounterMetricFamily("qsyncd_retries", "Failed upload attempts scheduled again", value=snap.retries)
        yield CounterMetricFamily("qsyncd_part_retries", "Multipart part retries", value=c.part_retries)
        yield GaugeMetricFamily(
            "qsyncd_queue_depth", "Files waiting (settling + queued)", value=snap.queued + snap.settling
        )
        yield GaugeMetricFamily("qsyncd_uploads_in_flight", "Files being uploaded", value=snap.uploading)
        yield GaugeMetricFamily("qsyncd_in_flight_bytes", "Bytes of files being uploaded", value=snap.in_flight_bytes)
        yield GaugeMetricFamily(
            "qsyncd_last_success_timestamp_seconds", "Time of the last finished upload", value=snap.last_upload_at or 0
        )
        yield GaugeMetricFamily(
            "qsyncd_remote_up",
            "1 unless the remote is unreachable or refusing us",
            value=0 if snap.remote_down_since else 1,
        )
        yield CounterMetricFamily(
            "qsyncd_verify_rounds", "Periodic verifies of the bucket against the ledger", value=c.verify_rounds
        )
        lost = CounterMetricFamily(
            "qsyncd_objects_lost",
            "Uploaded files whose object a periodic verify found missing or changed (sent again), by kind",
            labels=["kind"],
        )
        for kind in ("missing", "changed"):
            lost.add_metric([kind], dict(c.objects_lost).get(kind, 0))
        yield lost
        errs = CounterMetricFamily("qsyncd_remote_errors", "Remote errors by code", labels=["code"])
        for code, n in sorted(dict(c.remote_errors).items()):
            errs.add_metric([code], n)
        yield errs


class MetricsServer:
    def __init__(self, server: Any, thread: Any) -> None:
        self.server = server
        self.thread = thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_metrics(listen: str, status: Callable[[], Status], counters: Counters, log: Any) -> MetricsServer:
    """Serve the metrics on ``listen`` ("host:port") in a background thread."""
    host, _, port = listen.rpartition(":")
    registry = CollectorRegistry()
    registry.register(_Collector(status, counters))
    server, thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry)
    log.info("metrics_listening", listen=listen)
    return MetricsServer(server, thread)
