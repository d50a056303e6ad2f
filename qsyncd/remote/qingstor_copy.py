"""Copy, move and the versioning state on QingStor: ``Remote.copy``/``move``/``versioning`` for ``QingStorRemote``.

* copy up to ``max_copy_size`` (5 GiB): one PUT with ``x-qs-copy-source`` and
  ``x-qs-copy-source-if-match: "<etag>"`` (hand-signed, ``qingstor_fast``); the metadata directive is
  left at its default, COPY, so content type and ``x-qs-meta-*`` are kept. On QingStor the ETag is the
  content's MD5 (Complete sets it so for multipart objects), so the ETag condition pins the size too;
* copy above it: HEAD the source (its content type and metadata for Initiate; its ETag and size are
  checked against the caller's), then part copies (``x-qs-copy-range``, ``x-qs-copy-source-if-match``,
  built by the SDK), and Complete with the caller's ETag as the object's ETag. The docs promise no ETag
  in a part copy's answer, so when one is missing the parts' ETags come from ListMultipart;
* move: one PUT with ``x-qs-move-source`` and ``x-qs-move-source-if-match`` (docs ``move.md``), whatever
  the size (the docs name no limit for a move);
* versioning: GET /<bucket>?versioning, ``{"status": "ENABLED" | "SUSPENDED" | "DISABLED"}``.

A 412 is ``SourceChanged`` and a 404 for the source ``NotFound`` (``translate``), re-raised here with
the source named.
"""

from __future__ import annotations

from collections.abc import Sequence

from qsyncd.errors import NotFound, SourceChanged, TransientError
from qsyncd.remote.base import PartInfo, Remote
from qsyncd.remote.copies import check_copy, copy_by_parts, source_changed, source_missing
from qsyncd.remote.qingstor_checks import check_key, normalise_etag
from qsyncd.remote.qingstor_fast import FastTransport
from qsyncd.remote.qingstor_reply import invalid_response
from qsyncd.remote.qingstor_sdk import SdkTransport

VERSIONING_STATES = {"ENABLED": "enabled", "SUSPENDED": "suspended", "DISABLED": "off", "": "off"}


class QingStorCopies:
    """The server-side requests of one ``QingStorRemote`` (``remote`` for HEAD and the multipart calls)."""

    def __init__(self, remote: Remote, sdk: SdkTransport, fast: FastTransport, bucket: str, max_copy_size: int):
        self._remote = remote
        self._sdk = sdk
        self._fast = fast
        self._bucket = bucket
        self._limit = max_copy_size

    def copy(self, source: str, key: str, etag: str, size: int) -> str:
        """``Remote.copy``: one request up to the limit, part by part above it."""
        tag = check_copy(source, key, etag, size, check_key)
        if size <= self._limit:
            return self._one("CopyObject", source, key, tag, move=False)
        info = self._remote.head(source)
        if info is None:
            raise source_missing(NotFound("", status=404), "CopyObject", source, key)
        if (info.etag, info.size) != (tag, size):
            detail = f"ETag {info.etag}, {info.size} bytes instead of {tag}, {size} bytes"
            raise source_changed("CopyObject", source, key, detail)

        def copy_part(upload_id: str, number: int, first: int, last: int) -> str:
            try:
                reply = self._sdk.copy_part(
                    key, upload_id, number, f"/{self._bucket}/{source}", f"bytes={first}-{last}", f'"{tag}"'
                )
            except SourceChanged as err:
                raise source_changed("CopyObjectPart", source, key, f"its ETag is no longer {tag}", err) from None
            except NotFound as err:
                if err.code == "upload_not_exists":
                    raise
                raise source_missing(err, "CopyObjectPart", source, key) from None
            return normalise_etag(reply.headers.get("ETag"))

        def complete(upload_id: str, parts: Sequence[PartInfo]) -> None:
            if not all(p.etag for p in parts):  # the answers carried no ETag: ask the store
                parts = self._remote.list_parts(key, upload_id)
            self._remote.complete(key, upload_id, parts, tag)

        copy_by_parts(
            size,
            self._limit,
            initiate=lambda: self._remote.initiate(key, content_type=info.content_type, metadata=info.metadata),
            copy_part=copy_part,
            complete=complete,
            abort=lambda upload_id: self._remote.abort(key, upload_id),
        )
        return tag

    def move(self, source: str, key: str, etag: str, size: int) -> str:
        """``Remote.move``: one PUT with ``x-qs-move-source``."""
        tag = check_copy(source, key, etag, size, check_key)
        return self._one("MoveObject", source, key, tag, move=True)

    def _one(self, operation: str, source: str, key: str, tag: str, *, move: bool) -> str:
        try:
            reply = self._fast.copy(operation, key, source, tag, move=move)
        except SourceChanged as err:
            raise source_changed(operation, source, key, f"its ETag is no longer {tag}", err) from None
        except NotFound as err:
            raise source_missing(err, operation, source, key) from None
        return normalise_etag(reply.headers.get("ETag")) or tag

    def versioning(self) -> str:
        """``Remote.versioning``: GET ?versioning; a store without it (501) is "off"."""
        try:
            reply = self._fast.versioning()
        except TransientError as err:
            if err.status == 501:
                return "off"
            raise
        status = reply.get("status") or ""
        state = VERSIONING_STATES.get(str(status).upper()) if isinstance(status, str) else None
        if state is None:
            raise invalid_response("GetBucketVersioning", "", reply, f"unknown versioning status {status!r}")
        return state
