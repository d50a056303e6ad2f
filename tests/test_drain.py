"""When `qsyncd sync` may stop: ``Daemon.drained()`` against each stage and each hand-over.

A real daemon object (config file, ledger, a real emulator behind its remote) whose threads are
not started: the test moves work through the stages by hand, as the threads would, and asks at
every step. The one-shot `sync` stops at the first True, so a True while a file is anywhere (or in
someone's hand between two stages) would leave that file un-uploaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qsynctest import write_config

from qsyncd.config import load_config
from qsyncd.pipeline import PRIORITY_EVENT
from qsyncd.service import SYNC, Daemon
from qsyncd.watch import Hint


@pytest.fixture
def daemon(tmp_path: Path, emulator: Any) -> Iterator[Daemon]:
    drop = tmp_path / "drop"
    drop.mkdir()
    cfg = load_config(write_config(tmp_path / "q.toml", endpoint=emulator.url, watch=drop, state=tmp_path / "state"))
    d = Daemon(cfg, mode=SYNC)
    try:
        yield d
    finally:
        d.shutdown()


def _hint(d: Daemon, name: str = "a.txt") -> Hint:
    root = d.roots.paths()[0]
    return Hint("closed", f"{root}/{name}", root, "test")


def test_nothing_anywhere_is_drained(daemon: Daemon) -> None:
    """A daemon with no work is drained (sync of an empty tree stops at once)."""
    assert daemon.drained()


def test_a_hint_counts_while_queued_and_while_in_hand(daemon: Daemon) -> None:
    """A hint is work from put() until the settle loop has handed it to the settler (task_done)."""
    daemon.hints.put(_hint(daemon))
    assert not daemon.drained()
    hint = daemon.hints.get_nowait()  # the settle loop has it, the settler not yet
    assert not daemon.drained()
    daemon.stages.settle.take(hint)  # into the settler, then task_done()
    assert len(daemon.stages.settler) == 1
    assert not daemon.drained()


def test_the_settle_hand_over_counts(daemon: Daemon) -> None:
    """While the settle loop hands due files to the pipeline, nothing is drained."""
    daemon.stages.settle.handing_over = True
    assert not daemon.drained()
    daemon.stages.settle.handing_over = False
    assert daemon.drained()


def test_queued_and_uploading_files_count(daemon: Daemon) -> None:
    """A file queued or taken by a worker is work until the worker is done with it."""
    path = _hint(daemon).path
    daemon.pipeline.submit(path, PRIORITY_EVENT)
    assert not daemon.drained()
    item = daemon.pipeline.take(0)
    assert item is not None
    assert not daemon.drained()
    daemon.pipeline.done(item, on_dirty=daemon.stages.worker.resettle)
    assert daemon.drained()


def test_a_file_changed_while_uploading_goes_back_to_settle_before_it_leaves(daemon: Daemon) -> None:
    """The worker's re-queue of a changed file happens while the file still counts as in flight."""
    path = _hint(daemon).path
    daemon.pipeline.submit(path, PRIORITY_EVENT)
    item = daemon.pipeline.take(0)
    assert item is not None
    daemon.pipeline.submit(path, PRIORITY_EVENT)  # changed again meanwhile: marked dirty
    seen: list[bool] = []

    def resettle(p: str) -> None:
        seen.append(daemon.drained())  # at this moment the file is still in flight
        daemon.stages.worker.resettle(p)

    assert daemon.pipeline.done(item, on_dirty=resettle) is True
    assert seen == [False]
    assert not daemon.drained()  # now it is a hint again
    assert daemon.hints.get_nowait().path == path


def test_work_that_moves_upstream_while_the_stages_are_looked_at_is_seen(daemon: Daemon, monkeypatch: Any) -> None:
    """The stages are looked at one after another; a file that goes back upstream (a worker's
    re-queue) after its stage was looked at is caught by the hand-over counters."""
    real_idle = daemon.pipeline.idle

    def idle_after_requeue() -> bool:
        # hints and the settler were looked at already: the file shows up behind the look
        daemon.hints.put(_hint(daemon, "requeued.txt"))
        return real_idle()

    monkeypatch.setattr(daemon.pipeline, "idle", idle_after_requeue)
    assert not daemon.drained()
