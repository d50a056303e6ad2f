"""The error hierarchy of qsyncd: every failure a user can see carries a message that says what to do.

This is a leaf module (it imports nothing from qsyncd) so every stage can raise these errors.
Only ``qsyncd.cli`` maps them to exit codes.
"""

from __future__ import annotations

EX_CONFIG = 78  # sysexits EX_CONFIG: retrying cannot help; the unit's RestartPreventExitStatus=78
EX_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: try again later (state dir locked by another qsyncd)
EX_CANTCREAT = 73  # sysexits EX_CANTCREAT: state dir unwritable / full


class QsyncdError(Exception):
    """Base of all qsyncd errors. ``str(err)`` is the user-facing message."""

    exit_code = 1


class ConfigError(QsyncdError):
    """The configuration is wrong; the message names the key and what to fix."""

    exit_code = EX_CONFIG


class StateError(QsyncdError):
    """The state directory cannot be used (unwritable, full, corrupt)."""

    exit_code = EX_CANTCREAT


class StateLockedError(StateError):
    """Another qsyncd process holds the state directory."""

    exit_code = EX_TEMPFAIL


class RemoteError(QsyncdError):
    """A request to the object store failed.

    ``status`` is the HTTP status (0 when no response arrived), ``code`` the QingStor error code
    (e.g. ``signature_not_matched``) or a local code such as ``connection_error``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        operation: str = "",
        key: str = "",
        request_id: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.operation = operation
        self.key = key
        self.request_id = request_id


class NotFound(RemoteError):
    """The object, bucket or multipart upload does not exist."""


class PermanentError(RemoteError):
    """Retrying the same request cannot succeed (bad request, wrong key, no permission)."""


class AuthError(PermanentError):
    """Access is denied: for this request (a bucket policy refusing one key) or, as
    ``CredentialsRejected``, for every request."""


class StoreRefused(PermanentError):
    """The store refuses every request, whatever the file: wrong credentials, a skewed clock, a missing
    bucket. Retrying one file cannot help and every other file would fail the same way: the daemon
    pauses all uploads (files stay queued) and tries again at ``permanent_retry_seconds``."""


class CredentialsRejected(StoreRefused, AuthError):
    """The access key is unknown, the signature does not match or the request date is too far off."""


class BucketMissing(StoreRefused):
    """The bucket does not exist (in this zone, at this endpoint)."""


class BadRequest(PermanentError):
    """The server rejected the request as malformed (bad digest, short body, part too small...)."""


class BodyMismatch(BadRequest):
    """The server refused a body that did not match its Content-MD5 (``bad_digest``) or its length
    (``incomplete_body``): nothing was stored. Raised by a ``Remote`` for exactly these two cases.

    It is a ``BadRequest`` (so a ``PermanentError`` and a ``RemoteError``) because that is what it is
    on the wire — a 400 for this request, and resending the same bytes with the same MD5 fails again —
    and so every caller that does not single it out keeps treating it as before. The uploader catches
    it first, by type: the local file changed (or shrank) while it was read, so the file goes back to
    settle (``FileChanged``) instead of being failed."""


class SourceChanged(BadRequest):
    """A copy or move found other content at the source than the caller expected; nothing was written.

    Raised by ``Remote.copy``/``Remote.move`` when the source object's ETag or size is no longer what
    the caller passed (a 412 on the store's copy condition, or a HEAD that says otherwise). The caller
    HEADs the source again or uploads the file instead."""


class TransientError(RemoteError):
    """A failure that may go away: 5xx, connection reset, timeout, endpoint unreachable."""


class Unreachable(TransientError):
    """No connection could be made to the endpoint at all (refused, DNS, connect timeout)."""


class SkipFile(QsyncdError):
    """This local file is never uploaded as it stands; ``reason`` is a snake_case code for the event."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ChangeRefused(QsyncdError):
    """``on_change = "refuse"``: the bucket holds another version under the file's key, and it stays."""

    def __init__(self, message: str, *, key: str, remote_etag: str) -> None:
        super().__init__(message)
        self.key = key
        self.remote_etag = remote_etag


class FileChanged(QsyncdError):
    """The local file changed while it was being read; it goes back to settle and is uploaded later."""
