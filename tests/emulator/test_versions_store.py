"""The store's versioning as plain code: versions survive a reopen, a crash's duplicate records resolve,
and the version listing pages as documented (no socket, no server)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from qsyncd.emulator.store import ObjectMeta, Store
from qsyncd.emulator.store.listing import page_versions
from qsyncd.emulator.store.versions import resolve_history

BUCKET = "test-bucket"


def put(store: Store, key: str, data: bytes) -> ObjectMeta:
    writer = store.object_writer(BUCKET, key)
    writer.write(data)
    md5 = writer.finish()
    meta = ObjectMeta(key=key, size=len(data), etag=md5, mime_type="text/plain", created=1.0, modified=1.0)
    return store.commit_object(BUCKET, writer.path, meta)


def open_store(root: Path) -> Store:
    clock = iter(range(1_700_000_000, 1_800_000_000))
    return Store(root, lambda: float(next(clock)), fsync=False)


def test_versions_and_markers_survive_a_reopen(tmp_path: Path) -> None:
    """Versions, a delete marker and the versioning status are read back from disk as they were."""
    store = open_store(tmp_path)
    store.buckets.create(BUCKET)
    store.buckets.set_versioning(BUCKET, "ENABLED")
    first = put(store, "k", b"one")
    put(store, "k", b"two")
    _, marker = store.objects.delete_latest(BUCKET, "k")
    assert marker is not None
    put(store, "other", b"x")
    before = [(m.wire_version_id(), m.delete_marker, latest) for m, latest in store.objects.all_versions(BUCKET, "")]

    again = open_store(tmp_path)
    assert "ENABLED" == again.buckets.get(BUCKET).versioning
    after = [(m.wire_version_id(), m.delete_marker, latest) for m, latest in again.objects.all_versions(BUCKET, "")]
    assert before == after
    assert again.objects.hiding_marker(BUCKET, "k") is not None
    assert b"one" == again.objects.open_version(BUCKET, "k", first.wire_version_id())[1].read()
    assert again.objects.new_version_id() > max(v for v, _, _ in after)  # ids keep growing after a reopen


def test_crash_between_archive_and_commit_loses_nothing(tmp_path: Path) -> None:
    """A version recorded both as current and as noncurrent (a crash mid-PUT) is one version at load."""
    store = open_store(tmp_path)
    store.buckets.create(BUCKET)
    store.buckets.set_versioning(BUCKET, "ENABLED")
    meta = put(store, "k", b"only")
    record = store.layout.version_json(BUCKET, "k", meta.wire_version_id())
    record.write_text(json.dumps(dataclasses.asdict(meta)), encoding="utf-8")  # the archive step ran, no more

    again = open_store(tmp_path)
    assert [(meta.wire_version_id(), True)] == [
        (m.wire_version_id(), latest) for m, latest in again.objects.all_versions(BUCKET, "")
    ]
    assert b"only" == again.objects.read(BUCKET, "k")


def test_resolve_history_newest_first_one_null() -> None:
    """Duplicates collapse, the newest version is current, and only the newest null version is kept."""

    def meta(vid: str, null: bool, marker: bool = False) -> ObjectMeta:
        return ObjectMeta("k", 0, "", "", 0.0, 0.0, version_id=vid, null_version=null, delete_marker=marker)

    old_null, enabled, new_null = meta("", True), meta("01", False), meta("02", True)
    current, history, dropped = resolve_history([enabled, old_null, new_null, enabled])
    assert new_null == current
    assert [enabled] == history
    assert [old_null] == dropped
    current, history, _ = resolve_history([enabled, meta("03", False, marker=True)])
    assert current is None
    assert ["03", "01"] == [m.version_id for m in history]


def test_page_versions_markers() -> None:
    """key_marker alone starts at the next key; with version_id_marker, after that version of the key."""
    entries = [
        (ObjectMeta(k, 0, "", "", 0.0, 0.0, version_id=v, null_version=False), i == 0)
        for k in ("a", "b")
        for i, v in enumerate(("03", "02", "01"))
    ]
    page, _, more = page_versions(entries, "", "", "a", "", 10)
    assert [("b", "03"), ("b", "02"), ("b", "01")] == [(m.key, m.version_id) for m, _ in page]
    assert not more
    page, _, more = page_versions(entries, "", "", "a", "02", 2)
    assert [("a", "01"), ("b", "03")] == [(m.key, m.version_id) for m, _ in page]
    assert more
