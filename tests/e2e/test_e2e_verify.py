"""``qsyncd verify`` and dated key prefixes end to end: the installed console script against the emulator.

Objects are deleted and overwritten "behind qsyncd's back" through the QingStor API itself (the SDK's
DeleteObject, qsyncd's own signed PUT with other bytes), as a user or another tool would.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from console_script import qsyncd_bin, run
from e2e_support import assert_remote_equals, op_counts, remote_bytes, sdk_delete
from qsynctest import ACCESS_KEY, BUCKET, SECRET


@pytest.fixture
def store(setup: Any) -> Iterator[Any]:
    """qsyncd's own QingStorRemote on the test's emulator (to overwrite objects with a signed PUT)."""
    from qsyncd.remote.qingstor import QingStorRemote

    r = QingStorRemote(
        endpoint=setup.emu.url, zone="", bucket=BUCKET, access_key_id=ACCESS_KEY, secret_access_key=SECRET
    )
    yield r
    r.close()


def overwrite(store: Any, key: str, data: bytes) -> None:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    store.put(key, io.BytesIO(data), len(data), md5)


def qsyncd(setup: Any, *args: str) -> Any:
    return run([qsyncd_bin(), *args, "-c", str(setup.config_path)], cwd=setup.tmp, timeout=120)


def test_verify_finds_a_deleted_and_a_corrupted_object_and_repair_mends_them(setup: Any, store: Any) -> None:
    """verify exits 1 naming the deleted object (missing) and the overwritten one (changed, same size),
    shows a stray object as extra; --repair uploads both again; verify then exits 0."""
    files = {"a.txt": b"alpha " * 100, "sub/b.txt": b"bravo " * 100, "sub/c.txt": b"charlie"}
    for rel, data in files.items():
        (setup.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (setup.root / rel).write_bytes(data)
    setup.config(prefix="bk/")
    assert 0 == qsyncd(setup, "sync", "--no-progress").returncode
    first = qsyncd(setup, "verify")
    assert 0 == first.returncode, first.stdout + first.stderr
    assert "verify: ok: 3 files on disk, 3 objects" in first.stdout

    sdk_delete(setup.emu.url, "bk/a.txt")
    overwrite(store, "bk/sub/b.txt", b"BRAVO " * 100)  # same size, other bytes
    overwrite(store, "bk/stray.txt", b"not from this machine")
    setup.emu.clear_requests()
    found = qsyncd(setup, "verify")
    assert 1 == found.returncode, found.stdout + found.stderr
    out = found.stdout
    assert "missing  bk/a.txt" in out and "deleted behind qsyncd's back" in out, out
    assert "changed  bk/sub/b.txt" in out and "not the MD5" in out, out
    assert "extra    bk/stray.txt" in out, out
    assert "bk/sub/c.txt" not in out
    assert {} == op_counts(setup.emu, "HeadObject", only_ok=False)  # one listing, no HEAD per file
    assert 1 == sum(op_counts(setup.emu, "ListObjects").values())
    assert {} == op_counts(setup.emu, "PutObject", only_ok=False)

    as_json = qsyncd(setup, "verify", "--json")
    assert 1 == as_json.returncode
    data = json.loads(as_json.stdout)
    assert not data["ok"]
    assert [("bk/a.txt", "deleted_from_bucket")] == [(f["key"], f["reason"]) for f in data["missing"]]
    assert [("bk/sub/b.txt", "content_differs")] == [(f["key"], f["reason"]) for f in data["changed"]]
    assert [("bk/stray.txt", "not_on_disk")] == [(f["key"], f["reason"]) for f in data["extra"]]

    repaired = qsyncd(setup, "verify", "--repair", "--json")
    assert 0 == repaired.returncode, repaired.stdout + repaired.stderr
    after = json.loads(repaired.stdout)
    assert after["ok"] and [] == after["missing"] and [] == after["changed"]
    assert sorted(str(setup.root / r) for r in ("a.txt", "sub/b.txt")) == after["repaired"]
    for rel, data_ in files.items():
        assert_remote_equals(setup.emu, "bk/" + rel, data_)
    assert remote_bytes(setup.emu, "bk/stray.txt") is not None  # extra is informational: never deleted

    again = qsyncd(setup, "verify")
    assert 0 == again.returncode, again.stdout + again.stderr
    assert "0 missing, 0 changed, 1 extra" in again.stdout


def test_verify_runs_beside_the_daemon_and_repair_waits_for_it(setup: Any) -> None:
    """verify only reads the ledger, so it works while `qsyncd run` holds the state lock; --repair needs
    the lock (it uploads as sync does) and says so with exit 75 when the daemon holds it."""
    (setup.root / "x.bin").write_bytes(os.urandom(5000))
    d = setup.daemon()
    setup.wait_uploaded(d, ["x.bin"])
    res = qsyncd(setup, "verify")
    assert 0 == res.returncode, res.stdout + res.stderr
    sdk_delete(setup.emu.url, "x.bin")
    res = qsyncd(setup, "verify", "--repair")
    assert 75 == res.returncode, res.stdout + res.stderr
    assert "locked" in res.stderr or "another qsyncd" in res.stderr, res.stderr


def utc(*when: int) -> float:
    return float(calendar.timegm((*when, 0, 0, 0)))


def test_dated_prefix_keys_by_mtime_and_a_touched_file_gets_a_new_key(setup: Any) -> None:
    """prefix = "cam/{mtime:%Y/%m/%d}": the key holds the file's mtime date (UTC). Touched within the
    day: same key, nothing sent (the bucket's MD5 matches). Touched to another day: uploaded under the
    new date, the old object stays, and verify shows it as extra but exits 0."""
    photo = setup.root / "front" / "0001.jpg"
    photo.parent.mkdir()
    photo.write_bytes(os.urandom(3000))
    may6 = utc(2023, 5, 6, 23, 30, 0)  # still 6 May in UTC, already 7 May east of it
    os.utime(photo, (may6, may6))
    setup.config(prefix="cam/{mtime:%Y/%m/%d}")
    assert 0 == qsyncd(setup, "sync", "--no-progress").returncode
    assert_remote_equals(setup.emu, "cam/2023/05/06/front/0001.jpg", photo.read_bytes())

    os.utime(photo, (may6 - 3600, may6 - 3600))
    setup.emu.clear_requests()
    assert 0 == qsyncd(setup, "sync", "--no-progress").returncode
    assert {} == op_counts(setup.emu, "PutObject", only_ok=False)

    jan2 = utc(2024, 1, 2, 8, 0, 0)
    os.utime(photo, (jan2, jan2))
    assert 0 == qsyncd(setup, "sync", "--no-progress").returncode
    assert_remote_equals(setup.emu, "cam/2024/01/02/front/0001.jpg", photo.read_bytes())
    assert_remote_equals(setup.emu, "cam/2023/05/06/front/0001.jpg", photo.read_bytes())  # the old key stays

    res = qsyncd(setup, "verify", "--json")
    assert 0 == res.returncode, res.stdout + res.stderr
    data = json.loads(res.stdout)
    assert ["cam/"] == data["prefixes"]  # one listing under the part before the date
    # the ledger holds one record per path (now the new key): the old object is nobody's
    assert [("cam/2023/05/06/front/0001.jpg", "not_on_disk")] == [(f["key"], f["reason"]) for f in data["extra"]]


def test_bad_prefix_template_is_a_config_error(setup: Any) -> None:
    setup.config(prefix="cam/{date:%Y}")
    res = qsyncd(setup, "verify")
    assert 78 == res.returncode
    assert "prefix" in res.stderr and "unknown field {date:%Y}" in res.stderr, res.stderr
