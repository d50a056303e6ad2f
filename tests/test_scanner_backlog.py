"""The scan waits for the uploads when many files are already waiting downstream (bounded memory, issue 21)."""

from __future__ import annotations

from pathlib import Path

import structlog
from qsynctest.memremote import MemRemote
from qsynctest.scanning import make_scanner

from qsyncd.config import WatchConfig
from qsyncd.service import scanner as scanner_mod
from qsyncd.service.roots import Roots
from qsyncd.service.scanner import MAX_BACKLOG
from qsyncd.watch import Hint


def test_the_scan_holds_back_while_the_backlog_is_full(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for d in ("a", "b", "c"):
        (root / d).mkdir(parents=True)
        for i in range(2):
            (root / d / f"f{i}").write_bytes(b"x")
    hints: list[Hint] = []
    backlog = [MAX_BACKLOG + 1, MAX_BACKLOG + 1]  # full for two polls, then empty
    waits: list[tuple[float, int]] = []
    log = structlog.get_logger()
    scan = make_scanner(
        Roots((WatchConfig(path=root),), log),
        tmp_path / "state",
        MemRemote(),
        emit=hints.append,
        backlog=lambda: backlog.pop(0) if backlog else 0,
        wait=lambda s: waits.append((s, len(hints))),
    )
    scan.scan(str(root), str(root), "startup")
    assert waits == [(scanner_mod.BACKLOG_POLL_SECONDS, 0)] * 2, "it must wait before it hints anything"
    assert sorted(Path(h.path).relative_to(root).as_posix() for h in hints) == [
        f"{d}/f{i}" for d in "abc" for i in range(2)
    ]
