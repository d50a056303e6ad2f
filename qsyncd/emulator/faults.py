"""Fault injection and the request log of the emulator.

A :class:`Fault` matches requests by method, operation and key prefix; the first matching fault
(in insertion order) that still has a count left and wins its probability roll fires. One fault
fires per request at most. Every request, faulted or not, ends up as a :class:`RequestRecord`.

A request is recorded just before its response headers are sent (so a client that got an answer
always finds the record) and the record is corrected afterwards if fewer body bytes went out.
``RequestRecord.status`` is 0 when no response was sent (a reset or a stall ended the request);
``RequestRecord.time`` is the emulator's ``clock()`` (without ``clock_skew``) when the request arrived.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass, field
from typing import Any

# Default error code for a fault status.
STATUS_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "signature_not_matched",
    403: "permission_denied",
    404: "object_not_exists",
    405: "method_not_allowed",
    409: "bucket_already_exists",
    412: "precondition_failed",
    416: "invalid_range",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


@dataclass
class Fault:
    """One injected misbehaviour.

    ``status`` answers with that status and a JSON error (``code``, else one derived from the
    status); ``reset_after_bytes`` reads that many body bytes and then resets the connection
    (SO_LINGER 0); ``stall`` holds the request for that many seconds after its headers, then
    closes the connection without an answer; ``latency`` sleeps before handling. ``count`` is how
    many requests it still fires for (None: forever); ``probability`` draws from ``emu.random``.
    """

    status: int | None = None
    code: str | None = None
    count: int | None = 1
    method: str | None = None
    operation: str | None = None
    key_prefix: str | None = None
    reset_after_bytes: int | None = None
    latency: float = 0.0
    stall: float = 0.0
    probability: float = 1.0
    fired: int = field(default=0)  # extra: how many times it has fired so far

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ValueError(f"fault status must be an HTTP status, got {self.status!r}")
        if self.count is not None and self.count < 0:
            raise ValueError("fault count must be >= 0 or None")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault probability must be within [0, 1]")
        if self.reset_after_bytes is not None and self.reset_after_bytes < 0:
            raise ValueError("reset_after_bytes must be >= 0")
        if self.latency < 0 or self.stall < 0:
            raise ValueError("latency and stall must be >= 0")

    def error_code(self) -> str:
        """The QingStor error code a status fault answers with."""
        if self.code:
            return self.code
        status = int(self.status or 500)
        return STATUS_CODES.get(status, "internal_error" if status >= 500 else "invalid_request")

    def describe(self) -> str:
        """A short text for the request log, e.g. ``status=503`` or ``reset_after_bytes=100``."""
        parts: list[str] = []
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.reset_after_bytes is not None:
            parts.append(f"reset_after_bytes={self.reset_after_bytes}")
        if self.stall:
            parts.append(f"stall={self.stall:g}")
        if self.latency:
            parts.append(f"latency={self.latency:g}")
        return ",".join(parts) or "noop"

    def matches(self, method: str, operation: str, key: str) -> bool:
        """Whether the filters of this fault select the request."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.operation is not None and self.operation != operation:
            return False
        return not (self.key_prefix is not None and not key.startswith(self.key_prefix))

    def to_json(self) -> dict[str, Any]:
        """The fault as a JSON-able dict (admin endpoint)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from a JSON object of its fields; unknown fields raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"fired"}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class RequestRecord:
    """What the emulator saw and did for one request."""

    method: str
    operation: str
    bucket: str
    key: str
    status: int
    bytes_in: int
    bytes_out: int
    part_number: int | None
    upload_id: str | None
    time: float
    fault: str | None

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-able dict (admin endpoint)."""
        return dataclasses.asdict(self)


class FaultBook:
    """Thread-safe list of faults plus the request log."""

    def __init__(self, rng: random.Random) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: dict[int, RequestRecord] = {}
        self._seq = 0
        self.random = rng

    def add(self, fault: Fault) -> Fault:
        """Append a fault (it matches after every earlier one)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[Fault]:
        """A copy of the fault list."""
        with self._lock:
            return list(self._faults)

    def take(self, method: str, operation: str, key: str) -> Fault | None:
        """Pick the fault that fires for this request (consuming one of its count), if any."""
        with self._lock:
            for fault in self._faults:
                if fault.count is not None and fault.count <= 0:
                    continue
                if not fault.matches(method, operation, key):
                    continue
                if fault.probability < 1.0 and self.random.random() >= fault.probability:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                fault.fired += 1
                return fault
            return None

    def next_seq(self) -> int:
        """A sequence number in arrival order."""
        with self._lock:
            self._seq += 1
            return self._seq

    def record(self, seq: int, rec: RequestRecord) -> None:
        """Store (or replace) the record of request number ``seq``."""
        with self._lock:
            self._log[seq] = rec

    def records(self) -> list[RequestRecord]:
        """A snapshot of the log, in arrival order."""
        with self._lock:
            return [self._log[seq] for seq in sorted(self._log)]

    def clear_records(self) -> None:
        """Forget the log."""
        with self._lock:
            self._log.clear()
