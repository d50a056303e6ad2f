"""The QingStor header signature, for the requests qsyncd sends on its hot path.

The SDK signs every request it builds (``qingstor.sdk.request.Request.get_authorization``); building
an SDK request costs more CPU than sending a 16 KiB file (see BENCHMARKS.md), so HEAD, PutObject and
UploadMultipart are signed here instead, with the same algorithm:

    StringToSign = Verb \\n Content-MD5 \\n Content-Type \\n Date \\n
                   CanonicalizedHeaders (x-qs-*, lower-cased, sorted, "name:value\\n")
                   CanonicalizedResource (/bucket/quoted-key [?sorted sub-resources])
    Authorization: QS <access_key_id>:Base64(HMAC-SHA256(secret, StringToSign))

Paths and query values are quoted exactly as the SDK quotes them (``urllib.parse.quote``, "/" kept),
so the signed resource is the path on the wire. ``tests/remote/test_remote_signature.py`` pins this
module to the SDK's own output for the same request.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable, Mapping
from hashlib import sha256
from urllib.parse import quote

# Query parameters that are part of the signed resource (the SDK's ``is_sub_resource`` list, plus
# ``versioning``, ``version_id`` and ``versions``, which Go SDK v4 signs and 2.6.0 has no call for).
SUB_RESOURCES = frozenset(
    {
        "acl",
        "cors",
        "delete",
        "mirror",
        "part_number",
        "policy",
        "stats",
        "upload_id",
        "uploads",
        "image",
        "notification",
        "response-expires",
        "response-cache-control",
        "response-content-type",
        "response-content-language",
        "response-content-encoding",
        "response-content-disposition",
        "lifecycle",
        "logging",
        "replication",
        "append",
        "position",
        "cname",
        "versioning",
        "version_id",
        "versions",
    }
)


def object_path(bucket: str, key: str) -> str:
    """``/bucket/key`` as sent and signed (the SDK quotes both with ``quote``, keeping "/")."""
    return f"/{quote(bucket)}/{quote(key)}"


def bucket_path(bucket: str) -> str:
    """``/bucket`` as sent and signed."""
    return f"/{quote(bucket)}"


def query_string(params: Iterable[tuple[str, str]]) -> str:
    """``k=v&...`` sorted, values quoted as the SDK quotes them; an empty value is the bare name
    (``?versioning``), as the SDK signs a sub-resource without a value."""
    return "&".join(sorted(f"{k}={quote(v)}" if v else k for k, v in params))


def canonical_resource(path: str, query: str) -> str:
    """The path plus the sorted sub-resource parameters of ``query``."""
    if not query:
        return path
    subs = sorted(item for item in query.split("&") if item.split("=", 1)[0] in SUB_RESOURCES)
    return f"{path}?{'&'.join(subs)}" if subs else path


def string_to_sign(method: str, headers: Mapping[str, str], resource: str) -> str:
    """The string the signature covers. ``headers`` uses lower-case names."""
    qs_headers = sorted((name, value.strip()) for name, value in headers.items() if name.startswith("x-qs-"))
    canonical = "".join(f"{name}:{value}\n" for name, value in qs_headers)
    date = "" if "x-qs-date" in headers else headers.get("date", "")
    return (
        f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n{date}\n{canonical}{resource}"
    )


class Signer:
    """Signs requests for one access key; the HMAC key schedule is computed once."""

    def __init__(self, access_key_id: str, secret_access_key: str) -> None:
        self._access_key_id = access_key_id
        self._mac = hmac.new(secret_access_key.encode("utf-8"), digestmod=sha256)

    def __repr__(self) -> str:
        return f"Signer(access_key_id={self._access_key_id!r})"

    def authorization(self, method: str, headers: Mapping[str, str], resource: str) -> str:
        """The ``Authorization`` header value for a request with these (lower-case) headers."""
        mac = self._mac.copy()
        mac.update(string_to_sign(method, headers, resource).encode("utf-8"))
        return f"QS {self._access_key_id}:{base64.b64encode(mac.digest()).decode('ascii')}"


__all__ = [
    "SUB_RESOURCES",
    "Signer",
    "bucket_path",
    "canonical_resource",
    "object_path",
    "query_string",
    "string_to_sign",
]
