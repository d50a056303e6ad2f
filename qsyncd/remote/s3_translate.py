"""Translate S3 error responses and botocore transport failures into ``qsyncd.errors`` types.

The S3 twin of ``translate.py``: one table of S3 error codes (what each means for the user, what to
do, and which ``qsyncd.errors`` class it is), and one function for failures where no response came
back. It does not import botocore (``s3.py`` is the only module that does): a botocore exception is
recognised by the names of its classes, which are botocore's public API.

Every message names the operation, the key and the endpoint, and never a credential or a signature:
it is built from the status, the S3 error code and message and the request id, never from request
headers or from botocore's exception texts (which can carry the request URL of a presigned request).

HEAD responses carry no body and so no error code; ``s3.py`` asks a GET for the code when a HEAD is
refused (``diagnose``), as ``qingstor.py`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from qsyncd.errors import (
    AuthError,
    BadRequest,
    BodyMismatch,
    BucketMissing,
    CredentialsRejected,
    NotFound,
    RemoteError,
    SourceChanged,
    StoreRefused,
    TransientError,
    Unreachable,
)


@dataclass(frozen=True)
class _Rule:
    """What one S3 error code is: the qsyncd error class, the qsyncd code and the advice."""

    kind: type[RemoteError]
    code: str  # qsyncd's own code (the QingStor one where there is one): what events and counters show
    advice: str


# S3 error codes (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html) as qsyncd acts on them.
_RULES: dict[str, _Rule] = {
    "NoSuchBucket": _Rule(BucketMissing, "bucket_not_exists", "the bucket does not exist: create it or fix bucket"),
    "NoSuchKey": _Rule(NotFound, "object_not_exists", "the object does not exist"),
    "NoSuchUpload": _Rule(
        NotFound,
        "upload_not_exists",
        "the multipart upload does not exist (completed, aborted or expired): start a new upload",
    ),
    "InvalidAccessKeyId": _Rule(
        CredentialsRejected,
        "invalid_access_key_id",
        "the access key id is not known to the store: check access_key_id",
    ),
    "SignatureDoesNotMatch": _Rule(
        CredentialsRejected,
        "signature_not_matched",
        "the request signature does not match: check the secret access key",
    ),
    "RequestTimeTooSkewed": _Rule(
        CredentialsRejected,
        "request_expired",
        "the request date was rejected: the system clock is off by more than 15 minutes: check NTP",
    ),
    "AuthorizationHeaderMalformed": _Rule(
        CredentialsRejected,
        "authorization_header_malformed",
        "the store refused the signature's scope: check region (it must be the bucket's region)",
    ),
    "InvalidToken": _Rule(CredentialsRejected, "invalid_token", "the store refused the credentials: check them"),
    "ExpiredToken": _Rule(CredentialsRejected, "expired_token", "the credentials have expired: renew them"),
    "AccountProblem": _Rule(
        CredentialsRejected, "account_problem", "the store refuses this account: check it with the provider"
    ),
    "AccessDenied": _Rule(
        AuthError,
        "permission_denied",
        "access denied: the key may not perform this operation on this bucket; check its policy",
    ),
    "AllAccessDisabled": _Rule(AuthError, "permission_denied", "all access to this object has been disabled"),
    "PermanentRedirect": _Rule(
        StoreRefused,
        "wrong_endpoint",
        "the bucket must be addressed through another endpoint: set endpoint and region to the bucket's region",
    ),
    "IllegalLocationConstraintException": _Rule(
        StoreRefused, "wrong_endpoint", "the bucket is in another region: set region to the bucket's region"
    ),
    "BadDigest": _Rule(
        BodyMismatch,
        "bad_digest",
        "the body does not match its Content-MD5: the file changed while it was read or was corrupted in transit",
    ),
    "InvalidDigest": _Rule(BadRequest, "invalid_digest", "the Content-MD5 header is not a valid MD5"),
    "IncompleteBody": _Rule(
        BodyMismatch,
        "incomplete_body",
        "the server received fewer bytes than Content-Length: the file shrank while it was read or the "
        "connection broke",
    ),
    "EntityTooSmall": _Rule(
        BadRequest, "entity_too_small", "a part other than the last is smaller than 5 MiB: use larger parts"
    ),
    "EntityTooLarge": _Rule(
        BadRequest, "entity_too_large", "the object or part is larger than 5 GiB: use multipart with smaller parts"
    ),
    "KeyTooLongError": _Rule(BadRequest, "invalid_object_name", "the key is longer than 1024 bytes"),
    "MetadataTooLarge": _Rule(BadRequest, "metadata_too_large", "the x-amz-meta-* metadata exceeds 2 KB"),
    "PreconditionFailed": _Rule(  # only copies send conditions (CopySourceIfMatch)
        SourceChanged,
        "precondition_failed",
        "the copy source no longer has the expected ETag; nothing was written",
    ),
    "InvalidPart": _Rule(
        BadRequest, "invalid_part", "a part to complete is not stored or its ETag differs: start a new upload"
    ),
    "InvalidPartOrder": _Rule(BadRequest, "invalid_part_order", "the parts to complete are not in ascending order"),
    "InvalidStorageClass": _Rule(
        BadRequest, "invalid_storage_class", "the store does not know this storage class: fix storage_class"
    ),
    "InvalidBucketName": _Rule(
        StoreRefused, "invalid_bucket_name", "the bucket name is not valid (3-63 characters): fix bucket"
    ),
    "SlowDown": _Rule(TransientError, "slow_down", "the store asked to slow down; it will be retried"),
    "RequestTimeout": _Rule(
        TransientError, "request_timeout", "the store timed out waiting for the body; it will be retried"
    ),
    "InternalError": _Rule(TransientError, "internal_error", "the store had an internal error; it will be retried"),
    "ServiceUnavailable": _Rule(
        TransientError, "service_unavailable", "the store is unavailable for now; it will be retried"
    ),
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
    region: str,
) -> RemoteError:
    """Build the error for an S3 error response (``code`` may be empty, e.g. for a HEAD)."""
    where = _where(operation, key)
    ref = f" (status {status}, code {code or 'none'}, request id {request_id or 'none'})"
    server = f": {message}" if message and message != code else ""
    rule = _RULES.get(code)
    if rule is None and status == 404 and not key:
        rule = _RULES["NoSuchBucket"]

    def make(kind: type[RemoteError], text: str, qcode: str) -> RemoteError:
        return kind(
            f"{where} failed: {text}{ref}",
            status=status,
            code=qcode,
            operation=operation,
            key=key,
            request_id=request_id,
        )

    if rule is not None:
        advice = rule.advice
        if rule.kind is BucketMissing or rule.code == "wrong_endpoint":
            advice = f"{advice} (bucket {bucket!r}, region {region!r} at {endpoint})"
        return make(rule.kind, f"{advice}{server}", rule.code)
    s3code = code or ""
    if status == 404:
        return make(NotFound, f"{key!r} does not exist in bucket {bucket!r}{server}", s3code)
    if status in (401, 403):
        advice = "access denied: check the key's permissions on the bucket and the system clock"
        return make(AuthError, f"{advice}{server}", s3code or "permission_denied")
    if status in (408, 429) or status >= 500:
        advice = "the store had a temporary problem or asked to slow down"
        return make(TransientError, f"{advice}{server}; it will be retried", s3code or f"http_{status}")
    if 400 <= status < 500:
        advice = "the store rejected the request; retrying cannot help"
        return make(BadRequest, f"{advice}{server}", s3code or f"http_{status}")
    advice = f"unexpected status {status} from {endpoint}; it will be retried"
    return make(TransientError, f"{advice}{server}", s3code or f"http_{status}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """An exception, the ones it wraps (botocore keeps the urllib3 one in ``kwargs['error']``), its
    causes and contexts."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        wrapped = getattr(cur, "kwargs", None)
        inner = wrapped.get("error") if isinstance(wrapped, dict) else None
        for nxt in (cur.__cause__, cur.__context__, inner, getattr(cur, "reason", None), *cur.args):
            if isinstance(nxt, BaseException):
                stack.append(nxt)


def _names(chain: list[BaseException]) -> set[str]:
    return {cls.__name__ for e in chain for cls in type(e).__mro__}


def transport_error(exc: BaseException, *, operation: str, key: str, endpoint: str) -> RemoteError:
    """Translate a botocore/urllib3/socket failure where no S3 response arrived."""
    where = _where(operation, key)
    chain = list(_chain(exc))
    names = _names(chain)
    if "NameResolutionError" in names or "gaierror" in names:
        return Unreachable(
            f"{where} failed: cannot reach {endpoint}: the host name does not resolve; check endpoint and DNS",
            code="name_resolution_error",
            operation=operation,
            key=key,
        )
    if "SSLError" in names or "SSLCertVerificationError" in names:
        return Unreachable(
            f"{where} failed: cannot reach {endpoint}: TLS handshake failed ({_brief(chain)}); "
            "check the endpoint's certificate and the system CA store",
            code="tls_error",
            operation=operation,
            key=key,
        )
    if "ProxyConnectionError" in names:
        return Unreachable(
            f"{where} failed: cannot reach {endpoint} through the proxy ({_brief(chain)}); check HTTPS_PROXY",
            code="proxy_error",
            operation=operation,
            key=key,
        )
    if "NewConnectionError" in names and "ConnectTimeoutError" not in {type(e).__name__ for e in chain}:
        return Unreachable(  # urllib3's NewConnectionError is a ConnectTimeoutError subclass: a refusal
            f"{where} failed: cannot reach {endpoint}: {_brief(chain)}; "
            "check the endpoint, the network and that the service is up",
            code="connection_error",
            operation=operation,
            key=key,
        )
    if "ConnectTimeoutError" in names:
        return Unreachable(
            f"{where} failed: cannot reach {endpoint}: connect timed out; check the endpoint, firewall and network",
            code="connect_timeout",
            operation=operation,
            key=key,
        )
    if "EndpointConnectionError" in names:
        return Unreachable(
            f"{where} failed: cannot reach {endpoint}: {_brief(chain)}; "
            "check the endpoint, the network and that the service is up",
            code="connection_error",
            operation=operation,
            key=key,
        )
    if "ReadTimeoutError" in names:
        return TransientError(
            f"{where} failed: {endpoint} did not answer within the read timeout; it will be retried",
            code="read_timeout",
            operation=operation,
            key=key,
        )
    if "ParamValidationError" in names:
        return BadRequest(
            f"{where} failed: the request could not be built", code="invalid_request", operation=operation, key=key
        )
    return TransientError(
        f"{where} failed: the connection to {endpoint} broke mid-request ({_brief(chain)}); it will be retried",
        code="connection_reset",
        operation=operation,
        key=key,
    )


def _brief(chain: list[BaseException]) -> str:
    """The innermost useful reason, e.g. ``[Errno 111] Connection refused`` (never a URL)."""
    for e in reversed(chain):
        if isinstance(e, OSError) and e.strerror:
            return f"[Errno {e.errno}] {e.strerror}" if e.errno else e.strerror
    return type(chain[-1]).__name__ if chain else "error"


__all__ = ["status_error", "transport_error"]
