"""Tests for qsyncd.state: the SQLite ledger and the state-directory lock, across processes and crashes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from qsynctest.unprivileged import readable_package

from qsyncd.errors import StateError, StateLockedError
from qsyncd.state import SCHEMA_VERSION, FileRecord, Ledger, MultipartRecord, PartRecord, StateLock

REPO = Path(__file__).resolve().parent.parent


def rec(path: str, size: int = 10, key: str | None = None) -> FileRecord:
    """A FileRecord for ``path``."""
    return FileRecord(
        path=path, key=key or path.lstrip("/"), size=size, mtime_ns=123, ino=7, md5="0" * 32, uploaded_at=1.5
    )


def mp(path: str, upload_id: str, parts: dict[int, PartRecord] | None = None) -> MultipartRecord:
    """A MultipartRecord for ``path``."""
    return MultipartRecord(
        path=path,
        key="k" + path,
        upload_id=upload_id,
        size=100 << 20,
        mtime_ns=5,
        ino=9,
        md5="a" * 32,
        part_size=16 << 20,
        created_at=2.0,
        parts=parts or {},
    )


def spawn(code: str) -> subprocess.Popen[str]:
    """Start a Python child running ``code`` with qsyncd importable; stdin/stdout are pipes."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill a child by its pid (if still running) and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


# -- basic behaviour -----------------------------------------------------------------------------


def test_creates_private_dir_with_wal(tmp_path: Path) -> None:
    """The state dir is created 0700 and the database is in WAL mode with a schema version."""
    d = tmp_path / "a" / "state"
    Ledger(d).close()
    assert 0o700 == d.stat().st_mode & 0o777
    conn = sqlite3.connect(d / "state.db")
    try:
        assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert SCHEMA_VERSION == conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    """Records, failures, multipart uploads with parts and daemon status survive close and reopen."""
    d = tmp_path / "state"
    led = Ledger(d)
    led.record_uploaded(rec("/w/a"))
    led.record_failure("/w/b", "b", "boom", permanent=True)
    led.start_multipart(mp("/w/big", "up1"))
    led.record_part("up1", PartRecord(0, 16 << 20, "b" * 32))
    led.record_part("up1", PartRecord(1, 16 << 20, "c" * 32))
    led.set_daemon_status({"state": "idle", "queue": 3})
    led.close()
    led = Ledger(d)
    try:
        assert rec("/w/a") == led.get("/w/a")
        [failure] = led.failures()
        assert ("/w/b", "b", "boom", True, 1) == (
            failure.path,
            failure.key,
            failure.error,
            failure.permanent,
            failure.attempts,
        )
        got = led.get_multipart("/w/big")
        assert got is not None
        assert mp("/w/big", "up1", {0: PartRecord(0, 16 << 20, "b" * 32), 1: PartRecord(1, 16 << 20, "c" * 32)}) == got
        status = led.daemon_status()
        assert status is not None
        assert ("idle", 3, os.getpid()) == (status["state"], status["queue"], status["pid"])
        assert {"uploaded": 1, "uploaded_bytes": 10, "failed": 1, "multiparts": 1} == led.counts()
    finally:
        led.close()


def test_get_missing_and_forget(ledger: Ledger) -> None:
    """get() of an unknown path is None; forget() drops record and failure."""
    assert ledger.get("/w/x") is None
    ledger.record_uploaded(rec("/w/x"))
    ledger.record_failure("/w/x", "x", "later failure", permanent=False)
    ledger.forget("/w/x")
    assert ledger.get("/w/x") is None
    assert [] == ledger.failures()


def test_record_uploaded_replaces_and_clears_failure(ledger: Ledger) -> None:
    """A second upload of a path replaces the record and clears the path's failure."""
    ledger.record_uploaded(rec("/w/a", size=1))
    ledger.record_failure("/w/a", "a", "timeout", permanent=False)
    ledger.record_uploaded(rec("/w/a", size=2))
    assert 2 == ledger.get("/w/a").size  # type: ignore[union-attr]
    assert [] == ledger.failures()
    assert 1 == ledger.counts()["uploaded"]


def test_an_upload_clears_a_failure_recorded_before_a_restart(tmp_path: Path) -> None:
    """The failure of an earlier process is cleared too (record_uploaded's one-statement path is only
    taken while the failures table is empty)."""
    with Ledger(tmp_path) as first:
        first.record_uploaded(rec("/w/ok"))
        first.record_failure("/w/a", "a", "timeout", permanent=False)
    with Ledger(tmp_path) as second:
        second.record_uploaded(rec("/w/b"))
        second.record_uploaded(rec("/w/a"))
        assert [] == second.failures()
        assert 3 == second.counts()["uploaded"]


def test_failure_attempts_count_up(ledger: Ledger) -> None:
    """record_failure counts attempts per path; clear_failure resets."""
    assert 1 == ledger.record_failure("/w/a", "a", "e1", permanent=False).attempts
    second = ledger.record_failure("/w/a", "a", "e2", permanent=True)
    assert (2, "e2", True) == (second.attempts, second.error, second.permanent)
    ledger.clear_failure("/w/a")
    assert 1 == ledger.record_failure("/w/a", "a", "e3", permanent=False).attempts


def test_uploaded_under_matches_directory_not_name_prefix(ledger: Ledger) -> None:
    """uploaded_under('/data') includes /data/... at any depth but not /data2/x or /data itself."""
    for p in ("/data/a", "/data/sub/b", "/data2/c", "/data", "/dat/a", "/other/x"):
        ledger.record_uploaded(rec(p))
    assert {"/data/a", "/data/sub/b"} == set(ledger.uploaded_under("/data"))
    assert {"/data/a", "/data/sub/b"} == set(ledger.uploaded_under("/data/"))
    assert 6 == len(ledger.uploaded_under("/"))


def test_versions_in_holds_a_directorys_own_files_only(ledger: Ledger) -> None:
    """versions_in('/data') gives the files directly in /data (names sorting before, between and after its
    subdirectories' subtrees), none below them, of /data2, /dat or /data itself; with their size, mtime, inode."""
    inside = ("/data/a", "/data/sub.txt", "/data/sub!", "/data/sub0", "/data/z", os.fsdecode(b"/data/caf\xe9"))
    below = ("/data/sub/b", "/data/sub/deeper/c", "/data/sub0dir/d", "/data/y/e")
    for p in (*inside, *below, "/data2/c", "/data", "/dat/a", "/other/x"):
        ledger.record_uploaded(rec(p, size=len(p), key="k"))
    want = {p.rsplit("/", 1)[1]: (len(p), 123, 7) for p in inside}
    assert want == ledger.versions_in("/data")
    assert want == ledger.versions_in("/data/")
    assert {"b"} == set(ledger.versions_in("/data/sub"))
    assert {"data"} == set(ledger.versions_in("/"))
    assert {} == ledger.versions_in("/nowhere")


BY_KEY = [  # (path, key): keys in an order where UTF-8 bytes and UTF-16 differ, one key held by two paths
    ("/w/b", "p/\U0001f600"), ("/w/a", "p/\uff5e"), ("/v/z", "p/a"), ("/w/z", "p/a"), ("/w/c", "p/a b"),
    ("/w/d", "p/a+b"), ("/w/e", "p/a%2Bb"), (os.fsdecode(b"/w/caf\xe9"), "p/caf\u00e9"), ("/w/f", "o"), ("/w/g", "q"),
]  # fmt: skip


def by_key_order(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(pairs, key=lambda pk: (pk[1].encode(), os.fsencode(pk[0])))


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_uploaded_by_key_reads_every_record_once_in_utf8_key_order(ledger: Ledger, chunk: int) -> None:
    for path, key in BY_KEY:
        ledger.record_uploaded(rec(path, key=key))
    got = [(r.path, r.key) for r in ledger.uploaded_by_key(chunk)]
    assert by_key_order(BY_KEY) == got
    assert [rec(p, key=k) for p, k in got] == list(ledger.uploaded_by_key(chunk))  # whole records


def test_uploaded_by_key_reads_one_snapshot_beside_the_writers(ledger: Ledger) -> None:
    """Its own read-only connection: the ledger stays free for writes between two chunks, and the records
    are those of the moment the iteration started."""
    for path, key in BY_KEY:
        ledger.record_uploaded(rec(path, key=key))
    records = ledger.uploaded_by_key(2)
    first = next(records)
    assert "o" == first.key
    ledger.record_uploaded(rec("/w/new", key="r"))  # written while the iteration stands between chunks
    ledger.forget("/w/g")
    assert by_key_order(BY_KEY) == [(r.path, r.key) for r in [first, *records]]
    assert by_key_order([p for p in BY_KEY if p[0] != "/w/g"] + [("/w/new", "r")]) == [
        (r.path, r.key) for r in ledger.uploaded_by_key(2)
    ]


def test_uploaded_by_key_of_a_read_only_ledger_and_of_none(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "state")
    for path, key in BY_KEY:
        led.record_uploaded(rec(path, key=key))
    led.close()
    ro, empty = Ledger(tmp_path / "state", readonly=True), Ledger(tmp_path / "none", readonly=True, missing_ok=True)
    try:
        assert by_key_order(BY_KEY) == [(r.path, r.key) for r in ro.uploaded_by_key(3)]
        assert [] == list(empty.uploaded_by_key())  # no database: no records
    finally:
        ro.close()
        empty.close()


def test_non_utf8_and_odd_paths_round_trip(ledger: Ledger) -> None:
    """Paths with undecodable bytes, newlines and % survive storage exactly."""
    odd = os.fsdecode(b"/w/caf\xe9 %20\nx")
    ledger.record_uploaded(rec(odd, key="cafe"))
    assert odd == ledger.get(odd).path  # type: ignore[union-attr]
    assert [odd] == list(ledger.uploaded_under("/w"))
    failure = ledger.record_failure(odd, "", f"cannot read {odd}", permanent=True)
    assert odd == ledger.failures()[0].path
    assert "caf" in failure.error


def test_multipart_replace_part_and_finish(ledger: Ledger) -> None:
    """start_multipart replaces an older upload of the same path; parts of unknown uploads are ignored."""
    ledger.start_multipart(mp("/w/big", "old"))
    ledger.record_part("old", PartRecord(0, 1, "x"))
    ledger.start_multipart(mp("/w/big", "new", {0: PartRecord(0, 5, "y")}))
    ledger.record_part("old", PartRecord(1, 1, "x"))  # the old upload is gone: ignored
    ledger.record_part("new", PartRecord(1, 6, "z"))
    [only] = ledger.multiparts()
    assert "new" == only.upload_id
    assert {0: PartRecord(0, 5, "y"), 1: PartRecord(1, 6, "z")} == only.parts
    ledger.start_multipart(mp("/w/other", "up2"))
    assert ["new", "up2"] == [m.upload_id for m in ledger.multiparts()]
    ledger.finish_multipart("new")
    assert ledger.get_multipart("/w/big") is None
    assert 1 == ledger.counts()["multiparts"]
    conn = sqlite3.connect(ledger.path)
    try:
        assert 0 == conn.execute("SELECT COUNT(*) FROM parts WHERE upload_id IN ('old', 'new')").fetchone()[0]
    finally:
        conn.close()


def test_daemon_status_absent_then_latest(ledger: Ledger) -> None:
    """daemon_status() is None until set, then the latest blob with updated_at and pid."""
    assert ledger.daemon_status() is None
    ledger.set_daemon_status({"n": 1})
    ledger.set_daemon_status({"n": 2})
    status = ledger.daemon_status()
    assert status is not None and 2 == status["n"] and os.getpid() == status["pid"] and status["updated_at"] > 0


def test_threads_share_one_ledger(ledger: Ledger) -> None:
    """Many threads writing at once lose nothing."""

    def work(t: int) -> None:
        for i in range(100):
            ledger.record_uploaded(rec(f"/w/{t}/{i}", size=1))
            ledger.get(f"/w/{t}/{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert {"uploaded": 800, "uploaded_bytes": 800, "failed": 0, "multiparts": 0} == ledger.counts()


def test_closed_ledger_raises_state_error(tmp_path: Path) -> None:
    """Using a ledger after close() is a StateError, not an AttributeError."""
    led = Ledger(tmp_path / "s")
    led.close()
    led.close()
    with pytest.raises(StateError, match="closed"):
        led.get("/x")


# -- crashes and concurrency across processes -------------------------------------------------------


def test_sigkilled_writer_leaves_consistent_db(tmp_path: Path) -> None:
    """A writer killed by SIGKILL (even with a transaction open) leaves every committed record and nothing else."""
    d = tmp_path / "state"
    proc = spawn(
        f"""
        import os, signal, sqlite3
        from qsyncd.state import Ledger, FileRecord, MultipartRecord, PartRecord
        led = Ledger({str(d)!r})
        for i in range(300):
            led.record_uploaded(FileRecord(f"/w/{{i}}", f"k{{i}}", i, i, i, "m", 1.0))
        led.start_multipart(MultipartRecord("/w/big", "kbig", "up", 9, 9, 9, "m", 4, 1.0, {{}}))
        led.record_part("up", PartRecord(0, 4, "p0"))
        # a second connection in the middle of a write transaction when the kill comes
        raw = sqlite3.connect({str(d / "state.db")!r}, isolation_level=None)
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("DELETE FROM files")
        raw.execute("INSERT INTO files VALUES (x'2f772f7a', 'z', 1, 1, 1, 'm', 1.0)")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    try:
        proc.wait(timeout=60)
        assert -signal.SIGKILL == proc.returncode, proc.stderr.read() if proc.stderr else ""
    finally:
        stop(proc)
    led = Ledger(d)
    try:
        conn = sqlite3.connect(d / "state.db")
        try:
            assert "ok" == conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
        assert {"uploaded": 300, "uploaded_bytes": sum(range(300)), "failed": 0, "multiparts": 1} == led.counts()
        assert led.get("/w/z") is None
        assert "k299" == led.get("/w/299").key  # type: ignore[union-attr]
        assert {0: PartRecord(0, 4, "p0")} == led.get_multipart("/w/big").parts  # type: ignore[union-attr]
    finally:
        led.close()


def test_readonly_open_while_writer_runs(tmp_path: Path) -> None:
    """A read-only ledger reads a database another process holds open and keeps writing to."""
    d = tmp_path / "state"
    proc = spawn(
        f"""
        import sys
        from qsyncd.state import Ledger, StateLock, FileRecord
        lock = StateLock({str(d)!r}); lock.acquire()
        led = Ledger({str(d)!r})
        led.record_uploaded(FileRecord("/w/1", "k1", 1, 1, 1, "m", 1.0))
        print("ready", flush=True)
        sys.stdin.readline()
        led.record_uploaded(FileRecord("/w/2", "k2", 2, 2, 2, "m", 1.0))
        print("more", flush=True)
        sys.stdin.readline()
        """
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert "ready" == proc.stdout.readline().strip()
        ro = Ledger(d, readonly=True)
        try:
            assert 1 == ro.counts()["uploaded"]
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert "more" == proc.stdout.readline().strip()
            assert 2 == ro.counts()["uploaded"]
            assert "k2" == ro.get("/w/2").key  # type: ignore[union-attr]
            with pytest.raises(StateError, match="read-only"):
                ro.record_uploaded(rec("/w/3"))
        finally:
            ro.close()
    finally:
        stop(proc)


def test_readonly_without_database_is_clear(tmp_path: Path) -> None:
    """Opening read-only where no database exists says so."""
    with pytest.raises(StateError, match="no state database"):
        Ledger(tmp_path / "none", readonly=True)


def test_lock_refuses_second_process_with_pid(tmp_path: Path) -> None:
    """While another process holds the lock, acquire() raises StateLockedError naming its pid."""
    d = tmp_path / "state"
    proc = spawn(
        f"""
        import sys
        from qsyncd.state import StateLock
        with StateLock({str(d)!r}):
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    try:
        assert proc.stdout is not None
        assert "locked" == proc.stdout.readline().strip()
        with pytest.raises(StateLockedError) as info:
            StateLock(d).acquire()
        assert f"pid {proc.pid}" in str(info.value)
        assert str(d) in str(info.value)
    finally:
        stop(proc)
    with StateLock(d) as lock:  # free again once the holder is gone (even killed)
        assert lock.held
        assert str(os.getpid()) == (d / "qsyncd.lock").read_text().strip()


# -- broken state dirs -----------------------------------------------------------------------------


def test_file_where_dir_should_be(tmp_path: Path) -> None:
    """A regular file at the state dir path is a StateError, for the ledger and the lock."""
    (tmp_path / "state").write_text("not a dir")
    with pytest.raises(StateError, match="not a directory"):
        Ledger(tmp_path / "state")
    with pytest.raises(StateError, match="not a directory"):
        StateLock(tmp_path / "state").acquire()
    with pytest.raises(StateError):
        Ledger(tmp_path / "state" / "sub")


def test_unwritable_dir_as_unprivileged_user() -> None:
    """A state dir the user cannot write to is a StateError (checked as 'nobody', since root ignores modes)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run the check as an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="qsyncd-state-test-"))
    try:
        base.chmod(0o755)
        (base / "ro").mkdir(mode=0o755)
        code = textwrap.dedent(
            f"""
            import sys
            from qsyncd.errors import StateError
            from qsyncd.state import Ledger, StateLock
            for make in (lambda: Ledger({str(base / "ro")!r}), lambda: Ledger({str(base / "ro" / "new")!r}),
                         lambda: StateLock({str(base / "ro")!r}).acquire()):
                try:
                    make()
                except StateError as exc:
                    print("StateError:", exc)
                else:
                    print("NO ERROR")
            """
        )
        out = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONPATH=readable_package(base)),  # nobody may not read the checkout
            cwd="/",
            check=False,
        )
        lines = out.stdout.splitlines()
        assert 3 == len(lines), out.stderr
        assert all(line.startswith("StateError:") for line in lines), out.stdout
        assert "not writable" in lines[0] and str(base / "ro") in lines[0]
        assert "cannot create state directory" in lines[1]
    finally:
        shutil.rmtree(base)


def test_corrupt_database_is_state_error(tmp_path: Path) -> None:
    """Garbage in state.db is a StateError telling the user to move it away."""
    d = tmp_path / "state"
    d.mkdir()
    (d / "state.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StateError, match="is corrupt: move it away") as info:
        Ledger(d)
    assert str(d / "state.db") in str(info.value)
    with pytest.raises(StateError, match="corrupt"):
        Ledger(d, readonly=True)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer qsyncd (higher user_version) is refused with advice."""
    d = tmp_path / "state"
    Ledger(d).close()
    conn = sqlite3.connect(d / "state.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StateError, match="newer"):
        Ledger(d)


def test_full_disk_is_state_error() -> None:
    """A full file system under the state dir is a StateError saying so (tiny tmpfs in a private mount namespace)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare to mount a tiny tmpfs privately")
    base = Path(tempfile.mkdtemp(prefix="qsyncd-full-test-"))
    code = textwrap.dedent(
        """
        import sys
        from qsyncd.errors import StateError
        from qsyncd.state import Ledger, FileRecord
        led = Ledger(sys.argv[1])
        try:
            for i in range(100000):
                led.record_uploaded(FileRecord(f"/w/{i}", "k" * 500, 1, 1, 1, "m" * 32, 1.0))
            print("NO ERROR")
        except StateError as exc:
            print("StateError:", exc)
        """
    )
    try:
        probe = subprocess.run(
            [unshare, "-m", "sh", "-c", f"mount -t tmpfs -o size=256k tmpfs {base}"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if probe.returncode != 0:
            pytest.skip(f"cannot mount tmpfs in a private namespace: {probe.stderr!r}")
        out = subprocess.run(
            [
                unshare,
                "-m",
                "sh",
                "-c",
                'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" -c "$3" "$1/state"',
                "sh",
                str(base),
                sys.executable,
                code,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
            check=False,
        )
        assert out.stdout.startswith("StateError:"), (out.stdout, out.stderr)
        assert "disk is full" in out.stdout
    finally:
        shutil.rmtree(base)


def test_failed_write_rolls_back_and_ledger_stays_usable(ledger: Ledger) -> None:
    """A write failing half-way (after NORMAL-sync writes) is rolled back whole; the ledger stays usable."""
    ledger.start_multipart(mp("/w/big", "old"))
    ledger.record_part("old", PartRecord(0, 1, "x"))  # a synchronous=NORMAL write
    bad = mp("/w/big", "new", {0: PartRecord(0, None, "y")})  # type: ignore[arg-type]
    with pytest.raises(StateError, match="NOT NULL"):
        ledger.start_multipart(bad)  # deletes "old", inserts "new", then the part insert fails
    [kept] = ledger.multiparts()
    assert ("old", {0: PartRecord(0, 1, "x")}) == (kept.upload_id, kept.parts)
    ledger.record_uploaded(rec("/w/after"))
    assert ledger.get("/w/after") is not None
    conn = sqlite3.connect(ledger.path)
    try:
        assert "ok" == conn.execute("PRAGMA integrity_check").fetchone()[0]
        assert 0 == conn.execute("SELECT COUNT(*) FROM multiparts WHERE upload_id = 'new'").fetchone()[0]
    finally:
        conn.close()
