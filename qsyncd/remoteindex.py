"""What directory listings said about the bucket, so a new file can skip its HEAD.

The scan lists a key prefix once (``ListObjects`` with delimiter ``/``: one request per 1,000 keys)
when it queues many files under it; the uploader then asks ``lookup(key)`` instead of sending a
HEAD. An answer is *covered* only when the key's exact parent prefix (everything up to and
including the last ``/``) was listed and the key was not ``forget``-ten since that listing was
started; otherwise the caller falls back to HEAD. Covered answers are as good as a HEAD sent at the
time the listing was started: ``(True, None)`` means the object did not exist, ``(True, info)``
gives its size and ETag (the skip rule — same size and ETag == MD5 — is still applied by the
uploader). ``forget(key)`` after every upload of ``key`` keeps a listing that raced with the upload
from vouching for the old state.

How long an answer is trusted (the rule for other writers to the bucket):

- *Absent* answers are trusted until the listing is evicted by the size bound, however old it is.
  This daemon forgets every key it writes, so only another writer can have created the object
  since; trusting the stale "absent" then costs one PUT that overwrites it — exactly what a HEAD
  would have led to (another size or ETag: upload), except when the other writer stored the same
  bytes, where the PUT is redundant but stores the same content. No file is ever skipped because
  of a stale absent answer, so a sync that takes hours still sends no HEAD for a file a listing
  answered (issue 21: a first sync of 300,000 files sent 257,888 HEADs when listings expired after
  300 s, all made early in the scan).
- *Present* answers (which can make the uploader skip a file, or delete it with
  ``after_upload = "delete"``) are trusted for ``ttl`` seconds from the listing's start only:
  another writer may have deleted or replaced the object since, and a skip on a stale answer would
  leave the file without its copy. After ``ttl`` such a key costs a HEAD again.

A *tree* listing (``record_tree``: everything under a prefix, no delimiter; a first sync's scan sends one
for its root's prefix instead of one listing per directory) is kept as the listings of each parent
prefix it found objects under, plus a mark that every other prefix below it held nothing when it was
started: ``lookup`` then answers *absent* for a key whose parent prefix has no listing of its own, by
the same rules. A listing evicted by the size bound leaves a hole in the marks over it (what it held is
not known any more), so the marks never vouch for a prefix whose objects were dropped.

Memory is bounded: at most ``max_entries`` items are kept in all, counting each listing, each
object and each forgotten key inside a listing as one (oldest listings are dropped first; a listing
larger than that is not kept). Forget marks for listings still in flight are kept ``in_flight``
seconds (a listing that took longer than that to arrive is not kept): a first sync forgets every
key it uploads, and at 300 files/s marks kept for ``ttl`` (300 s) held 90,000 keys for nothing.
Entries are stored compactly (name within the prefix -> (size, etag)). Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from qsyncd.remote.base import ObjectInfo

DEFAULT_TTL = 300.0
IN_FLIGHT = 60.0  # a listing that takes longer than this to arrive is not kept (forget marks live this long)
DEFAULT_MAX_ENTRIES = 200_000


def parent_prefix(key: str) -> str:
    """Everything up to and including the last ``/`` (``""`` for a key without one)."""
    return key[: key.rfind("/") + 1]


@dataclass
class _Tree:
    started: float  # when the listing of everything under the prefix was sent
    holes: set[str] = field(default_factory=set)  # prefixes below whose listings were evicted: not covered


@dataclass
class _Listing:
    started: float  # when the ListObjects request was sent: the listing is as old as that
    objects: dict[str, tuple[int, str]]  # name below the prefix -> (size, etag)
    forgotten: set[str] = field(default_factory=set)  # names written (or changed) since: not covered

    def cost(self) -> int:
        """What this listing counts against ``max_entries``."""
        return 1 + len(self.objects) + len(self.forgotten)


class RemoteIndex:
    """Recent ``ListObjects`` results by parent prefix (see the module docstring)."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        in_flight: float = IN_FLIGHT,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = float(ttl)
        self.in_flight = min(float(in_flight), self.ttl)
        self.max_entries = int(max_entries)
        self.clock = clock
        self._lock = threading.Lock()
        self._listings: OrderedDict[str, _Listing] = OrderedDict()  # oldest first
        self._entries = 0  # objects held in all listings (what len() says)
        self._cost = 0  # what all listings count against max_entries (see _Listing.cost)
        # key -> when it was last forgotten, oldest first; kept for in_flight (a listing started earlier is stale)
        self._forgotten: OrderedDict[str, float] = OrderedDict()
        self._floor = float("-inf")  # listings started at or before this are never kept (tombstone overflow)
        self._trees: dict[str, _Tree] = {}  # prefix -> a listing of everything under it (record_tree)

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
                self._drop(old)
            if now - started >= self.in_flight or started <= self._floor or 1 + len(entries) > self.max_entries:
                return False
            while self._listings and self._cost + 1 + len(entries) > self.max_entries:
                self._evict_oldest()
            listing = _Listing(started, entries)
            self._listings[prefix] = listing
            self._entries += len(entries)
            self._cost += listing.cost()
            return True

    def record_tree(
        self,
        prefix: str,
        objects: Iterable[ObjectInfo],
        now: float | None = None,
        *,
        started: float | None = None,
    ) -> bool:
        """Remember what listing everything under ``prefix`` (no delimiter) returned: each parent prefix's
        objects, as ``record_listing`` keeps them, and that no other prefix below ``prefix`` held anything.
        False if not kept (too old, or larger than half of ``max_entries``)."""
        now = self.clock() if now is None else now
        started = now if started is None else min(started, now)
        groups: dict[str, list[ObjectInfo]] = {}
        for o in objects:
            if o.key.startswith(prefix):
                groups.setdefault(parent_prefix(o.key), []).append(o)
        if sum(len(g) for g in groups.values()) + len(groups) > self.max_entries // 2:
            return False
        for sub, found in groups.items():
            if not self.record_listing(sub, found, now, started=started):
                return False
        with self._lock:
            if now - started >= self.in_flight or started <= self._floor:
                return False
            old = self._trees.get(prefix)
            if old is None or old.started <= started:
                self._trees[prefix] = _Tree(started)
        return True

    def fresh(self, prefix: str, now: float | None = None) -> bool:
        """Whether listing ``prefix`` again would tell ``lookup`` nothing new for a while: a tree listing found
        nothing under it, or its own listing found nothing, or found objects less than ``ttl / 2`` ago
        (absent answers stand as long as they are kept, present ones for ``ttl``)."""
        now = self.clock() if now is None else now
        with self._lock:
            listing = self._listings.get(prefix)
            if listing is None:
                return self._tree_for(prefix) is not None
            return not listing.objects or now - listing.started < self.ttl / 2

    def lookup(self, key: str, now: float | None = None) -> tuple[bool, ObjectInfo | None]:
        """``(covered, info)``: covered when a listing of the key's parent prefix vouches for it (an
        absent key for as long as the listing is kept, a present one for ``ttl``: see the module docstring)."""
        now = self.clock() if now is None else now
        prefix = parent_prefix(key)
        name = key[len(prefix) :]
        with self._lock:
            listing = self._listings.get(prefix)
            if listing is None:
                tree = self._tree_for(prefix)
                if tree is None:
                    return False, None
                listing = _Listing(tree, {})  # a tree listing found nothing under this prefix
            if name in listing.forgotten:
                return False, None
            forgotten = self._forgotten.get(key)
            if forgotten is not None and forgotten >= listing.started:
                return False, None  # uploaded (or changed) since the listing was started
            entry = listing.objects.get(name)
            if entry is not None and now - listing.started >= self.ttl:
                return False, None  # another writer may have deleted or replaced it since: HEAD
        if entry is None:
            return True, None
        return True, ObjectInfo(key=key, size=entry[0], etag=entry[1])

    def forget(self, key: str, now: float | None = None) -> None:
        """The object under ``key`` may have changed: no listing started before now covers it."""
        now = self.clock() if now is None else now
        with self._lock:
            self._expire(now)
            self._tombstone(key, now)
            self._forgotten.pop(key, None)
            while len(self._forgotten) >= self.max_entries:  # no room: listings started until then are refused
                old, when = self._forgotten.popitem(last=False)
                self._tombstone(old, when)
                self._floor = max(self._floor, when)
            self._forgotten[key] = now
            self._trim()

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._listings.clear()
            self._forgotten.clear()
            self._trees.clear()
            self._entries = self._cost = 0

    def _drop(self, listing: _Listing) -> None:
        """Account for a listing removed from ``_listings`` (caller holds the lock)."""
        self._entries -= len(listing.objects)
        self._cost -= listing.cost()

    def _tombstone(self, key: str, when: float) -> None:
        """Mark ``key`` as not covered in its prefix's listing if that was started at or before ``when``
        (caller holds the lock): the mark outlives the forget mark, as the listing does."""
        prefix = parent_prefix(key)
        listing = self._listings.get(prefix)
        if listing is None:
            tree = self._tree_for(prefix)
            if tree is None or tree > when:
                return
            listing = self._listings[prefix] = _Listing(tree, {})  # where the tree found nothing: keep the mark
            self._cost += 1
        if listing.started > when:
            return
        name = key[len(prefix) :]
        if name in listing.forgotten:
            return
        if listing.objects.pop(name, None) is not None:
            self._entries -= 1
        else:
            self._cost += 1
        listing.forgotten.add(name)

    def _expire(self, now: float) -> None:
        """Turn forget marks older than ``ttl`` into marks inside the listings they concern: a listing
        started that long ago is refused by ``record_listing`` (caller holds the lock)."""
        while self._forgotten:
            key, when = next(iter(self._forgotten.items()))
            if now - when < self.in_flight:
                break
            del self._forgotten[key]
            self._tombstone(key, when)
        self._trim()

    def _trim(self) -> None:
        """Drop the oldest listings while the marks added inside them weigh more than the bound."""
        while self._listings and self._cost > self.max_entries:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        """Drop the oldest listing; the tree marks over it get a hole there (caller holds the lock)."""
        prefix, dropped = self._listings.popitem(last=False)
        self._drop(dropped)
        for top, tree in self._trees.items():
            if prefix.startswith(top):
                tree.holes.add(prefix)

    def _tree_for(self, prefix: str) -> float | None:
        """When the latest tree listing that covers ``prefix`` was started, or ``None`` (caller holds the lock)."""
        found = [t.started for top, t in self._trees.items() if prefix.startswith(top) and prefix not in t.holes]
        return max(found) if found else None


__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_TTL", "RemoteIndex", "parent_prefix"]
