"""``S3Remote``'s requests by the fast way (``s3_fast``: signed here, sent on kept-alive plain-HTTP
connections): a PutObject and the listings, their replies in botocore's shape and their errors worded as
botocore's would be (``s3_translate``), so a caller cannot tell which way a request went."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from urllib3.exceptions import HTTPError as Urllib3HTTPError

from qsyncd.errors import RemoteError, TransientError
from qsyncd.remote import s3_fast
from qsyncd.remote.base import Body
from qsyncd.remote.body import ShortBodyError, SizedBody, short_body_in, shrank
from qsyncd.remote.qingstor_checks import normalise_etag
from qsyncd.remote.s3_translate import status_error, transport_error


def put_fast(
    fast: s3_fast.FastS3,
    key: str,
    body: Body,
    size: int,
    md5_b64: str,
    params: Mapping[str, Any],
    endpoint: str,
    bucket: str,
    region: str,
) -> str:
    """PutObject through ``s3_fast`` (signed here, sent on a plain-HTTP pool)."""
    headers = {"content-length": str(size), "content-md5": md5_b64, "content-type": params["ContentType"]}
    for name, value in params.get("Metadata", {}).items():
        headers[f"x-amz-meta-{name}"] = value
    if "StorageClass" in params:
        headers["x-amz-storage-class"] = params["StorageClass"]
    try:
        status, reply, data = fast.put(key, SizedBody(body, size) if size else None, headers)
    except ShortBodyError as exc:
        raise shrank("PutObject", key, exc) from None
    except (Urllib3HTTPError, OSError) as exc:
        short = short_body_in(exc)
        if short is not None:
            raise shrank("PutObject", key, short) from None
        raise transport_error(exc, operation="PutObject", key=key, endpoint=endpoint) from None
    if status == 200:
        return normalise_etag(reply.get("ETag")) or base64.b64decode(md5_b64).hex()
    raise fast_error(status, reply, data, "PutObject", key, endpoint, bucket, region)


def fast_error(
    status: int,
    reply: Mapping[str, str],
    data: bytes,
    operation: str,
    key: str,
    endpoint: str,
    bucket: str,
    region: str,
) -> RemoteError:
    """The error for a fast-path answer other than 200, worded as botocore's would be (``status_error``)."""
    code, message, request_id = s3_fast.parse_error(data)
    return status_error(
        status=status,
        code=code,
        message=message,
        request_id=request_id or str(reply.get("x-amz-request-id", "")),
        operation=operation,
        key=key,
        endpoint=endpoint,
        bucket=bucket,
        region=region,
    )


def list_fast(
    send: Callable[[], tuple[int, Any, bytes]],
    parse: Callable[[bytes], dict[str, Any]],
    operation: str,
    prefix: str,
    endpoint: str,
    bucket: str,
    region: str,
) -> dict[str, Any]:
    """One listing request through ``s3_fast`` (``send``); the reply in botocore's shape (``parse``)."""
    try:
        status, reply, data = send()
    except (Urllib3HTTPError, OSError) as exc:
        raise transport_error(exc, operation=operation, key=prefix, endpoint=endpoint) from None
    if status == 200:
        try:
            return parse(data)
        except ValueError as exc:
            raise TransientError(
                f"{operation} {prefix!r} failed: {endpoint} answered with a listing qsyncd cannot read "
                f"({exc}); it will be retried",
                code="bad_listing",
                operation=operation,
                key=prefix,
            ) from None
    raise fast_error(status, reply, data, operation, prefix, endpoint, bucket, region)


__all__ = ["fast_error", "list_fast", "put_fast"]
