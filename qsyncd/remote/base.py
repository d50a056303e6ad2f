"""The contract every object store behind qsyncd fulfils: ``Remote``, the ``Body`` it reads, and what it returns.

Keys are ``str`` (valid UTF-8, 1..1023 bytes when encoded). ETags and MD5s are lower-case hex
without quotes. Part numbers are 0-based. Bodies are ``Body`` objects (a file, a ``qsyncd.source.Section``)
that yield exactly ``size`` bytes from ``read()``; the remote streams them and never holds a whole
object in memory.

Errors are ``qsyncd.errors`` types only, classified by consequence:

* ``NotFound`` — this object or upload does not exist (``head`` returns ``None`` instead);
* ``StoreRefused`` — every request will fail: ``CredentialsRejected`` (a wrong key, a bad signature,
  a skewed clock) or ``BucketMissing``; the caller pauses all uploads;
* ``BodyMismatch`` — the body did not match its Content-MD5 or its size; nothing was stored; the
  caller re-reads the file (it changed while it was read);
* ``SourceChanged`` — a copy or move found other content at its source than the caller named;
  nothing was written;
* ``AuthError``/``BadRequest`` — permanent for this request (one key refused, a malformed request);
* ``TransientError``/``Unreachable`` — retry later (5xx, a timeout, a broken connection, no route).

Every error carries ``operation`` (e.g. ``PutObject``), ``key`` and, when a response arrived, ``status``
and the store's ``code``; its message says what to do and never holds a credential. No SDK or HTTP
library exception escapes an implementation. Arguments that break the contract (an empty key, a
malformed MD5, a part number out of range) raise ``ValueError`` before anything is sent.

The contract is proved for every store by ``tests/remote/test_contract.py`` (one suite, one fixture
param per store); ``tests/qsynctest/memremote.py`` is an in-memory implementation for unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class Body(Protocol):
    """A request body: a binary file object positioned at the first byte to send.

    The remote reads ``size`` bytes from the current position with ``read(n)`` (a short read is not
    the end; an empty one is) and may ``tell()`` the start and ``seek()`` back to it to send the body
    again. Optional extras it uses when present: ``seekable()``; ``region(n)``/``advance(n)`` for
    zero-copy sends (``qsyncd.source.Section``, see ``qsyncd.remote.body``)."""

    def read(self, n: int = -1, /) -> bytes: ...

    def seek(self, pos: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


LIST_PAGE = 1000  # entries per listing page: the most QingStor and S3 return in one ListObjects


def check_page_size(page_size: int) -> int:
    """``page_size`` if it is a page size ``iter_objects`` accepts (1..``LIST_PAGE``), else ``ValueError``."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= LIST_PAGE:
        raise ValueError(f"page_size must be an int in 1..{LIST_PAGE}, not {page_size!r}")
    return page_size


@dataclass(frozen=True)
class ObjectInfo:
    """What HEAD (or a listing) says about an object."""

    key: str
    size: int
    etag: str  # unquoted lower-case hex; for a single PUT the MD5, for multipart objects what Complete sent
    content_type: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-qs-meta-* without the prefix, names lower-case


@dataclass(frozen=True)
class PartInfo:
    """One stored part of a multipart upload (part numbers are 0-based)."""

    part_number: int
    size: int
    etag: str  # unquoted lower-case hex MD5 of the part


@dataclass(frozen=True)
class UploadInfo:
    """One multipart upload that was initiated and neither completed nor aborted."""

    key: str
    upload_id: str
    created: str  # RFC 3339 as the server sent it ("" when it sent none)


@runtime_checkable
class Remote(Protocol):
    """One bucket of an object store.

    Every method is safe to call from several threads at once. Every method is idempotent except
    ``initiate`` (each call creates a new upload). A method that returns has done what it says: the
    caller may assume the object, part or abort is durable on the store. A method that raises may or
    may not have had its effect (an answer can be lost); ``RemoteError`` subclasses say what the caller
    should do next (see the module docstring). ``close()`` (where offered) releases connections.
    """

    def probe(self) -> None:
        """Check that the bucket exists and the credentials work (HEAD bucket); returns nothing.

        Raises ``BucketMissing`` or ``CredentialsRejected`` (both ``StoreRefused``), ``AuthError``
        when the key may not read the bucket, ``TransientError``/``Unreachable`` when it cannot tell.
        """

    def head(self, key: str) -> ObjectInfo | None:
        """The object's info, or ``None`` when no object has this key.

        ``etag`` is what ``put`` returned or the ``etag`` given to ``complete``; ``size`` the stored
        length; ``metadata`` the names given to ``put``/``initiate``, lower-cased. A HEAD answer has
        no body, so a missing bucket may also be ``None``: ``probe`` (run at start) is what tells.
        """

    def put(
        self,
        key: str,
        body: Body,
        size: int,
        md5_b64: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> str:
        """Store ``size`` bytes read from ``body`` under ``key`` with ``Content-MD5: md5_b64``
        (Base64 of the 16-byte digest), replacing any object with that key; returns its ETag.

        The returned ETag is the hex MD5 of the bytes stored (the caller compares it with its own).
        A body whose bytes do not match ``md5_b64``, or that ends before ``size`` bytes, raises
        ``BodyMismatch`` (code ``bad_digest`` / ``incomplete_body``) and stores nothing: the object
        that was there stays. ``metadata`` names are ``[A-Za-z0-9._-]``, values printable ASCII;
        ``storage_class`` is ``None`` (the bucket's default) or a class the store knows.
        """

    #: True when the store cannot be told the object's MD5 at ``complete`` (S3: a multipart ETag is
    #: md5(part MD5s)-N, and metadata is fixed at initiate), so the caller hashes the file first and
    #: passes ``md5_hex`` to ``initiate``. ``complete`` still works without it, at a cost (S3: a copy).
    needs_md5_at_initiate: bool

    def initiate(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
        md5_hex: str | None = None,
    ) -> str:
        """Start a multipart upload for ``key``; returns its upload id (a non-empty ``str``).

        Nothing is visible under ``key`` until ``complete``; the upload is listed by
        ``list_uploads`` until it is completed or aborted. Each call starts a new upload.
        ``md5_hex``: the whole object's MD5 when the caller knows it before the parts (a store with
        ``needs_md5_at_initiate`` keeps it with the object; others ignore it).
        """

    def upload_part(self, key: str, upload_id: str, part_number: int, body: Body, size: int, md5_b64: str) -> str:
        """Store one part (0-based ``part_number``, 0..10000) of ``size`` bytes with ``Content-MD5``;
        returns its ETag (the hex MD5 of the part). Sending a part number again replaces that part.

        An unknown (completed, aborted, expired) upload id raises ``NotFound`` (code
        ``upload_not_exists``); a body that does not match raises ``BodyMismatch`` and stores nothing.
        """

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """All stored parts of an upload, sorted by part number (pages through the listing).

        An unknown upload id raises ``NotFound``; the caller treats that as "start again".
        """

    def complete(self, key: str, upload_id: str, parts: Sequence[PartInfo], etag: str) -> None:
        """Assemble ``parts`` (strictly ascending, each as ``list_parts`` or ``upload_part`` reported
        it) into the object ``key``; ``etag`` (the hex MD5 of the whole object) becomes the ETag that
        ``head`` and ``list_objects`` report. Returns once the object is stored and the upload gone.

        An unknown upload id raises ``NotFound`` (the object may exist if an earlier Complete's
        answer was lost: ``head`` tells); a part that was never stored, whose size or ETag differs, or
        a part other than the last smaller than the store's minimum raises ``BadRequest``.
        """

    def abort(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts. Succeeds (returns) if it is already gone."""

    def list_uploads(self, prefix: str = "") -> list[UploadInfo]:
        """All unfinished multipart uploads whose key starts with ``prefix``, sorted by key and
        upload id (pages through the listing)."""

    def iter_objects(self, prefix: str, delimiter: str = "", *, page_size: int = LIST_PAGE) -> Iterator[ObjectInfo]:
        """``list_objects`` one page at a time: the same objects, in the same order, as they are listed.

        Keys come in strictly ascending order of their UTF-8 bytes (which is ``str`` order in Python:
        code point order), the order the stores list in. One page of at most ``page_size`` entries
        (1..1000; objects and, with a ``delimiter``, common prefixes count towards it) is requested when
        the previous one is used up, so the caller holds one page whatever the number of objects, and an
        object written after the listing passed its key is not seen (one written ahead of it may be).
        Errors are ``list_objects``'s, raised by the ``next()`` whose page failed; what was yielded
        before stands. ``page_size`` outside 1..1000 raises ``ValueError`` before anything is sent.
        """

    def list_objects(self, prefix: str, delimiter: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, sorted by key (pages through the listing).

        With a ``delimiter`` (e.g. ``"/"``) keys that contain it after ``prefix`` are rolled up into
        common prefixes, which are not returned: the result is the objects directly "in" ``prefix``.
        ``ObjectInfo`` has ``key``, ``size`` and ``etag`` (the same value HEAD reports, so a caller may
        compare it with a file's MD5: ``qsyncd verify`` and the periodic verify rely on that; a store
        whose listing cannot say it for some objects completes those entries itself, as ``S3Remote``
        HEADs each multipart object listed); ``content_type`` may be set and ``metadata`` is empty
        (listings do not carry it). A missing bucket raises ``BucketMissing``.
        ``list(iter_objects(prefix, delimiter))``, in one list.
        """

    def copy(self, source: str, key: str, *, etag: str, size: int) -> str:
        """Server-side copy of the object ``source`` to ``key`` (replacing any object there), only if
        ``source`` still holds the content that ``head`` reports with this ``etag`` and ``size``.

        Returns the new object's ETag as ``head(key)`` will report it (the same content: == ``etag``;
        on S3, for a multipart object without ``md5chksum`` written by another tool, whatever the store
        gives the copy). Content type and metadata (x-qs-meta-* / x-amz-meta-*) are kept. Objects
        larger than the store's single-request copy limit (5 GiB on QingStor and S3; the constructor's
        ``max_copy_size`` so tests can lower it) are copied part by part (initiate, part copy with a
        byte range, complete), transparently; a part copy that fails aborts its upload.

        Raises ``NotFound`` when no object has key ``source``; ``SourceChanged`` when it holds other
        content (a 412 on the copy condition, or a HEAD that reports another ETag or size; QingStor's
        one-request copy and move are conditional on the ETag alone, the MD5 that pins the size); otherwise
        the usual contract errors. ``source == key``, an empty key or a malformed ``etag`` raise
        ``ValueError`` before anything is sent.
        """

    def move(self, source: str, key: str, *, etag: str, size: int) -> str:
        """Like ``copy``, and afterwards no object has key ``source``; returns what ``copy`` returns.

        QingStor: one request (PUT with ``x-qs-move-source`` and ``x-qs-move-source-if-match``),
        whatever the size. S3 has no move: ``copy``, then DeleteObject of the source. If the copy
        succeeded but the delete failed, the delete's error is raised (the copy at ``key`` stands). A
        retried move whose source is already gone raises ``NotFound`` (the caller HEADs ``key``).
        """

    def versioning(self) -> str:
        """The bucket's versioning state: ``"enabled"``, ``"suspended"`` or ``"off"`` (never enabled).

        QingStor: GET /<bucket>?versioning; S3: GetBucketVersioning. A key that may not read it raises
        ``AuthError``; a store that does not implement it (501 / NotImplemented) returns ``"off"``.
        """
