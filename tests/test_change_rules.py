"""The decisions behind renames and on_change (qsyncd.changes) and the ledger's donor lookups (state/donors.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from qsyncd.changes import Donor, kept_key, protect, reuse_via
from qsyncd.state import SCHEMA_VERSION, FileRecord, Ledger


@pytest.mark.parametrize(
    ("on_change", "versioned", "want"),
    [
        ("keep", False, "keep_copy"),
        ("keep", True, "keep_versioned"),
        ("refuse", False, "refuse"),
        ("refuse", True, "refuse"),  # versioning would keep it, but refuse means the key is left alone
        ("overwrite", False, "overwrite"),
        ("overwrite", True, "overwrite"),
    ],
)
def test_protect(on_change: str, versioned: bool, want: str) -> None:
    assert protect(on_change, versioned=versioned) == want


def donor(kind: str = "file") -> Donor:
    return Donor(kind=kind, key="a", size=5, md5="0" * 32, path="/r/a", ino=1, mtime_ns=2, by="content")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("renames", "the_donor", "on_disk", "want"),
    [
        ("copy", None, False, "upload"),  # nothing in the bucket holds these bytes
        ("move", None, False, "upload"),
        ("upload", donor(), False, "upload"),  # renames = "upload" always sends
        ("copy", donor(), False, "copy"),
        ("copy", donor(), True, "copy"),
        ("move", donor(), False, "move"),
        ("move", donor(), True, "copy"),  # the old file still holds those bytes: its object stays
        ("move", donor("kept"), False, "copy"),  # a kept version is never moved away
        ("copy", donor("kept"), False, "copy"),
    ],
)
def test_reuse_via(renames: str, the_donor: Donor | None, on_disk: bool, want: str) -> None:
    assert reuse_via(renames, the_donor, source_on_disk=on_disk) == want


def test_kept_key_names_time_and_etag() -> None:
    assert kept_key(".qsyncd-kept/", "logs/app.log", "3f2a9c1d" + "0" * 24, 0.0) == (
        ".qsyncd-kept/logs/app.log@19700101T000000Z-3f2a9c1d"
    )
    assert kept_key("", "a", "ab" * 16, 86400.5) == "a@19700102T000000Z-abababab"


def rec(
    path: str, *, md5: str, size: int = 10, ino: int = 7, mtime_ns: int = 123, key: str | None = None
) -> FileRecord:
    return FileRecord(path, key or path.lstrip("/"), size, mtime_ns, ino, md5, 1.0)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "state")


A, B = "a" * 32, "b" * 32


def test_donor_by_content_within_the_root_only(ledger: Ledger) -> None:
    ledger.record_uploaded(rec("/r/old", md5=A))
    ledger.record_uploaded(rec("/other/x", md5=B))
    found = ledger.donor("/r", exclude="/r/new", size=10, md5=A)
    assert found is not None and (found.kind, found.key, found.path, found.by) == ("file", "r/old", "/r/old", "content")
    assert ledger.donor("/r", exclude="/r/new", size=11, md5=A) is None  # another size
    assert ledger.donor("/r", exclude="/r/new", size=10, md5=B) is None  # that one is under another root
    assert ledger.donor("/r", exclude="/r/old", size=10, md5=A) is None  # never the file itself
    assert ledger.donor("/r", exclude="/r/new", size=0, md5=A) is None  # an empty file is just sent


def test_donor_prefers_the_renamed_file_and_falls_back_to_kept(ledger: Ledger) -> None:
    ledger.record_uploaded(rec("/r/copy", md5=A, ino=50))
    ledger.record_uploaded(rec("/r/orig", md5=A, ino=51, mtime_ns=999))
    found = ledger.donor("/r", exclude="/r/new", size=10, md5=A, ino=51, mtime_ns=999)
    assert found is not None and (found.path, found.by) == ("/r/orig", "identity")
    ledger.forget("/r/copy")
    ledger.forget("/r/orig")
    assert ledger.donor("/r", exclude="/r/new", size=10, md5=A) is None
    ledger.record_kept(".k/r/orig@x", "r/orig", "/r/orig", size=10, md5=A, kept_at=5.0)
    found = ledger.donor("/r", exclude="/r/new", size=10, md5=A)
    assert found is not None and (found.kind, found.key) == ("kept", ".k/r/orig@x")
    assert ledger.holds_size("/r", 10) and not ledger.holds_size("/r", 11) and not ledger.holds_size("/q", 10)
    assert [k["kept_key"] for k in ledger.kept_versions("r/orig")] == [".k/r/orig@x"]


def test_held_elsewhere_and_forget_moved(ledger: Ledger) -> None:
    ledger.record_uploaded(rec("/r/a", md5=A))
    assert not ledger.held_elsewhere(10, A, "r/a")  # only under its own key
    assert ledger.held_elsewhere(10, A, "r/b")
    ledger.forget_moved("/r/a", "r/a", B)  # the record describes another upload now: it stays
    assert ledger.get("/r/a") is not None
    ledger.forget_moved("/r/a", "r/a", A)
    assert ledger.get("/r/a") is None
    ledger.record_kept("k", "r/a", "/r/a", size=10, md5=A, kept_at=1.0)
    assert ledger.held_elsewhere(10, A, "r/a")  # a kept copy holds it


def test_a_version_1_ledger_is_upgraded_in_place(tmp_path: Path) -> None:
    state = tmp_path / "state"
    Ledger(state).close()
    conn = sqlite3.connect(state / "state.db")
    conn.executescript("DROP TABLE kept; DROP INDEX files_by_content; PRAGMA user_version = 1;")
    conn.close()
    ro = Ledger(state, readonly=True)  # `qsyncd status` beside a daemon not yet restarted after the upgrade
    ro.close()
    led = Ledger(state)
    led.record_uploaded(rec("/r/a", md5=A))
    assert led.donor("/r", exclude="/r/b", size=10, md5=A) is not None
    led.close()
    conn = sqlite3.connect(state / "state.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_kept_versions_are_donors_after_a_restart_and_to_a_reader(tmp_path: Path) -> None:
    """The "kept table is empty" shortcut of the donor lookups is asked of the database, not assumed: a
    reopened ledger finds kept versions, and a read-only one sees what the daemon keeps after it opened."""
    state = tmp_path / "state"
    writer = Ledger(state)
    reader = Ledger(state, readonly=True)
    assert reader.donor("/r", exclude="/r/new", size=10, md5=A) is None
    writer.record_kept("k1", "r/a", "/r/a", size=10, md5=A, kept_at=1.0)
    found = reader.donor("/r", exclude="/r/new", size=10, md5=A)
    assert found is not None and (found.kind, found.key) == ("kept", "k1")
    reader.close()
    writer.close()
    again = Ledger(state)
    found = again.donor("/r", exclude="/r/new", size=10, md5=A)
    assert found is not None and (found.kind, found.key) == ("kept", "k1")
    assert again.held_elsewhere(10, A, "r/a") and again.holds_size("/r", 10)
    again.close()
