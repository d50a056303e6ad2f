"""The emulator's one error type: a request it refuses, answered as a QingStor JSON error.

Raised by the store, the operations, authentication and the admin endpoints alike; the HTTP server
turns it into ``{"code", "message", "request_id", "url"}`` with ``status``. A leaf module: it
imports nothing, so every layer of the emulator can raise it.
"""

from __future__ import annotations


class EmulatorError(Exception):
    """A refused request: HTTP ``status``, QingStor error ``code`` and a ``message`` for the body.

    ``close_connection`` asks the server to close the connection after the answer (the body could
    not be read to its end, so the next request on it cannot be found)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str = "",
        *,
        close_connection: bool = False,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code
        self.close_connection = close_connection
        self.headers = list(headers or [])  # sent with the error, e.g. x-qs-delete-marker


__all__ = ["EmulatorError"]
