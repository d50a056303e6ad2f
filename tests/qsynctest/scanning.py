"""A ``Scanner`` for unit tests of the scan stage: a fake clock at 0, no heartbeat, never stopping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from qsyncd.remote.base import Remote
from qsyncd.remoteindex import RemoteIndex
from qsyncd.service.roots import Roots
from qsyncd.service.scanner import Scanner
from qsyncd.state import Ledger
from qsyncd.watch import Hint


def make_scanner(
    roots: Roots,
    state: Path,
    remote: Remote,
    *,
    emit: Callable[[Hint], None] = lambda hint: None,
    list_directories: bool = False,
    **extra: Any,
) -> Scanner:
    """A ``Scanner`` over ``roots`` with a ``Ledger`` in ``state`` and a fresh ``RemoteIndex``; ``extra``
    goes to ``Scanner`` as it is (``backlog``, ``wait``)."""
    return Scanner(
        roots,
        Ledger(state),
        emit,
        remote=remote,
        index=RemoteIndex(),
        clock=lambda: 0.0,
        wall=lambda: 0.0,
        beat=lambda: None,
        stopping=lambda: False,
        log=structlog.get_logger(),
        list_directories=list_directories,
        **extra,
    )
