"""What recent directory listings said about the bucket, so a new file can skip its HEAD.

The scan lists a key prefix once (``ListObjects`` with delimiter ``/``: one request per 1,000 keys)
when it queues many files under it; the uploader then asks ``lookup(key)`` instead of sending a
HEAD. An answer is *covered* only when the key's exact parent prefix (everything up to and
including the last ``/``) was listed less than ``ttl`` seconds ago and the key was not
``forget``-ten since that listing was started; otherwise the caller falls back to HEAD.

Covered answers are as good as a HEAD sent at the time the listing was started: ``(True, None)``
means the object did not exist, ``(True, info)`` gives its size and ETag (the skip rule — same
size and ETag == MD5 — is still applied by the uploader). ``forget(key)`` after every upload of
``key`` keeps a listing that raced with the upload from vouching for the old state.

Memory is bounded: listings older than ``ttl`` are dropped, and at most ``max_entries`` objects
are kept in all (oldest listings are dropped first; a listing larger than that is not kept).
Entries are stored compactly (name within the prefix -> (size, etag)). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qsyncd.remote.base import ObjectInfo

DEFAULT_TTL = 300.0
DEFAULT_MAX_ENTRIES = 200_000


def parent_prefix(key: str) -> str:
    """Everything up to and including the last ``/`` (``""`` for a key without one)."""
    return key[: key.rfind("/") + 1]


@dataclass
class _Listing:
    started: float  # when the ListObjects request was sent: the listing is as old as that
    objects: dict[str, tuple[int, str]]  # name below the prefix -> (size, etag)


class RemoteIndex:
    """Recent ``ListObjects`` results by parent prefix (see the module docstring)."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = float(ttl)
        self.max_entries = int(max_entries)
        self.clock = clock
        self._lock = threading.Lock()
        self._listings: OrderedDict[str, _Listing] = OrderedDict()  # oldest first
        self._entries = 0
        # key -> when it was last forgotten, oldest first; kept for ttl (a listing started earlier is stale)
        self._forgotten: OrderedDict[str, float] = OrderedDict()
        self._floor = float("-inf")  # listings started at or before this are never kept (tombstone overflow)

    def __len__(self) -> int:
        """The number of objects held in all listings."""
        with self._lock:
            return self._entries

    def record_listing(
        self,
        prefix: str,
        objects: Iterable[ObjectInfo],
        now: float | None = None,
        *,
        started: float | None = None,
    ) -> bool:
        """Remember what listing ``prefix`` (with delimiter ``/``) returned; False if not kept.

        ``started``: when the listing request was sent (default ``now``); ages count from it.
        Objects not directly under ``prefix`` (no further ``/``) are ignored.
        """
        now = self.clock() if now is None else now
        started = now if started is None else min(started, now)
        cut = len(prefix)
        entries = {
            o.key[cut:]: (o.size, o.etag)
            for o in objects
            if o.key.startswith(prefix) and "/" not in o.key[cut:] and len(o.key) > cut
        }
        with self._lock:
            self._expire(now)
            old = self._listings.pop(prefix, None)
            if old is not None:
                self._entries -= len(old.objects)
            if now - started >= self.ttl or started <= self._floor or len(entries) > self.max_entries:
                return False
            while self._listings and self._entries + len(entries) > self.max_entries:
                _, dropped = self._listings.popitem(last=False)
                self._entries -= len(dropped.objects)
            self._listings[prefix] = _Listing(started, entries)
            self._entries += len(entries)
            return True

    def lookup(self, key: str, now: float | None = None) -> tuple[bool, ObjectInfo | None]:
        """``(covered, info)``: covered when a fresh listing of the key's parent prefix vouches for it."""
        now = self.clock() if now is None else now
        prefix = parent_prefix(key)
        with self._lock:
            listing = self._listings.get(prefix)
            if listing is None or now - listing.started >= self.ttl:
                return False, None
            forgotten = self._forgotten.get(key)
            if forgotten is not None and forgotten >= listing.started:
                return False, None  # uploaded (or changed) since the listing was started
            entry = listing.objects.get(key[len(prefix) :])
        if entry is None:
            return True, None
        return True, ObjectInfo(key=key, size=entry[0], etag=entry[1])

    def forget(self, key: str, now: float | None = None) -> None:
        """The object under ``key`` may have changed: no listing started before now covers it."""
        now = self.clock() if now is None else now
        prefix = parent_prefix(key)
        with self._lock:
            listing = self._listings.get(prefix)
            if listing is not None and listing.objects.pop(key[len(prefix) :], None) is not None:
                self._entries -= 1
            self._expire(now)
            if len(self._forgotten) < self.max_entries:
                self._forgotten[key] = now
                self._forgotten.move_to_end(key)
            else:  # no room to remember this key: no listing started until now may be used
                self._floor = now
                self._listings.clear()
                self._entries = 0

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._listings.clear()
            self._forgotten.clear()
            self._entries = 0

    def _expire(self, now: float) -> None:
        """Drop listings and forget marks older than ``ttl`` (caller holds the lock)."""
        while self._listings:
            prefix, listing = next(iter(self._listings.items()))
            if now - listing.started < self.ttl:
                break
            del self._listings[prefix]
            self._entries -= len(listing.objects)
        while self._forgotten:
            key, when = next(iter(self._forgotten.items()))
            if now - when < self.ttl:
                break
            del self._forgotten[key]


__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_TTL", "RemoteIndex", "parent_prefix"]
