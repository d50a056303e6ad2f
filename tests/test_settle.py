"""Tests for qsyncd.settle: the finished-file state machine, driven by a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from qsyncd.identity import FileIdentity
from qsyncd.settle import Settler

STEP = 0.25  # fake clock tick; a power of two so sums of ticks are exact floats
P = "/w/file"


@dataclass
class FakeFile:
    """A file whose signature changes when it is written to."""

    size: int = 0
    mtime_ns: int = 0
    exists: bool = True

    def modify(self, now: float) -> None:
        """Append a byte at fake time ``now``."""
        self.size += 1
        self.mtime_ns = int(now * 1e9)

    def sig(self) -> FileIdentity | None:
        """Current signature, None once deleted."""
        if not self.exists:
            return None
        return FileIdentity(size=self.size, mtime_ns=self.mtime_ns, ino=42, ctime_ns=self.mtime_ns)


@dataclass
class Run:
    """What happened in one simulated run."""

    checks: list[tuple[float, str]] = field(default_factory=list)
    settler: Settler | None = None

    @property
    def terminal(self) -> list[tuple[float, str]]:
        """The ready/gone answers."""
        return [(t, r) for t, r in self.checks if r != "wait"]


def ticks(start: float, stop: float, every: float) -> list[float]:
    """start, start+every, ... < stop."""
    out = []
    t = start
    while t < stop:
        out.append(t)
        t += every
    return out


def simulate(script: dict[float, list[str]], *, quiet: float = 2.0, max_wait: float = 30.0, end: float = 80.0) -> Run:
    """Drive a Settler tick by tick: apply the script's actions, then check whatever is due.

    Actions: "write" (modify + write event), "close" (closed event), "touch" (closed event, no change),
    "silent" (modify with no event), "delete" (file vanishes, no event), "scan:<idle>" (scan event).
    Also checks next_deadline(): due() returns nothing before it.
    """
    settler = Settler(quiet, max_wait)
    f = FakeFile()
    run = Run(settler=settler)
    deadline: float | None = None
    for i in range(int(end / STEP) + 1):
        now = i * STEP
        if deadline is None or now < deadline:
            assert [] == settler.due(now), f"due() returned a path before next_deadline() {deadline} at {now}"
        for action in script.get(now, []):
            if action == "write":
                f.modify(now)
                settler.event(P, now, "write")
            elif action in ("close", "touch"):  # touch: a close with no change to the file
                settler.event(P, now, "closed")
            elif action == "silent":
                f.modify(now)
            elif action == "delete":
                f.exists = False
            elif action.startswith("scan:"):
                settler.event(P, now, "scan", idle_for=float(action[5:]))
            else:
                raise AssertionError(action)
        for path in settler.due(now):
            run.checks.append((now, settler.check(path, now, f.sig())))
        deadline = settler.next_deadline()
        assert deadline is None or deadline > now
    return run


def script_of(*pairs: tuple[list[float], str]) -> dict[float, list[str]]:
    """Build {time: [actions]} from (times, action) pairs."""
    out: dict[float, list[str]] = {}
    for times, action in pairs:
        for t in times:
            out.setdefault(t, []).append(action)
    return out


CASES = [
    pytest.param(
        script_of((ticks(0, 10, 0.5), "write"), ([10.0], "close")),
        [(12.0, "ready")],
        {},
        id="slow-writer-ready-at-close+quiet",
    ),
    pytest.param(script_of(([0.0], "write"), ([0.0], "close")), [(2.0, "ready")], {}, id="rename-into-place"),
    pytest.param(script_of(([5.0], "close")), [(7.0, "ready")], {}, id="moved-in-at-5"),
    pytest.param(script_of(([0.0], "scan:100")), [(0.0, "ready")], {}, id="scan-old-file-ready-on-first-check"),
    pytest.param(script_of(([0.0], "scan:0.5")), [(1.5, "ready")], {}, id="scan-fresh-file-waits-rest-of-quiet"),
    pytest.param(script_of(([0.0], "scan:0")), [(2.0, "ready")], {}, id="scan-brand-new-file"),
    pytest.param(
        # bursts of writes 3 s long every 8 s, never closed: pauses before max_wait (30) do not count
        script_of(([t for b in (0.0, 8.0, 16.0, 24.0, 32.0) for t in ticks(b, b + 3, 0.5)], "write")),
        # ready in the first still period after max_wait; the burst at 32 starts a new pending entry
        [(30.5, "ready"), (62.0, "ready")],
        {},
        id="keeps-changing-ready-only-after-max-wait-and-holding-still",
    ),
    pytest.param(
        # written continuously past max_wait: never ready while it changes; ready once it held still
        script_of((ticks(0, 50, 0.5), "write")),
        [(53.5, "ready")],
        {},
        id="continuous-writer-past-max-wait",
    ),
    pytest.param(script_of((ticks(0, 5, 0.5), "write")), [(30.0, "ready")], {}, id="log-file-never-closed"),
    pytest.param(script_of(([0.0], "close"), ([1.0], "delete")), [(2.0, "gone")], {}, id="deleted-file"),
    pytest.param(
        script_of(([0.0], "scan:0"), ([1.0, 3.0, 5.0], "silent")), [(8.0, "ready")], {}, id="sig-changes-without-events"
    ),
    pytest.param(
        script_of(([0.0], "close"), ([1.0], "write"), ([1.5], "close")),
        [(3.5, "ready")],
        {},
        id="event-during-quiet-restarts-clock",
    ),
    pytest.param(
        script_of(([0.0], "close"), ([1.0], "touch")),
        [(3.0, "ready")],
        {},
        id="event-without-change-still-restarts-clock",
    ),
    pytest.param(
        script_of(([0.0], "scan:100"), ([0.0], "write")),
        [(4.0, "ready")],
        {"max_wait": 1.0},
        id="event-voids-scan-idle-credit",
    ),
    pytest.param(
        script_of(([0.0], "close"), ([2.0], "silent")), [(4.0, "ready")], {}, id="change-at-quiet-boundary-is-caught"
    ),
]


@pytest.mark.parametrize(("script", "expected", "options"), CASES)
def test_settle_scenarios(
    script: dict[float, list[str]], expected: list[tuple[float, str]], options: dict[str, float]
) -> None:
    """Each scenario ends with exactly the expected ready/gone answers at the expected fake times."""
    run = simulate(script, **options)
    assert expected == run.terminal
    assert run.settler is not None and 0 == len(run.settler)


def test_first_check_of_event_entry_waits() -> None:
    """A path seen only through events answers "wait" on its first check and records the sig."""
    s = Settler(2.0, 30.0)
    s.event(P, 0.0, "closed")
    sig = FileIdentity(1, 1, 1, 1)
    assert [P] == s.due(0.0)
    assert "wait" == s.check(P, 0.0, sig)
    assert 2.0 == s.next_deadline()
    assert [] == s.due(1.75)
    assert [P] == s.due(2.0)
    assert "ready" == s.check(P, 2.0, sig)
    assert P not in s and 0 == len(s)


def test_wait_reschedules_at_earliest_ready_time() -> None:
    """After a changed sig the next check is quiet_seconds later, not earlier."""
    s = Settler(2.0, 30.0)
    s.event(P, 0.0, "closed")
    s.due(0.0)
    s.check(P, 0.0, FileIdentity(1, 1, 1, 1))
    s.due(2.0)
    assert "wait" == s.check(P, 2.0, FileIdentity(2, 2, 1, 2))
    assert 4.0 == s.next_deadline()


def test_inode_change_counts_as_change() -> None:
    """A file replaced by another with the same size and mtime (new inode) is not stable."""
    s = Settler(2.0, 30.0)
    s.event(P, 0.0, "closed")
    s.due(0.0)
    s.check(P, 0.0, FileIdentity(10, 5, 1, 5))
    s.due(2.0)
    assert "wait" == s.check(P, 2.0, FileIdentity(10, 5, 2, 5))


def test_forget_drops_pending_path() -> None:
    """forget() removes a path; it is never due and check() answers "gone"."""
    s = Settler(2.0, 30.0)
    s.event(P, 0.0, "write")
    s.event("/w/other", 0.0, "write")
    s.forget(P)
    assert P not in s and 1 == len(s)
    assert ["/w/other"] == s.due(100.0)
    assert "gone" == s.check(P, 100.0, FileIdentity(1, 1, 1, 1))


def test_due_pops_schedule_but_keeps_table() -> None:
    """A due path stays pending (in the table) but is not returned again until touched or checked."""
    s = Settler(2.0, 30.0)
    s.event(P, 0.0, "closed")
    assert [P] == s.due(0.0)
    assert [] == s.due(10.0)
    assert P in s and s.next_deadline() is None
    s.event(P, 11.0, "scan")  # a rescan re-schedules it
    assert [P] == s.due(11.0)


def test_scan_of_pending_path_does_not_reset_clock() -> None:
    """A scan finding an already pending file keeps its timing."""
    s = Settler(2.0, 30.0)
    s.event(P, 0.0, "write")
    s.event(P, 1.0, "scan", idle_for=100.0)
    assert [] == s.due(1.75)
    assert [P] == s.due(2.0)


def test_closed_clears_open_state() -> None:
    """After write then closed, the file does not wait for max_wait."""
    run = simulate(script_of(([0.0], "write"), ([0.5], "close")), max_wait=1000.0)
    assert [(2.5, "ready")] == run.terminal


def test_zero_quiet_is_ready_at_once_after_baseline() -> None:
    """quiet_seconds = 0: a closed file is ready on its first check."""
    s = Settler(0.0, 10.0)
    s.event(P, 0.0, "closed")
    assert [P] == s.due(0.0)
    assert "ready" == s.check(P, 0.0, FileIdentity(1, 1, 1, 1))


def test_many_pending_due_returns_only_due_ones() -> None:
    """With 100,000 pending paths, due() returns exactly those whose time has come, each once."""
    s = Settler(2.0, 300.0)
    n = 100_000
    for i in range(n):
        s.event(f"/w/{i}", i * 0.001, "write")  # check time = i*0.001 + 2
    assert n == len(s)
    first = s.due(10.0)  # i*0.001 + 2 <= 10  ->  i <= 8000
    assert 8001 == len(first)
    assert set(first) == {f"/w/{i}" for i in range(8001)}
    assert [] == s.due(10.0)
    assert n == len(s)
    s.event("/w/5", 10.0, "closed")  # re-activate one already popped
    assert ["/w/5"] == s.due(10.0)
    later = s.due(1000.0)
    assert n - 8001 == len(later)
    assert s.next_deadline() is None


def test_heap_stays_bounded_under_event_storms() -> None:
    """Repeated events on the same paths do not grow the schedule without bound (lazy invalidation + compaction)."""
    s = Settler(2.0, 300.0)
    paths = [f"/w/{i}" for i in range(1000)]
    t = 0.0
    for _ in range(50):
        for p in paths:
            s.event(p, t, "write")
            s.event(p, t, "closed")  # pulls the check earlier: a new heap item each time
        t += 0.001
    assert 1000 == len(s)
    assert len(s._heap) <= 4 * len(s) + 1024
    assert sorted(paths) == sorted(s.due(t))


def test_rejects_unknown_event_kind() -> None:
    """A typo in the event kind is an error, not a silent no-op."""
    with pytest.raises(ValueError, match="unknown event kind"):
        Settler(2.0, 30.0).event(P, 0.0, "modified")  # type: ignore[arg-type]
