"""S3 object listings for ``S3Remote.iter_objects``: ListObjectsV2 page by page, ListObjects (V1) where V2 is missing.

V2 goes on with the opaque ``NextContinuationToken``, so no key is ever sent back as a marker. V1
would send the last key as ``marker``, and SeaweedFS 4.48 mishandles some of those: it decodes a
marker that holds ``%XX`` once more (``a%2Bb`` is read as ``a+b``, so the keys between the two are
left out of the next page, silently) and sends ``NextMarker`` not URL-encoded (botocore then decodes it
into another key). V1 is used only by a store that refuses V2 (501 / ``NotImplemented``) or answers
it as V1 (a truncated page without a token); its marker is then the page's own last name, and a
truncated page with nothing in it raises ``TransientError`` (``listing_stalled``) rather than end the
listing short: a listing that ends early makes the periodic verify call the rest deleted.

Each page is sorted and keys at or before the last one yielded are dropped. A multipart entry's ETag
says nothing about the bytes (``s3_meta.listed_md5``): it is completed with a HEAD when the caller
reaches it (see ``s3.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

from qsyncd.errors import RemoteError, TransientError
from qsyncd.remote.base import ObjectInfo
from qsyncd.remote.qingstor_checks import normalise_etag
from qsyncd.remote.s3_meta import listed_md5

Call = Callable[..., dict[str, Any]]  # _Botocore.call(operation, key, **params)
Head = Callable[[str], ObjectInfo | None]


class S3Listing:
    """The listings of one ``S3Remote``; remembers that its store has no ListObjectsV2."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.v1 = False  # set when the store refused or ignored ListObjectsV2

    def objects(self, prefix: str, delimiter: str, page_size: int, head: Head) -> Iterator[ObjectInfo]:
        """The objects under ``prefix`` in key order, one page at a time, with HEAD's ``etag``."""
        yielded = ""  # the last key yielded
        params: dict[str, Any] = {"Prefix": prefix, "Delimiter": delimiter, "MaxKeys": page_size}
        token = ""
        while not self.v1:
            try:
                reply = self._call("ListObjectsV2", prefix, **params, **({"ContinuationToken": token} if token else {}))
            except RemoteError as err:
                if token or not (err.status == 501 or err.code == "NotImplemented"):
                    raise
                self.v1 = True
                break
            last, yielded = yield from _page(reply, yielded, head)
            if not reply.get("IsTruncated"):
                return
            nxt = str(reply.get("NextContinuationToken") or "")
            if not nxt:  # answered as V1 (the store ignores list-type=2): go on as V1 after this page
                self.v1 = True
                yield from self._v1(params, last, yielded, head)
                return
            if nxt == token:
                raise _stalled(prefix, f"continuation token {token!r}")
            token = nxt
        yield from self._v1(params, "", yielded, head)

    def _v1(self, params: dict[str, Any], marker: str, yielded: str, head: Head) -> Iterator[ObjectInfo]:
        while True:
            reply = self._call("ListObjects", params["Prefix"], **params, Marker=marker)
            last, yielded = yield from _page(reply, yielded, head)
            if not reply.get("IsTruncated"):
                return
            if not last or last <= marker:  # "more", and nothing to go on from
                raise _stalled(params["Prefix"], f"marker {marker!r}")
            marker = last  # the page's own last name: NextMarker may come back decoded (see above)


def _page(reply: dict[str, Any], after: str, head: Head) -> Generator[ObjectInfo, None, tuple[str, str]]:
    """Yield a listing page's objects past ``after`` in key order, a multipart entry's ETag replaced by
    what HEAD reports; return the page's last name (key or common prefix, "" if empty) and the last key
    yielded."""
    page = sorted(
        (
            ObjectInfo(str(i["Key"]), int(i.get("Size") or 0), normalise_etag(i.get("ETag")))
            for i in reply.get("Contents") or []
        ),
        key=lambda o: o.key,
    )
    prefixes = [str(p.get("Prefix") or "") for p in reply.get("CommonPrefixes") or []]
    for info in page:
        if info.key <= after:
            continue
        if listed_md5(info.etag) is None:  # multipart: the MD5 is in the metadata, which HEAD tells
            headed = head(info.key)
            if headed is None:
                continue  # deleted since the listing
            info = ObjectInfo(info.key, headed.size, headed.etag)
        after = info.key
        yield info
    return max([o.key for o in page[-1:]] + prefixes, default=""), after


def _stalled(prefix: str, where: str) -> TransientError:
    return TransientError(
        f"listing {prefix!r}: after {where} the store answered a page that brings nothing and says there is "
        "more; the listing cannot go on past it (ending it there would leave objects out)",
        code="listing_stalled",
        operation="ListObjects",
        key=prefix,
    )
