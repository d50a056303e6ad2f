"""The service's periodic verify (``service/reverify.py``): one listing per prefix against the ledger.

Unit tests of the stage on the in-memory remote with a real ledger and real files; time is a
``FakeClock`` and the wait a script, so nothing sleeps. The e2e proof (a daemon, the emulator, an
object deleted behind its back and uploaded again) is tests/e2e/test_e2e_reverify.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qsynctest import FakeClock, md5_b64
from qsynctest.memremote import MemRemote

from qsyncd.config import WatchConfig
from qsyncd.errors import Unreachable
from qsyncd.identity import FileIdentity
from qsyncd.remoteindex import RemoteIndex
from qsyncd.service.reverify import RETRY_AFTER_ERROR, PeriodicVerify
from qsyncd.service.roots import Roots
from qsyncd.state import FileRecord, Ledger
from qsyncd.stats import Counters
from qsyncd.watch import Hint

WALL = time.time() + 3600  # "an hour after the files were written"


class Log:
    """Records (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.lines.append((level, event, kw))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [kw for _, event, kw in self.lines if event == name]


class World:
    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "w"
        self.root.mkdir()
        self.remote = MemRemote()
        self.ledger = Ledger(tmp / "state")
        self.log = Log()
        self.roots = Roots((WatchConfig(path=self.root, prefix="bk/"),), self.log)
        self.index = RemoteIndex(clock=FakeClock())
        self.hints: list[Hint] = []
        self.counters = Counters()
        self.clock = FakeClock()
        self.wall = WALL
        self.waits: list[float] = []
        self.stop_after = 1

    def wait(self, seconds: float) -> bool:
        """The daemon's stop_event.wait: records the delay, says "stop" after ``stop_after`` rounds."""
        self.waits.append(seconds)
        self.clock.advance(seconds)
        self.wall += seconds
        return len(self.waits) > self.stop_after

    def verifier(self, interval: float = 3600.0) -> PeriodicVerify:
        return PeriodicVerify(
            self.remote,
            self.ledger,
            self.roots,
            self.index,
            self.hints.append,
            self.counters,
            interval=interval,
            clock=self.clock,
            wall=lambda: self.wall,
            wait=self.wait,
            log=self.log,
        )

    def uploaded(self, rel: str, data: bytes, *, at: float | None = None) -> FileRecord:
        """A file on disk, its object in the bucket and its ledger record, as after an upload."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.remote.put("bk/" + rel, io.BytesIO(data), len(data), md5_b64(data))
        st = os.lstat(path)
        ident = FileIdentity.of(st)
        rec = FileRecord(
            str(path), "bk/" + rel, ident.size, ident.mtime_ns, ident.ino, hashlib.md5(data).hexdigest(),
            WALL - 100 if at is None else at,
        )  # fmt: skip
        self.ledger.record_uploaded(rec)
        return rec

    def calls(self) -> list[str]:
        return [method for method, _ in self.remote.store.calls]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.ledger.close()


def test_an_unchanged_bucket_costs_one_listing_and_sends_nothing(world: World) -> None:
    for i in range(5):
        world.uploaded(f"d{i % 2}/f{i}", os.urandom(100 + i))
    world.remote.store.calls.clear()
    assert [] == world.verifier().round()
    assert ["list_objects"] == world.calls()  # one listing for the prefix: no HEAD per file
    assert [] == world.hints
    assert 5 == len(world.ledger.uploaded_under(str(world.root)))
    done = world.log.events("verify_finished")
    assert [(["bk/"], 5, 5, 0, 0)] == [
        (e["prefixes"], e["records"], e["objects"], e["missing"], e["changed"]) for e in done
    ]
    assert (1, {}) == (world.counters.verify_rounds, world.counters.objects_lost)


def replace(world: World, key: str, data: bytes) -> None:
    world.remote.put(key, io.BytesIO(data), len(data), md5_b64(data))


def test_deleted_and_replaced_objects_are_forgotten_and_hinted_again(world: World) -> None:
    gone = world.uploaded("a.txt", b"alpha " * 50)
    swapped = world.uploaded("sub/b.txt", b"bravo " * 50)
    resized = world.uploaded("sub/c.txt", b"charlie")
    kept = world.uploaded("sub/d.txt", b"delta")
    world.remote.store.remove("bk/a.txt")
    replace(world, "bk/sub/b.txt", b"BRAVO " * 50)  # same size, other bytes
    replace(world, "bk/sub/c.txt", b"c")
    world.remote.store.calls.clear()

    found = world.verifier().round()
    assert [(gone.path, "missing", "deleted_from_bucket"), (swapped.path, "changed", "content_differs"),
            (resized.path, "changed", "size_differs")] == [(f.path, f.kind, f.reason) for f in found]  # fmt: skip
    assert ["list_objects"] == world.calls()  # no HEAD, no PUT: the upload stage does the rest
    assert [(gone.path, "verify"), (swapped.path, "verify"), (resized.path, "verify")] == [
        (h.path, h.reason) for h in world.hints
    ]
    assert all(h.kind == "scan" and h.root == str(world.root) and h.idle_for > 0 for h in world.hints)
    assert {kept.path} == set(world.ledger.uploaded_under(str(world.root)))  # the others' records are dropped
    assert [("bk/a.txt", gone.path, "deleted_from_bucket", True)] == [
        (e["key"], e["path"], e["reason"], e["on_disk"]) for e in world.log.events("object_missing")
    ]
    assert ["bk/sub/b.txt", "bk/sub/c.txt"] == [e["key"] for e in world.log.events("object_changed")]
    assert {"missing": 1, "changed": 2} == world.counters.objects_lost
    done = world.log.events("verify_finished")[0]
    assert (4, 3, 1, 2) == (done["records"], done["objects"], done["missing"], done["changed"])

    world.hints.clear()
    assert [] == world.verifier().round()  # found once: the dropped records are not reported again


def test_a_listing_shortcut_no_longer_vouches_for_a_lost_object(world: World) -> None:
    """A scan's listing (RemoteIndex) said the object was there; once the verify found it gone the uploader
    must not skip the file on that word: the key is forgotten, so it looks at the bucket again."""
    world.uploaded("a.txt", b"alpha")
    world.index.record_listing("bk/", world.remote.list_objects("bk/", "/"))
    assert (True, True) == (world.index.lookup("bk/a.txt")[0], world.index.lookup("bk/a.txt")[1] is not None)
    world.remote.store.remove("bk/a.txt")
    assert 1 == len(world.verifier().round())
    assert (False, None) == world.index.lookup("bk/a.txt")


def test_a_file_gone_from_disk_only_loses_its_record(world: World) -> None:
    rec = world.uploaded("a.txt", b"alpha")
    os.unlink(rec.path)
    world.remote.store.remove("bk/a.txt")
    assert 1 == len(world.verifier().round())
    assert [] == world.hints  # nothing to send
    assert world.ledger.get(rec.path) is None
    assert [(False, "record_dropped")] == [(e["on_disk"], e["action"]) for e in world.log.events("object_missing")]


def test_a_record_written_after_the_listing_started_waits_for_the_next_round(world: World) -> None:
    """An upload that finished while the bucket was listed may be missing from the listing: not lost."""
    rec = world.uploaded("new.txt", b"just sent", at=WALL - 1)
    world.remote.store.remove("bk/new.txt")  # as if the listing had been made before the PUT
    assert [] == world.verifier().round()
    assert rec == world.ledger.get(rec.path)


def test_first_round_one_interval_after_start_then_every_interval(world: World) -> None:
    world.uploaded("a.txt", b"alpha")
    world.stop_after = 3
    world.verifier(interval=600.0).loop()
    assert [600.0, 600.0, 600.0, 600.0] == world.waits  # a wait before the first round: none at start-up
    assert 3 == world.counters.verify_rounds
    assert 3 == [m for m, _ in world.remote.store.calls].count("list_objects")


def test_a_remote_error_is_logged_and_tried_again_sooner(world: World) -> None:
    world.uploaded("a.txt", b"alpha")
    world.remote.store.fail("list_objects", Unreachable("no route", code="unreachable", operation="ListObjects"))
    world.stop_after = 2
    world.verifier(interval=3600.0).loop()
    assert [3600.0, RETRY_AFTER_ERROR, 3600.0] == world.waits
    assert 1 == len(world.log.events("verify_failed")) and 1 == world.counters.verify_rounds


def test_several_roots_under_one_prefix_are_listed_once(tmp_path: Path, world: World) -> None:
    other = tmp_path / "w2"
    other.mkdir()
    world.roots = Roots(
        (WatchConfig(path=world.root, prefix="bk/"), WatchConfig(path=other, prefix="bk/two/")), world.log
    )
    world.uploaded("a.txt", b"alpha")
    world.remote.store.calls.clear()
    world.verifier().round()
    assert [("list_objects", "bk/")] == world.remote.store.calls


def test_a_record_rewritten_during_the_round_is_left_alone(world: World) -> None:
    """An upload that finishes while the round works through its findings wins: its new record stays."""
    world.uploaded("a.txt", b"alpha")
    b = world.uploaded("b.txt", b"bravo")
    world.remote.store.remove("bk/a.txt")
    world.remote.store.remove("bk/b.txt")
    fresh = dataclasses.replace(b, md5="0" * 32, uploaded_at=world.wall)

    def emit(hint: Hint) -> None:  # while a.txt is handled, b.txt is uploaded again by a worker
        world.hints.append(hint)
        world.ledger.record_uploaded(fresh)

    v = world.verifier()
    v.emit = emit
    assert ["bk/a.txt"] == [f.key for f in v.round()]
    assert fresh == world.ledger.get(b.path)


def test_a_listing_out_of_key_order_fails_the_round_and_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge relies on the store's key order: a listing that breaks it would make listed objects look
    missing, so the round fails (verify_failed, tried again sooner) and no record is dropped."""
    for name in ("a.txt", "b.txt", "c.txt"):
        world.uploaded(name, name.encode())
    listed = world.remote.list_objects("bk/")
    monkeypatch.setattr(world.remote, "iter_objects", lambda prefix, **kw: iter(listed[::-1]))
    world.stop_after = 1
    world.verifier().loop()
    [failed] = world.log.events("verify_failed")
    assert "not in key order" in failed["error"] and RETRY_AFTER_ERROR == failed["retry_in"]
    assert 3 == len(world.ledger.uploaded_under(str(world.root))) and [] == world.hints
