"""Running a bit of qsyncd as ``nobody`` (setpriv), for the checks root cannot make (root ignores file modes).

The checkout may sit where ``nobody`` cannot read it (a clone under ``mktemp -d``, mode 0700), so the
child gets its own copy of the ``qsyncd`` package in a directory anyone can read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qsynctest.constants import REPO


def readable_package(base: Path) -> str:
    """Copy the ``qsyncd`` package under ``base`` (made 0755) and return the PYTHONPATH that imports it."""
    where = base / "pythonpath"
    shutil.copytree(REPO / "qsyncd", where / "qsyncd", ignore=shutil.ignore_patterns("__pycache__"))
    for d in (base, where, *where.rglob("*")):
        d.chmod(0o755 if d.is_dir() else 0o644)
    return str(where)
