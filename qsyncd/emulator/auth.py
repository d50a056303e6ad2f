"""Authentication of a request: the header or query signature, then the clock.

The protocol choices (which status and code for what) are listed in :mod:`qsyncd.emulator.server`.
"""

from __future__ import annotations

from collections.abc import Mapping

from qsyncd.emulator import signing
from qsyncd.emulator.errors import EmulatorError
from qsyncd.emulator.exchange import Request
from qsyncd.emulator.wire import parse_date

MAX_SKEW_SECONDS = 15 * 60


def authenticate(req: Request, credentials: Mapping[str, str], now: float) -> None:
    """Check the signature and the request date against ``now``; raise ``EmulatorError`` if either fails."""
    if req.headers.get("Authorization") is None and "signature" in req.query and "access_key_id" in req.query:
        _check_query_signature(req, credentials, now)
    else:
        _check_header_signature(req, credentials, now)


def _check_query_signature(req: Request, credentials: Mapping[str, str], now: float) -> None:
    secret = credentials.get(req.query["access_key_id"])
    if secret is None:
        raise EmulatorError(401, "invalid_access_key_id", "the access key id does not exist")
    try:
        expires = int(req.query.get("expires", ""))
    except ValueError:
        raise EmulatorError(401, "signature_not_matched", "expires is not an integer") from None
    headers = list(req.headers.items())
    query = signing.strip_query_auth(req.raw_query)
    ok = any(
        signing.verify(
            signing.query_signature(
                secret, req.method, req.raw_path, query, headers, expires, content_type=ct, decode_values=dec
            ),
            req.query["signature"],
        )
        for ct in {"", req.headers.get("Content-Type", "")}
        for dec in (False, True)
    )
    if not ok:
        raise EmulatorError(401, "signature_not_matched", "the query signature does not match")
    if expires < now:
        raise EmulatorError(403, "request_expired", "the query signature has expired")


def _check_header_signature(req: Request, credentials: Mapping[str, str], now: float) -> None:
    auth = req.headers.get("Authorization")
    if auth is None:
        raise EmulatorError(403, "permission_denied", "anonymous access to a private bucket is denied")
    scheme, _, rest = auth.strip().partition(" ")
    akid, sep, given = rest.strip().partition(":")
    if scheme != "QS" or not sep:
        raise EmulatorError(401, "signature_not_matched", "the Authorization header is malformed")
    secret = credentials.get(akid)
    if secret is None:
        raise EmulatorError(401, "invalid_access_key_id", "the access key id does not exist")
    headers = list(req.headers.items())
    ok = any(
        signing.verify(
            signing.header_signature(secret, req.method, req.raw_path, req.raw_query, headers, decode_values=dec),
            given.strip(),
        )
        for dec in (False, True)
    )
    if not ok:
        raise EmulatorError(401, "signature_not_matched", "the signature does not match")
    when = parse_date(req.headers.get("x-qs-date") or req.headers.get("Date") or "")
    if when is None or abs(when - now) > MAX_SKEW_SECONDS:
        raise EmulatorError(403, "request_expired", "the request date is more than 15 minutes from server time")
