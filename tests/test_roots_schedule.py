"""How often a root is rescanned: the configured interval, or sooner while the inotify limit leaves it half-watched."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from qsynctest.memremote import MemRemote

from qsyncd.config import WatchConfig
from qsyncd.remoteindex import RemoteIndex
from qsyncd.service.roots import LIMITED_SCAN_SHARE, ROOT_CHECK_SECONDS, Roots, limited_rescan_every
from qsyncd.service.scanner import Scanner
from qsyncd.state import Ledger


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


def test_only_a_limited_root_is_rescanned_sooner_and_a_full_scan_sets_its_cost(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"x")
    log = structlog.get_logger()
    roots = Roots((WatchConfig(path=root),), log)
    r = roots.get(str(root))
    assert r is not None
    assert roots.rescan_every(r, 600.0) == 600.0
    r.limited = True
    assert roots.rescan_every(r, 600.0) == ROOT_CHECK_SECONDS
    scanner = Scanner(
        roots,
        Ledger(tmp_path / "state"),
        lambda h: None,
        remote=MemRemote(),
        index=RemoteIndex(),
        clock=lambda: 0.0,
        wall=lambda: 0.0,
        beat=lambda: None,
        stopping=lambda: False,
        log=log,
        list_directories=False,
    )
    roots.scanned(str(root), 3.0)  # as a rescan costing 3 CPU s would
    assert roots.rescan_every(r, 600.0) == pytest.approx(150.0)
    scanner.scan(str(root), str(root / "d"), "directory_created")  # a part of the root: its cost says nothing
    assert r.scan_cpu == 3.0
    scanner.scan(str(root), str(root), "periodic")  # the whole root: a tiny tree's real cost replaces it
    assert r.scan_cpu < 3.0
    assert roots.rescan_every(r, 600.0) == ROOT_CHECK_SECONDS
