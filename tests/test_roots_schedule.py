"""How often a root is rescanned: the configured interval, or sooner while the inotify limit leaves it half-watched."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from qsynctest.memremote import MemRemote
from qsynctest.scanning import make_scanner

from qsyncd.config import SettleConfig, WatchConfig
from qsyncd.service.roots import (
    LIMITED_SCAN_SHARE,
    ROOT_CHECK_SECONDS,
    Roots,
    limited_rescan_every,
    periodic_rescan_every,
)

NO_SHARE = SettleConfig(rescan_interval_seconds=600.0, rescan_cpu_share=0.0)  # the interval as configured


@pytest.mark.parametrize(
    ("interval", "scan_cpu", "every"),
    [
        (600.0, 0.0, ROOT_CHECK_SECONDS),  # not scanned yet: soon
        (600.0, 0.01, ROOT_CHECK_SECONDS),  # a small tree: every 10 s
        (600.0, 0.2, ROOT_CHECK_SECONDS),  # exactly the share at 10 s
        (600.0, 1.0, 1.0 / LIMITED_SCAN_SHARE),  # 50 s: 2 % of a core
        (600.0, 6.0, 300.0),  # a million files: every 5 minutes
        (600.0, 60.0, 600.0),  # never rarer than the configured interval
        (3.0, 0.01, 3.0),  # a configured interval shorter than 10 s wins
        (3.0, 6.0, 3.0),
    ],
)
def test_a_half_watched_root_is_rescanned_as_often_as_its_cost_allows(
    interval: float, scan_cpu: float, every: float
) -> None:
    assert limited_rescan_every(interval, scan_cpu) == pytest.approx(every)


@pytest.mark.parametrize(
    ("interval", "scan_cpu", "share", "every"),
    [
        (600.0, 0.0, 0.005, 600.0),  # not scanned yet: the configured interval
        (600.0, 0.55, 0.005, 600.0),  # 100,000 files: 0.09 % of a core at 600 s
        (600.0, 3.0, 0.005, 600.0),  # exactly the share
        (600.0, 6.0, 0.005, 1200.0),  # 1,000,000 files: stretched to 0.5 % of a core
        (600.0, 6.0, 0.0, 600.0),  # no limit
        (1.0, 0.55, 0.0, 1.0),  # the bench's rescans every second
        (1.0, 0.001, 0.005, 1.0),  # a tiny tree with a short interval (tests)
        (3600.0, 6.0, 0.005, 3600.0),  # a long interval is never shortened
    ],
)
def test_a_watched_root_is_rescanned_at_the_interval_stretched_to_its_cpu_share(
    interval: float, scan_cpu: float, share: float, every: float
) -> None:
    assert periodic_rescan_every(interval, scan_cpu, share) == pytest.approx(every)


def test_only_a_limited_root_is_rescanned_sooner_and_a_full_scan_sets_its_cost(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"x")
    log = structlog.get_logger()
    roots = Roots((WatchConfig(path=root),), log)
    r = roots.get(str(root))
    assert r is not None
    assert roots.rescan_every(r, NO_SHARE) == 600.0
    roots.scanned(str(root), 6.0)
    assert roots.rescan_every(r, SettleConfig(rescan_interval_seconds=600.0, rescan_cpu_share=0.005)) == pytest.approx(
        1200.0
    )
    r.scan_cpu = 0.0
    r.limited = True
    assert roots.rescan_every(r, NO_SHARE) == ROOT_CHECK_SECONDS
    scanner = make_scanner(roots, tmp_path / "state", MemRemote())
    roots.scanned(str(root), 3.0)  # as a rescan costing 3 CPU s would
    assert roots.rescan_every(r, NO_SHARE) == pytest.approx(150.0)
    scanner.scan(str(root), str(root / "d"), "directory_created")  # a part of the root: its cost says nothing
    assert r.scan_cpu == 3.0
    scanner.scan(str(root), str(root), "periodic")  # the whole root: a tiny tree's real cost replaces it
    assert r.scan_cpu < 3.0
    assert roots.rescan_every(r, NO_SHARE) == ROOT_CHECK_SECONDS
