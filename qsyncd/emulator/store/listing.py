"""Paging of ListObjects, ListMultipartUploads and ListObjectVersions, as pure functions over sorted names.

Both count keys (or uploads) and common prefixes towards ``limit``, return only names after the
marker, and roll every name below a delimiter into one common prefix (see the notes in
:mod:`qsyncd.emulator.operations`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from qsyncd.emulator.store.records import ObjectMeta, UploadState

MAX_KEY_SORT = "\U0010ffff"  # sorts after every character a key can hold


def page_keys(
    keys: Sequence[str], prefix: str, delimiter: str, marker: str, limit: int
) -> tuple[list[str], list[str], bool]:
    """One ListObjects page of the sorted ``keys``: (keys, common prefixes, has_more)."""
    start = max(bisect.bisect_left(keys, prefix), bisect.bisect_right(keys, marker) if marker else 0)
    found: list[str] = []
    prefixes: list[str] = []
    i = start
    n = len(keys)
    while i < n:
        key = keys[i]
        if not key.startswith(prefix):
            break
        if delimiter:
            idx = key.find(delimiter, len(prefix))
            if idx >= 0:
                cp = key[: idx + len(delimiter)]
                if cp > marker or not marker:
                    if len(found) + len(prefixes) >= limit:
                        return found, prefixes, True
                    prefixes.append(cp)
                i = bisect.bisect_left(keys, cp + MAX_KEY_SORT, i)
                continue
        if len(found) + len(prefixes) >= limit:
            return found, prefixes, True
        found.append(key)
        i += 1
    return found, prefixes, False


def page_uploads(
    ordered: Sequence[UploadState], prefix: str, delimiter: str, key_marker: str, upload_id_marker: str, limit: int
) -> tuple[list[UploadState], list[str], bool]:
    """One ListMultipartUploads page of ``ordered`` (sorted by (key, upload_id)): (uploads, prefixes, has_more)."""
    uploads: list[UploadState] = []
    prefixes: list[str] = []
    for up in ordered:
        if not up.key.startswith(prefix):
            continue
        if key_marker or upload_id_marker:
            if upload_id_marker:
                if (up.key, up.upload_id) <= (key_marker, upload_id_marker):
                    continue
            elif up.key <= key_marker:
                continue
        if delimiter:
            idx = up.key.find(delimiter, len(prefix))
            if idx >= 0:
                cp = up.key[: idx + len(delimiter)]
                if cp in prefixes or (key_marker and cp <= key_marker):
                    continue
                if len(uploads) + len(prefixes) >= limit:
                    return uploads, prefixes, True
                prefixes.append(cp)
                continue
        if len(uploads) + len(prefixes) >= limit:
            return uploads, prefixes, True
        uploads.append(up)
    return uploads, prefixes, False


def page_versions(
    entries: Sequence[tuple[ObjectMeta, bool]],
    prefix: str,
    delimiter: str,
    key_marker: str,
    version_id_marker: str,
    limit: int,
) -> tuple[list[tuple[ObjectMeta, bool]], list[str], bool]:
    """One ListObjectVersions page of ``entries`` ((version, is_latest) by key, newest first within
    a key): (entries, common prefixes, has_more).

    With ``key_marker`` alone the page starts at the next key; with ``version_id_marker`` too, at
    the version of ``key_marker`` after that one (older)."""
    out: list[tuple[ObjectMeta, bool]] = []
    prefixes: list[str] = []
    before_marker = bool(version_id_marker)
    for meta, latest in entries:
        key = meta.key
        if not key.startswith(prefix):
            continue
        if key_marker:
            if key < key_marker:
                continue
            if key == key_marker and (not version_id_marker or before_marker):
                if meta.wire_version_id() == version_id_marker:
                    before_marker = False
                continue
        if delimiter:
            idx = key.find(delimiter, len(prefix))
            if idx >= 0:
                cp = key[: idx + len(delimiter)]
                if cp in prefixes or (key_marker and cp <= key_marker):
                    continue
                if len(out) + len(prefixes) >= limit:
                    return out, prefixes, True
                prefixes.append(cp)
                continue
        if len(out) + len(prefixes) >= limit:
            return out, prefixes, True
        out.append((meta, latest))
    return out, prefixes, False
