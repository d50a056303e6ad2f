"""Bucket versioning in the store: new versions, delete markers, removing one version, loading history.

Once a bucket's versioning is ``ENABLED`` (it can then only be ``SUSPENDED``, never turned off), a
write or a plain delete no longer destroys the current version: it becomes *noncurrent* and is kept
in ``<h>.v-<version id>.json`` beside the key's ``<h>.json`` (which always holds the current,
non-marker version; a key whose newest version is a delete marker has no ``<h>.json``). The
in-memory history is ``BucketState.versions[key]``, newest first.

Version ids are fixed-width hex stamps that only grow (``ObjectStore.new_version_id``), so "newest"
is "largest id". A version written while versioning is suspended (or before it was ever enabled)
is the key's *null version* (``"null"`` on the wire); a key has at most one, and a new null
version replaces it for good. These are S3's rules; QingStor documents none of them (see
:mod:`qsyncd.emulator.operations`).

Crash safety: every step writes the record that keeps a version before it removes the one that
named it, so a crash leaves a version recorded twice (in ``<h>.json`` and a ``.v-`` file), never
lost; :func:`resolve_history` keeps one copy and takes the newest version as current.

Every function here is called with the store's lock held.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import TYPE_CHECKING

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.store import datafiles
from qsyncd.emulator.store.records import BucketState, ObjectMeta

if TYPE_CHECKING:
    from qsyncd.emulator.store.objects import ObjectStore

DISABLED, ENABLED, SUSPENDED = "DISABLED", "ENABLED", "SUSPENDED"


def resolve_history(entries: list[ObjectMeta]) -> tuple[ObjectMeta | None, list[ObjectMeta], list[ObjectMeta]]:
    """(current, noncurrent newest first, duplicates to forget) of one key's records read from disk.

    ``entries`` starts with the ``<h>.json`` record if there is one. Records of the same version
    are one version; of several null versions only the newest is kept."""
    seen: set[str] = set()
    unique: list[ObjectMeta] = []
    for meta in entries:
        if meta.version_id in seen:
            continue
        seen.add(meta.version_id)
        unique.append(meta)
    unique.sort(key=lambda m: m.version_id, reverse=True)
    kept: list[ObjectMeta] = []
    dropped: list[ObjectMeta] = []
    have_null = False
    for meta in unique:
        if meta.null_version:
            if have_null:
                dropped.append(meta)
                continue
            have_null = True
        kept.append(meta)
    if kept and not kept[0].delete_marker:
        return kept[0], kept[1:], dropped
    return None, kept, dropped


def _archive(objects: ObjectStore, bucket: str, meta: ObjectMeta) -> None:
    """Write ``meta`` as a noncurrent version record (durably)."""
    path = objects.layout.version_json(bucket, meta.key, meta.wire_version_id())
    datafiles.write_json(path, dataclasses.asdict(meta), fsync=objects.fsync)


def _forget(objects: ObjectStore, bucket: str, meta: ObjectMeta, *, noncurrent: bool) -> None:
    """Remove a version for good: its noncurrent record (if it had one) and its data files."""
    odir = objects.layout.object_dir(bucket, meta.key)
    if noncurrent:
        objects.layout.version_json(bucket, meta.key, meta.wire_version_id()).unlink(missing_ok=True)
    for name in meta.file_names():
        objects.unlink_data(odir / name)


def _take_null(history: list[ObjectMeta]) -> list[ObjectMeta]:
    """Remove and return the noncurrent null version(s) from ``history``."""
    nulls = [m for m in history if m.null_version]
    history[:] = [m for m in history if not m.null_version]
    return nulls


def _retire_current(objects: ObjectStore, state: BucketState, key: str, null_next: bool) -> list[ObjectMeta]:
    """Make the current version of ``key`` noncurrent before a new version (or marker) goes on top.

    Returns the versions to forget once the new one is recorded: the old current if both it and the
    new version are null versions, and (for a new null version) any noncurrent null version."""
    history = state.versions.setdefault(key, [])
    old = state.objects.get(key)
    doomed_current: list[ObjectMeta] = []
    if old is not None:
        if null_next and old.null_version:
            doomed_current.append(old)
        else:
            _archive(objects, state.name, old)
            history.insert(0, old)
    return doomed_current


def commit_versioned(objects: ObjectStore, state: BucketState, meta: ObjectMeta) -> ObjectMeta:
    """Record ``meta`` (its data files already in place) as the newest, current version of its key."""
    null_next = state.versioning != ENABLED
    meta.version_id = objects.new_version_id()
    meta.null_version = null_next
    meta.delete_marker = False
    doomed_current = _retire_current(objects, state, meta.key, null_next)
    history = state.versions[meta.key]
    doomed = _take_null(history) if null_next else []
    current_json = objects.layout.object_json(state.name, meta.key)
    datafiles.write_json(current_json, dataclasses.asdict(meta), fsync=objects.fsync)
    if meta.key not in state.objects:
        bisect.insort(state.keys, meta.key)
    state.objects[meta.key] = meta
    for old in doomed_current:
        _forget(objects, state.name, old, noncurrent=False)
    for old in doomed:
        _forget(objects, state.name, old, noncurrent=True)
    if not history:
        del state.versions[meta.key]
    return dataclasses.replace(meta, data_files=list(meta.data_files))


def delete_versioned(objects: ObjectStore, state: BucketState, key: str, now: float) -> tuple[bool, ObjectMeta]:
    """A plain DELETE in a versioned bucket: (whether a current version existed, the new delete marker)."""
    null_next = state.versioning != ENABLED
    existed = key in state.objects
    marker = ObjectMeta(
        key=key,
        size=0,
        etag="",
        mime_type="",
        created=now,
        modified=now,
        version_id=objects.new_version_id(),
        null_version=null_next,
        delete_marker=True,
    )
    doomed_current = _retire_current(objects, state, key, null_next)
    history = state.versions[key]
    doomed = _take_null(history) if null_next else []
    _archive(objects, state.name, marker)
    history.insert(0, marker)
    _drop_current_record(objects, state, key)
    for old in doomed_current:
        _forget(objects, state.name, old, noncurrent=False)
    for old in doomed:
        _forget(objects, state.name, old, noncurrent=True)
    return existed, dataclasses.replace(marker)


def _drop_current_record(objects: ObjectStore, state: BucketState, key: str) -> None:
    """Remove ``<h>.json`` and the key from the current index (its versions are recorded elsewhere)."""
    if state.objects.pop(key, None) is not None:
        idx = bisect.bisect_left(state.keys, key)
        if idx < len(state.keys) and state.keys[idx] == key:
            del state.keys[idx]
    objects.layout.object_json(state.name, key).unlink(missing_ok=True)
    if objects.fsync:
        datafiles.fsync_dir(objects.layout.object_dir(state.name, key))


def _promote(objects: ObjectStore, state: BucketState, key: str) -> None:
    """After the newest version went away: the next one, if it is not a marker, becomes current."""
    history = state.versions.get(key, [])
    if history and not history[0].delete_marker:
        nxt = history.pop(0)
        datafiles.write_json(objects.layout.object_json(state.name, key), dataclasses.asdict(nxt), fsync=objects.fsync)
        objects.layout.version_json(state.name, key, nxt.wire_version_id()).unlink(missing_ok=True)
        if key not in state.objects:
            bisect.insort(state.keys, key)
        state.objects[key] = nxt
    if not history:
        state.versions.pop(key, None)


def delete_version(objects: ObjectStore, state: BucketState, key: str, version_id: str) -> ObjectMeta | None:
    """DELETE with ``version_id``: remove that version for good; the removed version, or None if unknown."""
    current = state.objects.get(key)
    history = state.versions.get(key, [])
    if current is not None and current.wire_version_id() == version_id:
        _drop_current_record(objects, state, key)
        _promote(objects, state, key)
        _forget(objects, state.name, current, noncurrent=False)
        return current
    for i, meta in enumerate(history):
        if meta.wire_version_id() != version_id:
            continue
        del history[i]
        objects.layout.version_json(state.name, key, version_id).unlink(missing_ok=True)
        if i == 0 and current is None:
            _promote(objects, state, key)
        elif not history:
            state.versions.pop(key, None)
        _forget(objects, state.name, meta, noncurrent=False)
        return meta
    return None


def find_version(state: BucketState, key: str, version_id: str) -> ObjectMeta:
    """The version ``version_id`` of ``key``: 404 if unknown, 405 (method not allowed) for a delete marker."""
    current = state.objects.get(key)
    candidates = ([current] if current is not None else []) + state.versions.get(key, [])
    for meta in candidates:
        if meta.wire_version_id() == version_id:
            if meta.delete_marker:
                raise EmulatorError(
                    405, "method_not_allowed", "the version is a delete marker", headers=_marker_headers(meta)
                )
            return dataclasses.replace(meta, data_files=list(meta.data_files))
    raise EmulatorError(404, "object_not_exists", "the object version does not exist")


def _marker_headers(meta: ObjectMeta) -> list[tuple[str, str]]:
    return [("x-qs-delete-marker", "true"), ("x-qs-version-id", meta.wire_version_id())]


def latest_marker(state: BucketState, key: str) -> ObjectMeta | None:
    """The delete marker that hides ``key``, if its newest version is one."""
    history = state.versions.get(key)
    if key not in state.objects and history and history[0].delete_marker:
        return history[0]
    return None


def all_versions(state: BucketState, prefix: str) -> list[tuple[ObjectMeta, bool]]:
    """Every version under ``prefix`` as (version, is_latest), by key, newest first within a key."""
    names = set(state.keys[bisect.bisect_left(state.keys, prefix) :]) | set(state.versions)
    out: list[tuple[ObjectMeta, bool]] = []
    for key in sorted(k for k in names if k.startswith(prefix)):
        current = state.objects.get(key)
        chain = ([current] if current is not None else []) + state.versions.get(key, [])
        out.extend((dataclasses.replace(meta), i == 0) for i, meta in enumerate(chain))
    return out
