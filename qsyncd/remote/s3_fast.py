"""The hand-signed PutObject and ListObjectsV2 for ``S3Remote``: the requests sent per small file and per
directory, without botocore's per-call cost.

A botocore call costs about 3 ms of CPU (parameter validation, the endpoint ruleset, event hooks,
the signer, the parser): more than sending a 16 KiB file on loopback. For the one request sent once
per small file, and for the listing of each directory a first sync makes, ``S3Remote`` signs them
here with AWS Signature V4 (``UNSIGNED-PAYLOAD``; a PUT's signed ``Content-MD5`` pins its bytes) and
sends them on its own pool of kept-alive plain-HTTP/1.1 connections (``http_pool.PlainPool``: urllib3
and http.client cost more CPU than the rest of the file's upload). The signature is pinned to
botocore's own by ``tests/s3/test_s3_fast.py``; a listing is parsed into botocore's shape, keys
URL-decoded as botocore decodes them.

It is used only where the request's URL is certain without botocore's endpoint rules: a plain-HTTP
endpoint with path-style addressing (``path``, or ``auto`` with an IP-address host), and no proxy in
the environment. Everything else (HTTPS, virtual-hosted buckets, proxies) goes through botocore. The
body goes out with sendfile(2) (``SizedBody`` yielding ``Splice`` markers).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_plus
from xml.etree import ElementTree

from qsyncd.remote.body import SizedBody
from qsyncd.remote.endpoint import Endpoint
from qsyncd.remote.http_pool import Headers, PlainPool

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def usable(endpoint: Endpoint, addressing_style: str) -> bool:
    """Whether the fast path may send to this endpoint (see the module docstring)."""
    if endpoint.scheme != "http":
        return False
    if addressing_style == "virtual":
        return False
    if addressing_style == "auto":
        try:
            ipaddress.ip_address(endpoint.host.strip("[]"))
        except ValueError:
            return False
    proxies = urllib.request.getproxies()
    return not (proxies.get("http") or proxies.get("all"))


def canonical_query(params: dict[str, str]) -> str:
    """A query string as SigV4 wants it, and as it is sent: names sorted, names and values URI-encoded."""
    return "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(params.items()))


def object_path(bucket: str, key: str) -> str:
    """The path-style request path, each segment URI-encoded as S3's SigV4 wants (``/`` kept)."""
    return f"/{quote(bucket, safe='')}/{quote(key, safe='/~')}"


class SigV4:
    """AWS Signature Version 4 for S3 requests with an unsigned payload."""

    def __init__(self, access_key_id: str, secret_access_key: str, region: str) -> None:
        self._akid = access_key_id
        self._secret = secret_access_key
        self._region = region
        self._keys: dict[str, bytes] = {}  # signing key per date

    def __repr__(self) -> str:
        return f"SigV4(region={self._region!r})"

    def _key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            k = hmac.new(("AWS4" + self._secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self._region, "s3", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._keys = {day: k}
            key = k
        return key

    def sign(
        self, method: str, path: str, headers: dict[str, str], now: datetime | None = None, query: str = ""
    ) -> None:
        """Add ``x-amz-date``, ``x-amz-content-sha256`` and ``authorization`` to ``headers`` (names lower-case,
        ``host`` among them); every header but ``user-agent`` is signed. ``query``: the canonical query
        string (``canonical_query``), as sent."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = UNSIGNED_PAYLOAD
        names = sorted(n for n in headers if n not in ("user-agent", "authorization"))
        canonical = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
                ";".join(names),
                UNSIGNED_PAYLOAD,
            ]
        )
        scope = f"{stamp[:8]}/{self._region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key(stamp[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._akid}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
        )


class FastS3:
    """PutObject and ListObjectsV2, signed here and sent on a ``PlainPool`` of kept-alive connections
    (thread-safe)."""

    def __init__(
        self, endpoint: Endpoint, bucket: str, signer: SigV4, *, timeout: tuple[float, float], maxsize: int, agent: str
    ) -> None:
        self._bucket = bucket
        self._signer = signer
        self._host = endpoint.host if endpoint.port == endpoint.default_port else f"{endpoint.host}:{endpoint.port}"
        self._agent = agent
        self._pool = PlainPool(endpoint.host.strip("[]"), endpoint.port, timeout=timeout, maxsize=maxsize)

    def close(self) -> None:
        self._pool.close()

    def put(self, key: str, body: SizedBody | None, headers: dict[str, str]) -> tuple[int, Headers, bytes]:
        """Send one PutObject; returns the status, the response headers and the body (the error XML).

        ``headers`` are lower-case and include content-length, content-md5 and content-type. Raises
        urllib3's exception types (``http_pool``), OSError and ``ShortBodyError`` as they come."""
        path = object_path(self._bucket, key)
        headers["host"] = self._host
        self._signer.sign("PUT", path, headers)
        headers["user-agent"] = self._agent
        if body is not None:
            body.enable_splice()
        return self._pool.request("PUT", path, body, headers)

    def list_v2(self, prefix: str, delimiter: str, max_keys: int, token: str) -> tuple[int, Headers, bytes]:
        """Send one ListObjectsV2 (``encoding-type=url``, as botocore asks); returns what ``put`` does."""
        params = {"list-type": "2", "prefix": prefix, "max-keys": str(max_keys), "encoding-type": "url"}
        if delimiter:
            params["delimiter"] = delimiter
        if token:
            params["continuation-token"] = token
        return self._bucket_get(params)

    def list_uploads(
        self, prefix: str, max_uploads: int, key_marker: str, id_marker: str
    ) -> tuple[int, Headers, bytes]:
        """Send one ListMultipartUploads (no ``encoding-type``, as botocore sends it); returns what ``put`` does."""
        params = {"uploads": "", "prefix": prefix, "max-uploads": str(max_uploads)}
        if key_marker:
            params["key-marker"] = key_marker
        if id_marker:
            params["upload-id-marker"] = id_marker
        return self._bucket_get(params)

    def _bucket_get(self, params: dict[str, str]) -> tuple[int, Headers, bytes]:
        """A signed GET on the bucket with ``params`` as its query."""
        query = canonical_query(params)
        path = f"/{quote(self._bucket, safe='')}"
        headers = {"host": self._host}
        self._signer.sign("GET", path, headers, query=query)
        headers["user-agent"] = self._agent
        return self._pool.request("GET", f"{path}?{query}", None, headers)


def parse_list_v2(body: bytes) -> dict[str, Any]:
    """A ``ListBucketResult`` in botocore's shape (``Contents`` with ``Key``, ``Size``, ``ETag``;
    ``CommonPrefixes``; ``IsTruncated``; ``NextContinuationToken``), keys URL-decoded as botocore does
    when the store says ``EncodingType`` url. Raises ``ValueError`` for a document that is not one."""
    root = _document(body, "ListBucketResult")
    fields: dict[str, Any] = {"Contents": [], "CommonPrefixes": []}
    for el in root:
        tag = _local(el.tag)
        if tag == "Contents":
            item = {_local(c.tag): (c.text or "") for c in el}
            size = int(item.get("Size") or 0)
            fields["Contents"].append({"Key": item.get("Key", ""), "Size": size, "ETag": item.get("ETag", "")})
        elif tag == "CommonPrefixes":
            name = "".join((c.text or "") for c in el if _local(c.tag) == "Prefix")
            fields["CommonPrefixes"].append({"Prefix": name})
        else:
            fields[tag] = el.text or ""
    if fields.get("EncodingType") == "url":  # botocore's decode_list_object_v2: unquote_plus
        for item in fields["Contents"]:
            item["Key"] = unquote_plus(item["Key"])
        for item in fields["CommonPrefixes"]:
            item["Prefix"] = unquote_plus(item["Prefix"])
    fields["IsTruncated"] = str(fields.get("IsTruncated", "")).lower() == "true"
    return fields


def parse_list_uploads(body: bytes) -> dict[str, Any]:
    """A ``ListMultipartUploadsResult`` in botocore's shape (``Uploads`` with ``Key``, ``UploadId`` and
    ``Initiated`` as an aware ``datetime``; ``IsTruncated``; ``NextKeyMarker``, ``NextUploadIdMarker``).
    Raises ``ValueError`` for a document that is not one."""
    root = _document(body, "ListMultipartUploadsResult")
    fields: dict[str, Any] = {"Uploads": []}
    for el in root:
        tag = _local(el.tag)
        if tag == "Upload":
            item = {_local(c.tag): (c.text or "") for c in el}
            upload: dict[str, Any] = {"Key": item.get("Key", ""), "UploadId": item.get("UploadId", "")}
            if item.get("Initiated"):
                upload["Initiated"] = datetime.fromisoformat(item["Initiated"])
            fields["Uploads"].append(upload)
        elif len(el) == 0:
            fields[tag] = el.text or ""
    fields["IsTruncated"] = str(fields.get("IsTruncated", "")).lower() == "true"
    return fields


def _document(body: bytes, name: str) -> ElementTree.Element:
    """The root of the XML ``body``, which must be a ``<name>``; ``ValueError`` otherwise."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ValueError(f"the listing is not XML ({exc})") from None
    if _local(root.tag) != name:
        raise ValueError(f"the listing is a <{_local(root.tag)}>, not a <{name}>")
    return root


def _local(tag: str) -> str:
    """An XML tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def parse_error(body: bytes) -> tuple[str, str, str]:
    """(code, message, request id) of an S3 ``<Error>`` document; empty strings where it has none."""
    try:
        root = ElementTree.fromstring(body) if body else None
    except ElementTree.ParseError:
        root = None
    if root is None:
        return "", "", ""

    def text(tag: str) -> str:
        for el in root.iter():
            if _local(el.tag) == tag:
                return (el.text or "").strip()
        return ""

    return text("Code"), text("Message"), text("RequestId")


__all__ = [
    "FastS3",
    "SigV4",
    "canonical_query",
    "object_path",
    "parse_error",
    "parse_list_uploads",
    "parse_list_v2",
    "usable",
]
