"""``qsyncd verify``: is every file that should be in the bucket there, with the same size and MD5?

Three sources are compared: the watched trees on disk (walked with the daemon's own rules:
include/exclude, symlinks, file kinds, keys), the ledger (read-only, so this works beside a running
daemon) and the bucket (one listing per watch prefix, ``Remote.iter_objects``, never a HEAD per file).

``check_file`` is the pure decision for one file and ``extras`` the one for objects no file maps to;
``verify`` gathers the inputs and applies them. A file's MD5 is taken from the ledger when the
ledger holds exactly this version of the file under this key (its identity: size, mtime, inode);
otherwise, or with ``rehash``, the file is read and hashed. A listed ETag is the object's MD5 on every
store (``Remote.list_objects``): on QingStor it is, multipart uploads included; on S3 the remote
completes a multipart entry (``<hex>-N``) with a HEAD that reads the whole-file MD5 from the object's
metadata (``remote.s3.listed_md5``). So an ETag that differs means other bytes in the bucket, and one
that is no MD5 at all (a multipart object another tool wrote) cannot be checked: ``md5_unknown``.

``audit`` is the daemon's periodic verify (``service/reverify.py``): the ledger's records against one
listing per prefix, without the disk (no walk, no hashing): which objects are gone or differ from what
the ledger says was uploaded. It merges the two in key order (``Ledger.uploaded_by_key``,
``Remote.iter_objects``), so its memory does not grow with the number of records.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final, Literal

from qsyncd.config import Config, WatchConfig
from qsyncd.errors import SkipFile
from qsyncd.identity import FileIdentity
from qsyncd.keys import PathFilter, classify, object_key
from qsyncd.prefixes import fixed_part
from qsyncd.remote.base import ObjectInfo, Remote
from qsyncd.scan import relpath, walk
from qsyncd.source import md5_section
from qsyncd.state import FileRecord, Ledger

Kind = Literal["missing", "changed", "extra"]
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Finding:
    """One thing wrong (``missing``, ``changed``) or worth knowing (``extra``); ``reason`` is snake_case."""

    kind: Kind
    key: str
    path: str | None
    reason: str
    detail: str


class _NeedHash:
    def __repr__(self) -> str:
        return "NEED_HASH"


NEED_HASH: Final = _NeedHash()  # check_file cannot tell without the file's MD5


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def vouches(record: FileRecord | None, key: str, local: FileIdentity) -> bool:
    """The ledger holds this very version of the file under ``key`` (so its MD5 is the file's)."""
    return record is not None and record.key == key and local.same_version(record.identity)


def check_file(
    *,
    path: str,
    key: str,
    local: FileIdentity,
    record: FileRecord | None,
    remote: ObjectInfo | None,
    md5: str | None,
) -> Finding | _NeedHash | None:
    """What is wrong with the file ``local`` that belongs under ``key`` (None: nothing).

    ``record`` is the ledger's record of ``path``, ``remote`` the listed object under ``key`` (None: not
    listed) and ``md5`` the file's MD5 when it was hashed. Answers ``NEED_HASH`` when the ledger does
    not vouch for the file's MD5 and it was not hashed yet.
    """
    known = vouches(record, key, local)
    if remote is None:
        if known and record is not None:
            return Finding(
                "missing",
                key,
                path,
                "deleted_from_bucket",
                f"not in the bucket, though the ledger says it was uploaded at {_when(record.uploaded_at)} "
                "(deleted behind qsyncd's back?)",
            )
        if record is not None:
            return Finding(
                "missing", key, path, "not_uploaded_yet", "not in the bucket; the file changed since its last upload"
            )
        return Finding("missing", key, path, "never_uploaded", "not in the bucket and not in the ledger (new?)")
    if remote.size != local.size:
        return Finding(
            "changed", key, path, "size_differs", f"size differs: bucket {remote.size} bytes, disk {local.size} bytes"
        )
    expected = md5 if md5 is not None else (record.md5 if known and record is not None else None)
    if expected is None:
        return NEED_HASH
    if remote.etag == expected:
        return None
    if not _MD5_RE.match(remote.etag):
        why = f"the bucket reports no MD5 for this object (ETag {remote.etag!r}: a multipart upload by another tool?)"
        return Finding("changed", key, path, "md5_unknown", why + ", so its content cannot be checked")
    if known and record is not None and record.md5 == expected:
        why = f"the bucket's ETag {remote.etag} is not the MD5 {expected} the ledger recorded at upload"
        return Finding("changed", key, path, "content_differs", why + " (the object was overwritten or corrupted)")
    return Finding(
        "changed", key, path, "content_differs", f"the bucket's ETag {remote.etag} is not the file's MD5 {expected}"
    )


def extras(objects: Mapping[str, ObjectInfo], expected: Iterable[str], records: Iterable[FileRecord]) -> list[Finding]:
    """Objects listed under a watch prefix that no file on disk maps to (informational), by key."""
    wanted = set(expected)
    by_key = {r.key: r.path for r in records}
    out: list[Finding] = []
    for key in sorted(set(objects) - wanted):
        source = by_key.get(key)
        if source is not None and not os.path.lexists(source):
            out.append(Finding("extra", key, source, "gone_from_disk", f"uploaded from {source}, which is gone"))
        elif source is not None:
            why = f"uploaded from {source}, which now has another key (its mtime moved to another date?)"
            out.append(Finding("extra", key, source, "key_moved", why))
        else:
            out.append(Finding("extra", key, None, "not_on_disk", "no file on disk maps to this key"))
    return out


def audit(
    records: Iterable[FileRecord], objects: Iterable[ObjectInfo], *, before: float
) -> Iterator[tuple[Finding, FileRecord]]:
    """The records uploaded before ``before`` (wall time) whose object is not listed as the ledger says:
    ``missing`` (not listed) or ``changed`` (another size or ETag, ``check_file``), with the record.

    A merge of two streams in key order: ``records`` sorted by key (several may share one), ``objects``
    in strictly ascending key order (a listing, ``Remote.iter_objects``), each read once, so it holds one
    record and one object whatever their number. Findings come in key order. Records uploaded since
    ``before`` (the listing may have been made before their upload) are left for the next round. The
    listing is read to its end, past the last record."""
    listing = iter(objects)
    obj = next(listing, None)
    for rec in records:
        while obj is not None and obj.key < rec.key:
            obj = next(listing, None)
        if rec.uploaded_at >= before:
            continue
        remote = obj if obj is not None and obj.key == rec.key else None
        found = check_file(path=rec.path, key=rec.key, local=rec.identity, record=rec, remote=remote, md5=rec.md5)
        if isinstance(found, Finding):
            yield found, rec
    for _ in listing:
        pass


@dataclass
class Result:
    """What one verify found. ``ok``: every file that should be in the bucket is there, intact."""

    files: int = 0
    objects: int = 0
    hashed: int = 0
    prefixes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # a missing watch root, an unreadable directory

    @property
    def ok(self) -> bool:
        return not self.problems and not any(f.kind != "extra" for f in self.findings)

    def of_kind(self, kind: Kind) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "ok": self.ok,
            "files": self.files,
            "objects": self.objects,
            "hashed": self.hashed,
            "prefixes": self.prefixes,
            "problems": self.problems,
        }
        for kind in ("missing", "changed", "extra"):
            data[kind] = [asdict(f) for f in self.of_kind(kind)]
        return data

    def render(self) -> str:
        lines = [f"{f.kind:<8} {f.key}{f' ({f.path})' if f.path else ''}: {f.detail}" for f in self.findings]
        lines += [f"problem  {p}" for p in self.problems]
        counts = ", ".join(f"{len(self.of_kind(k))} {k}" for k in ("missing", "changed", "extra"))
        verdict = "ok" if self.ok else "NOT ok"
        lines.append(
            f"verify: {verdict}: {self.files} files on disk, {self.objects} objects listed under "
            f"{len(self.prefixes)} prefix(es), {self.hashed} hashed: {counts}"
        )
        return "\n".join(lines)


def list_prefixes(watches: Sequence[WatchConfig]) -> list[str]:
    """The fewest prefixes whose listings cover every watch (a prefix inside another is not listed again)."""
    fixed = sorted({fixed_part(w.prefix) for w in watches})
    return [p for p in fixed if not any(p != q and p.startswith(q) for q in fixed)]


def verify(cfg: Config, remote: Remote, ledger: Ledger, *, rehash: bool = False) -> Result:
    """Compare disk, ledger and bucket for every watch of ``cfg``."""
    res = Result(prefixes=list_prefixes(cfg.watches))
    # Every file is looked up by key in walk order, and extras are the keys no file maps to: the listing
    # is held in a dict (built page by page, never also as a list). Streaming this as the periodic verify
    # does would need the walk sorted by key, which holds every file instead.
    objects = {obj.key: obj for prefix in res.prefixes for obj in remote.iter_objects(prefix)}
    res.objects = len(objects)
    expected: set[str] = set()
    records: list[FileRecord] = []
    for w in cfg.watches:
        root = str(w.path)
        if not w.path.is_dir():
            res.problems.append(f"watch root {root} does not exist")
            continue
        known = ledger.uploaded_under(root)
        records += known.values()
        for path, key, st in _files(w, res):
            res.files += 1
            expected.add(key)
            local = FileIdentity.of(st)
            record = known.get(path)
            md5 = _md5(w, path) if rehash else None
            res.hashed += md5 is not None
            found = check_file(path=path, key=key, local=local, record=record, remote=objects.get(key), md5=md5)
            if isinstance(found, _NeedHash):
                md5 = _md5(w, path)
                res.hashed += 1
                found = check_file(path=path, key=key, local=local, record=record, remote=objects.get(key), md5=md5)
            if isinstance(found, Finding):
                res.findings.append(found)
    kept = tuple(w.kept_prefix for w in cfg.watches if w.kept_prefix)  # versions on_change kept: not extra
    res.findings += extras({k: o for k, o in objects.items() if not k.startswith(kept)}, expected, records)
    return res


def _files(w: WatchConfig, res: Result) -> Iterable[tuple[str, str, os.stat_result]]:
    """``(path, key, stat)`` of every file of the watch ``w`` that belongs in the bucket."""
    root = str(w.path)

    def on_error(path: str, err: OSError) -> None:
        res.problems.append(f"cannot read {path}: {err.strerror or err}")

    filt = PathFilter(w.include, w.exclude)
    for path, _ in walk(
        root, root, recursive=w.recursive, follow_symlinks=w.follow_symlinks, filt=filt, on_error=on_error
    ):
        if not filt.wanted(relpath(root, path)):
            continue
        try:
            st = classify(Path(path), w.path, w.follow_symlinks)
            key = object_key(w.prefix, os.fsencode(relpath(root, path)), st.st_mtime)
        except (SkipFile, FileNotFoundError):
            continue  # never uploaded as it stands (the daemon says so with file_skipped), or gone
        yield path, key, st


def _md5(w: WatchConfig, path: str) -> str:
    fd = os.open(os.path.realpath(path) if w.follow_symlinks else path, _OPEN_FLAGS)
    try:
        return str(md5_section(fd, 0, os.fstat(fd).st_size).hexdigest())
    finally:
        os.close(fd)


def to_repair(res: Result) -> list[str]:
    """The paths whose ledger record must be forgotten so that a ``sync`` looks at the bucket again."""
    return sorted({f.path for f in res.findings if f.kind != "extra" and f.path is not None})
