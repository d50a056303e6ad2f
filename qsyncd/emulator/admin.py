"""The emulator's own endpoints under ``/_emulator/``: faults, the request log, the clock skew.

Not authenticated and not put in the request log (they are how a test or an operator drives
the emulator, not part of the QingStor API)::

    GET    /_emulator/health         {"ok": true}
    POST   /_emulator/faults         add a fault (a JSON object of Fault fields) -> 201 and the fault
    GET    /_emulator/faults         the faults, in match order
    DELETE /_emulator/faults         remove every fault -> 204
    GET    /_emulator/requests       the request log
    DELETE /_emulator/requests       forget the request log -> 204
    PUT    /_emulator/clock_skew     {"seconds": N}: the server's clock runs N seconds off
    GET    /_emulator/clock_skew     {"seconds": N}
"""

from __future__ import annotations

import json
from typing import Protocol

from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Response
from qsyncd.emulator.faults import Fault, RequestRecord


class Controls(Protocol):
    """What the admin endpoints drive (the ``Emulator``)."""

    clock_skew: float

    def inject(self, fault: Fault) -> Fault: ...

    def faults(self) -> list[Fault]: ...

    def clear_faults(self) -> None: ...

    @property
    def requests(self) -> list[RequestRecord]: ...

    def clear_requests(self) -> None: ...


def handle_admin(controls: Controls, method: str, path: str, body: bytes) -> Response:
    """Answer one admin request (``path`` without a trailing slash)."""
    if path == "/_emulator/health" and method == "GET":
        return Response.json(200, {"ok": True})
    if path == "/_emulator/faults":
        if method == "POST":
            try:
                fault = controls.inject(Fault.from_json(json.loads(body or b"{}")))
            except (ValueError, TypeError) as exc:
                raise EmulatorError(400, "invalid_argument", str(exc)) from None
            return Response.json(201, fault.to_json())
        if method == "GET":
            return Response.json(200, [f.to_json() for f in controls.faults()])
        if method == "DELETE":
            controls.clear_faults()
            return Response.empty(204)
    if path == "/_emulator/requests":
        if method == "GET":
            return Response.json(200, [r.to_json() for r in controls.requests])
        if method == "DELETE":
            controls.clear_requests()
            return Response.empty(204)
    if path == "/_emulator/clock_skew":
        if method == "PUT":
            try:
                seconds = float(json.loads(body)["seconds"])
            except (ValueError, TypeError, KeyError) as exc:
                raise EmulatorError(400, "invalid_argument", f'expected {{"seconds": N}}: {exc}') from None
            controls.clock_skew = seconds
            return Response.json(200, {"seconds": seconds})
        if method == "GET":
            return Response.json(200, {"seconds": controls.clock_skew})
    raise EmulatorError(404, "not_found", "unknown emulator admin endpoint")
