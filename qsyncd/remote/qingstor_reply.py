"""What a QingStor response means, for both transports: the parsed reply, the success check, and the errors.

A reply whose status is the operation's success status is returned; every other status becomes a
``qsyncd.errors`` type through ``translate.status_error`` (QingStor's codes live there). A HEAD
401/403 has no body and therefore no error code; the ``diagnose`` callback (a ``ListObjects limit=1``
sent by the SDK transport) learns it so the message can say which credential is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from qsyncd.errors import RemoteError, TransientError
from qsyncd.remote.translate import status_error, transport_error

log = structlog.get_logger("qsyncd.remote")

MissingOk = Callable[[int, str], bool]  # (status, code) -> this error means "gone", return None


@dataclass(frozen=True)
class Reply:
    """What a successful (or tolerated) response carried: status, JSON fields and headers."""

    status: int
    data: Mapping[str, Any]
    headers: Mapping[str, str]

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the JSON body."""
        return self.data.get(name, default)


def invalid_response(operation: str, key: str, reply: Reply, detail: str) -> TransientError:
    """The error for a success status whose body or headers are not what the API documents."""
    return TransientError(
        f"{operation} {key!r} failed: the server's response is not what the API documents: {detail}",
        status=reply.status,
        code="invalid_response",
        operation=operation,
        key=key,
        request_id=str(reply.headers.get("x-qs-request-id", "")),
    )


def transport_failure(exc: BaseException, operation: str, key: str, contacted: str) -> RemoteError:
    """The error for an exception raised while sending or receiving (logged at DEBUG)."""
    err = transport_error(exc, operation=operation, key=key, endpoint=contacted)
    log.debug("request_failed", operation=operation, key=key, code=err.code)
    return err


@dataclass(frozen=True)
class Judge:
    """Turns a reply into the result of a request: the reply, ``None`` (a tolerated miss) or an error."""

    bucket: str
    zone: str
    base_url: str
    diagnose: Callable[[], str]  # the error code of a body-less HEAD 401/403 ("" if unknown)

    def __call__(self, operation: str, key: str, reply: Reply, ok: int, missing_ok: MissingOk | None) -> Reply | None:
        """The reply if its status is ``ok``; ``None`` if ``missing_ok`` accepts it; else raise."""
        status = reply.status
        if status == ok:
            return reply
        code = str(reply.get("code") or "")
        if missing_ok is not None and missing_ok(status, code):
            return None
        if status in (401, 403) and not code and operation in ("HeadBucket", "HeadObject"):
            code = self.diagnose()
        err = status_error(
            status=status,
            code=code,
            message=str(reply.get("message") or ""),
            request_id=str(reply.get("request_id") or reply.headers.get("x-qs-request-id", "")),
            operation=operation,
            key=key,
            endpoint=self.base_url,
            bucket=self.bucket,
            zone=self.zone,
        )
        log.debug(
            "request_failed",
            operation=operation,
            key=key,
            status=status,
            code=code,
            request_id=err.request_id,
        )
        raise err
