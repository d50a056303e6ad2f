"""QingStor request signatures as pure functions (header and query-string forms).

Used by the emulator to verify requests and by tests to build or check signed requests.
Everything here works on the request *as it appeared on the wire*: the raw (percent-encoded)
path and the raw query string, because both SDKs sign the path exactly as they send it.

Tolerated client differences (see the reference, section 2):

- ``k=`` (Go sends ``?uploads=``) is canonicalised like bare ``k``.
- Python signs sub-resource values in their encoded form, Go decoded; :func:`candidate_resources`
  yields both so a verifier can accept either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import unquote, unquote_plus

# Query parameters that are part of the signed resource (docs `practices/signature.md`, PY request.py;
# versioning, version_id and versions from Go SDK v4 `request/signer/qingstor.go`).
SUB_RESOURCES: frozenset[str] = frozenset(
    {
        "acl",
        "append",
        "cors",
        "cname",
        "delete",
        "image",
        "logging",
        "lifecycle",
        "mirror",
        "notification",
        "policy",
        "position",
        "part_number",
        "replication",
        "stats",
        "uploads",
        "upload_id",
        "versioning",
        "version_id",
        "versions",
        "response-expires",
        "response-cache-control",
        "response-content-type",
        "response-content-language",
        "response-content-encoding",
        "response-content-disposition",
    }
)

HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]]


def _items(headers: HeaderItems) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def header_value(headers: HeaderItems, name: str) -> str:
    """Return the first value of header ``name`` (case-insensitive), or ``""``."""
    lname = name.lower()
    for k, v in _items(headers):
        if k.lower() == lname:
            return v
    return ""


def canonical_headers(headers: HeaderItems) -> str:
    """The CanonicalizedHeaders block: every ``x-qs-*`` header as ``name:value\\n``, sorted by name."""
    entries: dict[str, str] = {}
    for k, v in _items(headers):
        name = k.strip().lower()
        if name.startswith("x-qs-"):
            entries.setdefault(name, v.strip())
    return "".join(f"{name}:{entries[name]}\n" for name in sorted(entries))


def _sub_resource_pairs(raw_query: str, decode: bool) -> list[str]:
    pairs: list[str] = []
    if not raw_query:
        return pairs
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _sep, value = item.partition("=")
        if key not in SUB_RESOURCES:
            continue
        if decode:
            value = unquote_plus(value)
        pairs.append(f"{key}={value}" if value else key)
    return sorted(pairs)


def canonical_resource(raw_path: str, raw_query: str = "", *, decode_values: bool = False) -> str:
    """The CanonicalizedResource: the raw path plus ``?`` and the sorted sub-resources, if any."""
    pairs = _sub_resource_pairs(raw_query, decode_values)
    return raw_path + ("?" + "&".join(pairs) if pairs else "")


def candidate_resources(raw_path: str, raw_query: str = "") -> Iterator[str]:
    """Yield the canonical resource as Python signs it (encoded values), then as Go does (decoded)."""
    first = canonical_resource(raw_path, raw_query)
    yield first
    second = canonical_resource(raw_path, raw_query, decode_values=True)
    if second != first:
        yield second


def string_to_sign(
    method: str,
    content_md5: str,
    content_type: str,
    date: str,
    headers: HeaderItems,
    resource: str,
) -> str:
    """Assemble the string to sign from its parts (``date`` is the Date line: a date or ``expires``)."""
    return f"{method}\n{content_md5}\n{content_type}\n{date}\n{canonical_headers(headers)}{resource}"


def request_string_to_sign(
    method: str, raw_path: str, raw_query: str, headers: HeaderItems, *, decode_values: bool = False
) -> str:
    """The string to sign for header authentication of a request as received."""
    date = "" if header_value(headers, "x-qs-date") else header_value(headers, "date")
    return string_to_sign(
        method,
        header_value(headers, "content-md5"),
        header_value(headers, "content-type"),
        date,
        headers,
        canonical_resource(raw_path, raw_query, decode_values=decode_values),
    )


def sign(secret_access_key: str, text: str) -> str:
    """Base64(HMAC-SHA256(secret, text))."""
    digest = hmac.new(secret_access_key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def header_signature(
    secret_access_key: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: HeaderItems,
    *,
    decode_values: bool = False,
) -> str:
    """The signature that goes into ``Authorization: QS <akid>:<signature>``."""
    return sign(
        secret_access_key,
        request_string_to_sign(method, raw_path, raw_query, headers, decode_values=decode_values),
    )


def authorization_header(
    access_key_id: str,
    secret_access_key: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: HeaderItems,
) -> str:
    """The full ``Authorization`` header value for a request (tests use it with raw http.client)."""
    sig = header_signature(secret_access_key, method, raw_path, raw_query, headers)
    return f"QS {access_key_id}:{sig}"


def query_signature(
    secret_access_key: str,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: HeaderItems,
    expires: int,
    *,
    content_type: str = "",
    decode_values: bool = False,
) -> str:
    """The (un-URL-encoded) ``signature`` query parameter: ``expires`` replaces the Date line.

    Python blanks the Content-Type line (the default here); Go uses the Content-Type header if set.
    """
    return sign(
        secret_access_key,
        string_to_sign(
            method,
            header_value(headers, "content-md5"),
            content_type,
            str(expires),
            headers,
            canonical_resource(raw_path, raw_query, decode_values=decode_values),
        ),
    )


def verify(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(expected.encode("ascii", "replace"), given.encode("ascii", "replace"))


def strip_query_auth(raw_query: str) -> str:
    """Drop ``access_key_id``, ``expires`` and ``signature`` from a raw query string."""
    kept = [
        p for p in raw_query.split("&") if p and p.partition("=")[0] not in ("access_key_id", "expires", "signature")
    ]
    return "&".join(kept)


def parse_query(raw_query: str) -> dict[str, str]:
    """Decode a raw query string into a dict (first value wins; ``+`` means space, as Go encodes)."""
    out: dict[str, str] = {}
    for item in raw_query.split("&"):
        if not item:
            continue
        key, _, value = item.partition("=")
        out.setdefault(unquote_plus(key), unquote_plus(value))
    return out


def unquote_path(raw: str) -> str:
    """Percent-decode a path segment strictly as UTF-8 (raises ``UnicodeDecodeError`` on bad bytes)."""
    return unquote(raw, encoding="utf-8", errors="strict")
