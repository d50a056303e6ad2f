"""Translate QingStor responses and transport exceptions into ``qsyncd.errors`` types.

Every message says what happened and what to do, names the operation and key, and never contains
a credential or a signature (requests' exception texts carry only host, port and URL path, and
this module never includes request headers).
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from typing import Any

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from qsyncd.errors import (
    AuthError,
    BadRequest,
    BodyMismatch,
    BucketMissing,
    CredentialsRejected,
    NotFound,
    RemoteError,
    SourceChanged,
    TransientError,
    Unreachable,
)

# Codes that refuse our credentials or clock on every request, not this one request: the daemon
# pauses all uploads instead of failing files one by one (``CredentialsRejected``).
CREDENTIAL_CODES = frozenset({"invalid_access_key_id", "signature_not_matched", "request_expired"})

# What each QingStor error code means for the user, and what to do about it.
_AUTH_ADVICE = {
    "invalid_access_key_id": "the access key id is not known to QingStor: check access_key_id",
    "signature_not_matched": "the request signature does not match: check secret_access_key",
    "request_expired": ("the request date was rejected: the system clock is off by more than 15 minutes: check NTP"),
    "permission_denied": (
        "permission denied: the access key may not perform this operation on this bucket; "
        "check the key's bucket policy/ACL"
    ),
}

# Codes that say the body did not match its Content-MD5 or Content-Length: nothing was stored, and the
# uploader sends the file again once it holds still (``BodyMismatch``).
BODY_MISMATCH_CODES = frozenset({"bad_digest", "incomplete_body"})

_BAD_REQUEST_ADVICE = {
    "bad_digest": (
        "the body does not match its Content-MD5: the file changed while it was read or was corrupted in transit"
    ),
    "incomplete_body": (
        "the server received fewer bytes than Content-Length: the file shrank while it was read or the connection broke"
    ),
    "entity_too_small": "a part other than the last is smaller than 4 MiB: use larger parts",
    "entity_too_large": "the object or part is larger than 5 GiB: use multipart with smaller parts",
    "invalid_object_name": "the key is not a valid object name (1..1023 bytes of UTF-8)",
    "metadata_too_large": "the x-qs-meta-* metadata exceeds 2 KB or a key is too long",
    "max_parts_exceeded": "too many parts: use a larger part size",
}


def _where(operation: str, key: str) -> str:
    return f"{operation} {key!r}" if key else operation


def status_error(
    *,
    status: int,
    code: str,
    message: str,
    request_id: str,
    operation: str,
    key: str,
    endpoint: str,
    bucket: str,
    zone: str,
) -> RemoteError:
    """Build the error for a response whose status is not the operation's success status."""
    where = _where(operation, key)
    ref = f" (status {status}, code {code or 'none'}, request id {request_id or 'none'})"
    server = f": {message}" if message else ""
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "operation": operation,
        "key": key,
        "request_id": request_id,
    }
    if status == 404:
        if code == "bucket_not_exists" or (not key and not code):
            text = f"bucket {bucket!r} does not exist in zone {zone!r} at {endpoint}: create it or fix bucket/zone"
            return BucketMissing(f"{where} failed: {text}{ref}", **kwargs)
        if code == "upload_not_exists":
            text = "the multipart upload does not exist (completed, aborted or expired): start a new upload"
        else:
            text = f"{key!r} does not exist in bucket {bucket!r}"
        return NotFound(f"{where} failed: {text}{ref}", **kwargs)
    if status in (401, 403):
        advice = _AUTH_ADVICE.get(code)
        if advice is None:
            advice = (
                "authentication failed: check access_key_id and secret_access_key"
                if status == 401
                else "access denied: check the key's permissions on the bucket and the system clock"
            )
        # 401 carries no code on a HEAD (no body); any 401 means the credentials themselves
        if status == 401 or code in CREDENTIAL_CODES:
            return CredentialsRejected(f"{where} failed: {advice}{server}{ref}", **kwargs)
        return AuthError(f"{where} failed: {advice}{server}{ref}", **kwargs)
    if status == 412:  # only copy and move send conditions: the source is no longer what the caller named
        return SourceChanged(
            f"{where} failed: the copy source no longer has the expected ETag{server}; nothing was written{ref}",
            **kwargs,
        )
    if status in (408, 429):  # request timeout / rate limited: waiting helps, so retry later
        return TransientError(
            f"{where} failed: the server asked to slow down or timed out the request{server}; it will be retried{ref}",
            **kwargs,
        )
    if 400 <= status < 500:
        advice = _BAD_REQUEST_ADVICE.get(code, "the server rejected the request; retrying cannot help")
        if code in BODY_MISMATCH_CODES:
            return BodyMismatch(f"{where} failed: {advice}{server}{ref}", **kwargs)
        return BadRequest(f"{where} failed: {advice}{server}{ref}", **kwargs)
    if status >= 500:
        return TransientError(
            f"{where} failed: the server had a temporary problem{server}; it will be retried{ref}",
            **kwargs,
        )
    return TransientError(
        f"{where} failed: unexpected status {status} from {endpoint} (not the operation's success "
        f"status); it will be retried{server}{ref}",
        **kwargs,
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Walk an exception, its args, causes and contexts (requests/urllib3 nest them in args)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        for nxt in (cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)


def transport_error(exc: BaseException, *, operation: str, key: str, endpoint: str) -> RemoteError:
    """Translate a requests/urllib3/socket exception raised while sending or receiving."""
    where = _where(operation, key)
    chain = list(_chain(exc))
    kwargs: dict[str, Any] = {"operation": operation, "key": key}

    def has(*types: type[BaseException]) -> bool:
        return any(isinstance(e, types) for e in chain)

    if has(NameResolutionError):
        return Unreachable(
            f"{where} failed: cannot reach {endpoint}: the host name does not resolve; check endpoint, zone and "
            'DNS (an emulator or an endpoint that serves one zone needs zone = "")',
            code="name_resolution_error",
            **kwargs,
        )
    if isinstance(exc, requests.exceptions.SSLError) or has(Urllib3SSLError, ssl.SSLError):
        return Unreachable(
            f"{where} failed: cannot reach {endpoint}: TLS handshake failed ({_brief(exc)}); "
            "check the endpoint's certificate and the system CA store",
            code="tls_error",
            **kwargs,
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout) or (has(ConnectTimeoutError) and not has(ReadTimeoutError)):
        if has(NewConnectionError) and not has(TimeoutError):
            return Unreachable(
                f"{where} failed: cannot reach {endpoint}: {_brief(exc)}; "
                "check the endpoint, the network and that the service is up",
                code="connection_error",
                **kwargs,
            )
        return Unreachable(
            f"{where} failed: cannot reach {endpoint}: connect timed out; check the endpoint, firewall and network",
            code="connect_timeout",
            **kwargs,
        )
    if isinstance(exc, requests.exceptions.ReadTimeout) or has(ReadTimeoutError):
        return TransientError(
            f"{where} failed: {endpoint} did not answer within the read timeout; it will be retried",
            code="read_timeout",
            **kwargs,
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return TransientError(
            f"{where} failed: the response from {endpoint} was cut off; it will be retried",
            code="incomplete_response",
            **kwargs,
        )
    if isinstance(exc, (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL)):
        return BadRequest(
            f"{where} failed: the request could not be built ({_brief(exc)})",
            code="invalid_request",
            **kwargs,
        )
    if has(ProtocolError) and has(TimeoutError):  # the socket timed out while the request was going out
        return TransientError(
            f"{where} failed: {endpoint} stopped taking the request body for longer than the read "
            "timeout; it will be retried",
            code="send_timeout",
            **kwargs,
        )
    if has(ProtocolError, ConnectionError, TimeoutError) or isinstance(exc, requests.exceptions.ConnectionError):
        return TransientError(
            f"{where} failed: the connection to {endpoint} broke mid-request ({_brief(exc)}); it will be retried",
            code="connection_reset",
            **kwargs,
        )
    return TransientError(
        f"{where} failed: {type(exc).__name__} talking to {endpoint} ({_brief(exc)}); it will be retried",
        code="transport_error",
        **kwargs,
    )


def _brief(exc: BaseException) -> str:
    """The innermost useful reason, e.g. ``[Errno 111] Connection refused``."""
    for e in reversed(list(_chain(exc))):
        if isinstance(e, OSError) and e.strerror:
            return f"[Errno {e.errno}] {e.strerror}" if e.errno else e.strerror
    for e in reversed(list(_chain(exc))):
        if isinstance(e, http.client.HTTPException) and str(e):
            return str(e)[:200]
    return type(exc).__name__
