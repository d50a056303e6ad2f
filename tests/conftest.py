"""Fixtures for every test: see ``qsynctest`` (import helpers from there, not from conftest)."""

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# tests/systemd is deliberately not a package (see sdharness.py): put it on sys.path for its fixtures
sys.path.insert(0, str(Path(__file__).parent / "systemd"))

from qsynctest import (  # noqa: F401  (fixtures and names re-exported for pytest and older imports)
    ACCESS_KEY,
    BUCKET,
    SECRET,
    DaemonProc,
    daemon_factory,
    emulator,
    emulator_proc,
    emulator_seed,
    fast_emulator,
    ledger,
    notify_socket,
    remote,
    require_in_ci,
    shared,
    wait_for,
    write_config,
)
from sdharness import journald  # noqa: F401  (a fixture for tests outside tests/systemd)

# ----------------------------------------------------------------------------- soak mode, markers, workers
# QSYNCD_SOAK=1 and --soak are one switch: --soak sets QSYNCD_SOAK=1 for this run (and the processes it
# starts) before any test module reads it. Soak mode scales the reliability counts up (relsupport.scale)
# and runs the tests marked ``slow``; CI mode (the default) skips those.
#
# ./scripts/test runs the suite on 3 pytest-xdist workers. A test marked ``alone`` (it changes something
# host-wide, e.g. fs.inotify.max_queued_events) waits until no other test runs and holds the others off
# until it ends: workers share a lock file (shared for every test, exclusive for ``alone`` ones).


if "--soak" in sys.argv[1:]:
    # set now, not in pytest_configure: `pytest tests/reliability --soak` imports relsupport (which reads
    # QSYNCD_SOAK once) with the initial conftests, before pytest_configure runs
    os.environ["QSYNCD_SOAK"] = "1"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="soak mode: the same as QSYNCD_SOAK=1")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--soak"):
        os.environ["QSYNCD_SOAK"] = "1"


def soak_mode() -> bool:
    """Whether this run is a soak (QSYNCD_SOAK=1 or --soak)."""
    return os.environ.get("QSYNCD_SOAK") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if soak_mode():
        return
    skip = pytest.mark.skip(reason="soak-sized: runs with QSYNCD_SOAK=1 or --soak")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Under xdist, hold the shared lock for the whole test (setup to teardown); an ``alone`` test the
    exclusive one. A turnstile taken first keeps a waiting ``alone`` test from being starved. Outermost
    (tryfirst), so the wait for the lock does not count in pytest-timeout's per-test timeout."""
    lock_dir = _worker_lock_dir(item.config)
    if lock_dir is None:
        return (yield)
    alone = item.get_closest_marker("alone") is not None
    with open(lock_dir / "turnstile.lock", "a") as turnstile, open(lock_dir / "tests.lock", "a") as tests:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(tests, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            return (yield)
        finally:
            fcntl.flock(tests, fcntl.LOCK_UN)


def _worker_lock_dir(config: pytest.Config) -> Path | None:
    """The directory the workers of this run share, or None without xdist: each worker's basetemp is
    <the run's basetemp>/popen-gwN."""
    if not hasattr(config, "workerinput") or not config.option.basetemp:
        return None
    return Path(config.option.basetemp).parent


# The reliability figures and seeds (relsupport) are summed per process; under xdist each worker sends its
# own to the controller, which prints the totals and writes $QSYNCD_FIGURES_FILE.
_WORKER_FIGURES: dict[str, int] = {}
_WORKER_SEEDS: list[tuple[str, int]] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    rel = sys.modules.get("relsupport")
    if hasattr(session.config, "workeroutput") and rel is not None:
        session.config.workeroutput["qsyncd_figures"] = dict(rel.FIGURES)
        session.config.workeroutput["qsyncd_seeds"] = list(rel.SEEDS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    out = getattr(node, "workeroutput", {})
    for name, value in out.get("qsyncd_figures", {}).items():
        _WORKER_FIGURES[name] = _WORKER_FIGURES.get(name, 0) + value
    _WORKER_SEEDS.extend(tuple(s) for s in out.get("qsyncd_seeds", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _WORKER_SEEDS:
        terminalreporter.write_sep("-", "reliability seeds, all workers (QSYNCD_SEED=N reproduces)")
        for nodeid, value in sorted(_WORKER_SEEDS):
            terminalreporter.write_line(f"{nodeid}: {value}")
    if any(_WORKER_FIGURES.values()):
        mode = "soak" if soak_mode() else "ci"
        terminalreporter.write_sep("-", f"reliability figures, all workers ({mode} mode)")
        terminalreporter.write_line(json.dumps(_WORKER_FIGURES, sort_keys=True))
        out = os.environ.get("QSYNCD_FIGURES_FILE")
        if out:
            Path(out).write_text(json.dumps({"mode": mode, **_WORKER_FIGURES}, indent=2))
