"""qsyncd.metrics: the Prometheus collector reads one Status snapshot and the Counters at each scrape (never
the daemon), and ``start_metrics`` serves them over HTTP until stopped."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qsyncd.metrics import _Collector, start_metrics
from qsyncd.stats import Counters, Status


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, labels) -> value of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(status: Status, counters: Counters) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(_Collector(lambda: status, counters))
    return samples(generate_latest(registry).decode())


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


def test_every_figure_comes_from_the_snapshot_and_the_counters() -> None:
    counters = Counters()
    counters.part_retried()
    counters.part_retried()
    counters.remote_error("connection_error")
    counters.remote_error("internal_error")
    counters.remote_error("connection_error")
    counters.verified()
    counters.verified()
    counters.object_lost("missing")
    counters.object_lost("changed")
    counters.object_lost("missing")
    status = Status(
        uploaded=5,
        reuploaded=1,
        uploaded_bytes=1234,
        skipped=2,
        copied=11,
        kept=12,
        refused=13,
        failed=3,
        retries=4,
        queued=6,
        settling=7,
        uploading=8,
        in_flight_bytes=99,
        last_upload_at=1_700_000_000.0,
    )
    got = scrape(status, counters)
    assert {
        ("qsyncd_files_uploaded_total", ()): 5,
        ("qsyncd_files_reuploaded_total", ()): 1,
        ("qsyncd_bytes_uploaded_total", ()): 1234,
        ("qsyncd_files_skipped_total", ()): 2,
        ("qsyncd_files_copied_total", ()): 11,
        ("qsyncd_versions_kept_total", ()): 12,
        ("qsyncd_changes_refused_total", ()): 13,
        ("qsyncd_files_failed", ()): 3,
        ("qsyncd_retries_total", ()): 4,
        ("qsyncd_part_retries_total", ()): 2,
        ("qsyncd_queue_depth", ()): 13,
        ("qsyncd_uploads_in_flight", ()): 8,
        ("qsyncd_in_flight_bytes", ()): 99,
        ("qsyncd_last_success_timestamp_seconds", ()): 1_700_000_000.0,
        ("qsyncd_remote_up", ()): 1,
        ("qsyncd_remote_errors_total", (("code", "connection_error"),)): 2,
        ("qsyncd_remote_errors_total", (("code", "internal_error"),)): 1,
        ("qsyncd_verify_rounds_total", ()): 2,
        ("qsyncd_objects_lost_total", (("kind", "missing"),)): 2,
        ("qsyncd_objects_lost_total", (("kind", "changed"),)): 1,
    } == got


def test_remote_down_and_no_upload_yet() -> None:
    got = scrape(Status(remote_down_since=1_700_000_000.0, remote_problem="unreachable"), Counters())
    assert (0, 0) == (got[("qsyncd_remote_up", ())], got[("qsyncd_last_success_timestamp_seconds", ())])
    assert not [k for k in got if k[0] == "qsyncd_remote_errors_total"]


def test_each_scrape_reads_a_fresh_snapshot() -> None:
    """The collector holds a function, not a snapshot: a later scrape sees later figures."""
    current = [Status(uploaded=1)]
    registry = CollectorRegistry()
    registry.register(_Collector(lambda: current[0], Counters()))
    first = samples(generate_latest(registry).decode())[("qsyncd_files_uploaded_total", ())]
    current[0] = Status(uploaded=9)
    second = samples(generate_latest(registry).decode())[("qsyncd_files_uploaded_total", ())]
    assert (1, 9) == (first, second)


def test_start_metrics_serves_over_http_and_stops() -> None:
    """On 127.0.0.1 and a free port: one scrape answers, ``metrics_listening`` names the address."""
    log = Log()
    server = start_metrics("127.0.0.1:0", lambda: Status(uploaded=3), Counters(), log)
    try:
        port = server.server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            got = samples(resp.read().decode())
        assert 3 == got[("qsyncd_files_uploaded_total", ())]
        assert [("metrics_listening", {"listen": "127.0.0.1:0"})] == log.events
    finally:
        server.stop()
        server.thread.join(timeout=10)
    assert not server.thread.is_alive()
