"""What an operation is given and what it gives back, without any socket.

The HTTP server (:mod:`qsyncd.emulator.server`) parses a request into a :class:`Request`, runs the
operation with a :class:`Context` (the store and the emulator's clock, zone and URL) and writes the
:class:`Response` it returns. A test can build all three in memory: a ``Request`` reads its body
from any binary file (``io.BytesIO``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, BinaryIO

from qsyncd.emulator.store import Store
from qsyncd.emulator.wire import BodyReader


def _nothing() -> None:
    return None


@dataclass
class Request:
    """One request as the operations see it (the path and query both raw and decoded)."""

    method: str
    raw_path: str  # percent-encoded, as signed
    raw_query: str
    bucket: str
    key: str  # percent-decoded
    query: dict[str, str]
    headers: Message  # case-insensitive ``get`` and ``items``, as http.client's HTTPMessage
    body: BodyReader
    has_length: bool = True  # Content-Length or chunked was given
    operation: str = ""
    begin_body: Callable[[], None] = _nothing  # called before the body is read: sends 100 Continue


@dataclass(frozen=True)
class Context:
    """What the operations use of the emulator."""

    store: Store
    now: Callable[[], float]  # the server's notion of now (clock + skew)
    zone: str
    url: str  # http://host:port


@dataclass
class Response:
    """An answer: status, headers, ``Content-Length`` (None: none, for 204/304) and the body.

    The body is ``body`` or, for object data, ``length`` bytes read from ``stream`` (which the
    server closes once written). A HEAD answer carries the length but no body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    length: int | None = 0
    body: bytes = b""
    stream: BinaryIO | None = None
    upload_id: str | None = None  # for the request log (InitiateMultipartUpload)

    @classmethod
    def empty(cls, status: int, headers: Iterable[tuple[str, str]] = ()) -> Response:
        """An answer without a body (no Content-Length for 204 and 304)."""
        return cls(status, list(headers), None if status in (204, 304) else 0)

    @classmethod
    def json(cls, status: int, obj: Any, **extra: Any) -> Response:
        """A JSON body with ``Content-Type: application/json`` exactly."""
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        return cls(status, [("Content-Type", "application/json")], len(data), data, **extra)

    def document(self) -> Any:
        """The JSON body, decoded (for tests)."""
        return json.loads(self.body)
