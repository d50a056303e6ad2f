"""Server-side copies for every store: the argument checks, the byte ranges and the part-by-part plan.

``Remote.copy`` copies an object in one request up to the store's single-request limit
(``MAX_COPY_SIZE``, 5 GiB on QingStor and S3) and part by part above it: initiate an upload with the
source's content type and metadata, copy each byte range of the source into a part (conditional on
the source's ETag, so a source replaced half-way fails the copy instead of mixing two versions),
complete. ``copy_by_parts`` is that plan with the store's requests passed in; a failure aborts the
upload so no half-copied upload is left behind (the maintenance thread would abort it later anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qsyncd.errors import NotFound, RemoteError, SourceChanged
from qsyncd.remote.base import PartInfo

MAX_COPY_SIZE = 5 * 1024**3  # one CopyObject / PUT with x-qs-copy-source, and one part copy, at most
MAX_COPY_PARTS = 10000  # parts of one upload, on both stores


def check_copy(source: str, key: str, etag: str, size: int, check_key: Callable[[str], None]) -> str:
    """Refuse arguments outside the contract with ``ValueError``; the ETag unquoted and lower-cased."""
    check_key(source)
    check_key(key)
    if source == key:
        raise ValueError(f"copy/move source and target are the same key {key!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0, got {size!r}")
    tag = etag.strip().strip('"').lower() if isinstance(etag, str) else ""
    if not tag or any(c not in "0123456789abcdef-" for c in tag):
        raise ValueError(f"etag must be the hex ETag head reports, got {etag!r}")
    return tag


def check_limit(max_copy_size: int) -> int:
    """A constructor's ``max_copy_size``: positive, at most the stores' 5 GiB."""
    if isinstance(max_copy_size, bool) or not isinstance(max_copy_size, int) or not 0 < max_copy_size <= MAX_COPY_SIZE:
        raise ValueError(f"max_copy_size must be an int in 1..{MAX_COPY_SIZE}, got {max_copy_size!r}")
    return max_copy_size


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges of at most ``part_size`` bytes covering ``size`` bytes, in order; larger parts
    when ``part_size`` would need more than ``MAX_COPY_PARTS``."""
    step = max(part_size, -(-size // MAX_COPY_PARTS))
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


def copy_by_parts(
    size: int,
    part_size: int,
    *,
    initiate: Callable[[], str],
    copy_part: Callable[[str, int, int, int], str],
    complete: Callable[[str, Sequence[PartInfo]], None],
    abort: Callable[[str], None],
) -> None:
    """Copy ``size`` bytes part by part: ``initiate() -> upload id``, ``copy_part(upload_id, number, first,
    last) -> part ETag`` for each range, ``complete(upload_id, parts)``. On any failure the upload is aborted
    (best effort) and the failure raised."""
    upload_id = initiate()
    try:
        parts = []
        for number, (first, last) in enumerate(part_ranges(size, part_size)):
            parts.append(PartInfo(number, last - first + 1, copy_part(upload_id, number, first, last)))
        complete(upload_id, parts)
    except BaseException:
        try:
            abort(upload_id)
        except RemoteError:
            pass  # the upload is listed until the maintenance thread aborts it
        raise


def source_missing(err: NotFound, operation: str, source: str, key: str) -> NotFound:
    """The ``NotFound`` for a copy whose source does not exist (the store's 404 names the target)."""
    return NotFound(
        f"{operation} {source!r} -> {key!r} failed: the source {source!r} does not exist (deleted or moved "
        f"away; a retried move finds it gone: HEAD {key!r})",
        status=err.status,
        code=err.code or "object_not_exists",
        operation=operation,
        key=source,
        request_id=err.request_id,
    )


def source_changed(operation: str, source: str, key: str, detail: str, err: RemoteError | None = None) -> SourceChanged:
    """The ``SourceChanged`` for a copy whose source holds other content than the caller named."""
    return SourceChanged(
        f"{operation} {source!r} -> {key!r} failed: the source holds other content than expected ({detail}); "
        "nothing was written: HEAD the source again or upload the file",
        status=err.status if err is not None else 412,
        code=err.code if err is not None and err.code else "precondition_failed",
        operation=operation,
        key=source,
        request_id=err.request_id if err is not None else "",
    )


__all__ = [
    "MAX_COPY_SIZE",
    "check_copy",
    "check_limit",
    "copy_by_parts",
    "part_ranges",
    "source_changed",
    "source_missing",
]
