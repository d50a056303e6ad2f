"""The upload queue: dedupe, priorities, delayed retries and the remote gate, driven by a fake clock."""

from __future__ import annotations

import threading

from qsynctest import FakeClock

from qsyncd.pipeline import PRIORITY_EVENT, PRIORITY_SCAN, CountingQueue, Pipeline


def test_event_files_go_before_scan_backlog() -> None:
    """A fresh file seen by an event is handed out before files found by a scan."""
    p = Pipeline(FakeClock())
    for i in range(100):
        p.submit(f"/scan/{i}", PRIORITY_SCAN)
    p.submit("/fresh", PRIORITY_EVENT)
    assert "/fresh" == p.take(0).path


def test_same_path_is_queued_once() -> None:
    """Submitting a queued path again does not duplicate it."""
    p = Pipeline(FakeClock())
    assert p.submit("/a", PRIORITY_SCAN) is True
    assert p.submit("/a", PRIORITY_SCAN) is False
    assert 1 == p.queued()


def test_change_while_in_flight_is_reported_by_done() -> None:
    """A path submitted while it is being uploaded is flagged dirty, not queued twice."""
    p = Pipeline(FakeClock())
    p.submit("/a", PRIORITY_EVENT)
    item = p.take(0)
    assert p.submit("/a", PRIORITY_EVENT) is False
    assert 0 == p.queued()
    assert p.done(item) is True
    p.submit("/b", PRIORITY_EVENT)
    other = p.take(0)
    assert p.done(other) is False


def test_retry_waits_for_its_delay() -> None:
    """A retried item is not handed out before its delay has passed."""
    clock = FakeClock()
    p = Pipeline(clock)
    p.submit("/a", PRIORITY_EVENT)
    item = p.take(0)
    p.retry_later(item, 5.0)
    assert p.take(0) is None
    clock.now += 5.0
    again = p.take(0)
    assert "/a" == again.path


def test_gate_pauses_everyone_until_it_opens() -> None:
    """While the gate is closed no item is handed out; the first close starts an outage."""
    clock = FakeClock()
    p = Pipeline(clock)
    p.submit("/a", PRIORITY_EVENT)
    assert p.close_gate(10.0, "down", wall=1.0) is True
    assert p.close_gate(10.0, "down", wall=2.0) is False
    assert p.take(0) is None
    assert 1.0 == p.open_gate()
    assert "/a" == p.take(0).path


def test_a_burst_of_failures_while_closed_is_one_step_of_the_outage() -> None:
    """Uploads in flight when the remote went down all fail at once: one failure, one pause, not sixteen."""
    clock = FakeClock(0.0)
    p = Pipeline(clock)
    p.close_gate(1.0, "down", wall=1.0)
    for _ in range(15):
        clock.now += 0.01
        p.close_gate(4.0, "down", wall=1.0)
    assert 1 == p.gate.failures
    assert 1.0 == p.gate.until  # the burst did not push the next probe back
    clock.now = 1.5  # the probe after the pause fails: the next step
    p.close_gate(2.0, "down", wall=2.0)
    assert 2 == p.gate.failures
    assert 3.5 == p.gate.until


def test_files_paused_by_the_gate_go_as_soon_as_it_opens() -> None:
    """A file held back by an outage has no delay of its own once the remote answers again."""
    clock = FakeClock()
    p = Pipeline(clock)
    p.submit("/a", PRIORITY_EVENT)
    item = p.take(0)
    p.close_gate(60.0, "down", wall=1.0)
    p.retry_later(item, 0.0)
    assert p.take(0) is None
    clock.now += 1.0
    p.open_gate()
    assert "/a" == p.take(0).path


def test_take_wakes_up_on_submit() -> None:
    """A worker blocked in take() gets an item submitted from another thread."""
    p = Pipeline()
    got = []
    t = threading.Thread(target=lambda: got.append(p.take(10.0)))
    t.start()
    p.submit("/x", PRIORITY_EVENT)
    t.join(10)
    assert "/x" == got[0].path


def test_wait_idle_after_done() -> None:
    """wait_idle() becomes true only when nothing is queued or in flight."""
    p = Pipeline()
    p.submit("/x", PRIORITY_EVENT)
    item = p.take(0)
    assert p.wait_idle(0.01) is False
    p.done(item)
    assert p.wait_idle(0.01) is True


def test_done_calls_on_dirty_while_the_file_still_counts_in_flight() -> None:
    """``done(item, on_dirty)`` re-queues a changed file before it stops counting as in flight."""
    p = Pipeline(FakeClock())
    p.submit("/a", PRIORITY_EVENT)
    item = p.take(0)
    p.submit("/a", PRIORITY_EVENT)  # changed while in flight
    during: list[tuple[str, int, bool]] = []
    assert p.done(item, on_dirty=lambda path: during.append((path, p.inflight(), p.idle()))) is True
    assert during == [("/a", 1, False)]
    assert p.idle()
    p.submit("/b", PRIORITY_EVENT)
    clean = p.take(0)
    assert p.done(clean, on_dirty=lambda path: during.append((path, 0, True))) is False
    assert len(during) == 1  # not called for a file that did not change


def test_submitted_counts_new_entries_only() -> None:
    """``submitted`` grows with every path queued, not with re-submits that were merged."""
    p = Pipeline(FakeClock())
    p.submit("/a", PRIORITY_SCAN)
    p.submit("/a", PRIORITY_EVENT)  # already queued: merged (priority raised)
    p.submit("/b", PRIORITY_SCAN)
    assert p.submitted == 2


def test_counting_queue_counts_puts_and_unfinished_work() -> None:
    """CountingQueue: ``puts`` counts every put; an item counts as unfinished until task_done()."""
    q = CountingQueue()
    q.put("x")
    q.put("y")
    assert q.puts == 2
    assert q.get_nowait() == "x"
    assert q.unfinished_tasks == 2  # "x" is in hand, "y" queued
    q.task_done()
    assert q.unfinished_tasks == 1
    assert q.puts == 2
