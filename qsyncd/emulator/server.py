"""The emulator's HTTP server: request parsing, authentication, faults, the request log.

Protocol choices where the reference says "NOT confirmed" (documented guesses):

- Missing ``Authorization`` (and no query signature): **403 ``permission_denied``**, for every
  request (the emulator has no public buckets). The error table (docs ``error_code.md``) gives
  ``permission_denied`` 403 and 401 only to ``invalid_access_key_id`` / ``signature_not_matched``;
  ``access_control.md`` says unsigned requests are anonymous users, refused unless a bucket's ACL or
  policy opens it. Until issue 17 the emulator answered 401 here.
- ``Date``/``x-qs-date`` missing or unparseable: **403 ``request_expired``**, like a skewed one.
- Expired query signature (``expires`` in the past): **403 ``request_expired``**.
- Signature checked before the clock; both before any bucket/key lookup.
- PUT without ``Content-Length`` and without chunked encoding: **411 ``invalid_request``**.
  A chunked body is accepted and decoded.
- Body shorter than ``Content-Length`` (client closed early): **400 ``incomplete_body``** if the
  socket still takes it; nothing is stored.
- ``Content-MD5`` is accepted as the Base64 of the 16-byte digest (RFC 1864; what both SDKs compute
  for ``?delete``: Python ``build.py``, Go v3.2.0 ``request/builder/builder.go``; and qsyncd) **or as
  32 hex digits** (either case), and checked against the body in both forms: a mismatch is
  **400 ``bad_digest``**, nothing stored. Evidence for hex: the Go SDK's scenario steps
  (qingstor-sdk-go ``test/object.go``, ``test/object_test.go``: ``ContentMD5:
  hex.EncodeToString(md5)`` on PutObject, expecting 201 from the real service) and its PutObject
  example (``docs/example/put_object.md``); qsctl 2.0 sent ``hex.EncodeToString`` on UploadMultipart
  (``storage/qingstor.go``, 2019). The docs (``object/basic_opt/put.md``, ``common_header.md``) say
  only "the MD5 of the body, to check integrity", and ``bad_digest`` is "Content-MD5 does not match
  the MD5 the server computed": that the service checks the hex form is inferred from that, not
  seen. Neither form (e.g. 31 hex digits, bad Base64): **400 ``bad_digest``**.
- An error answered before the body was read: the body is drained (up to 5 GiB) so the
  client sees the response; bigger bodies, or ``Expect: 100-continue`` with no 100 sent, get
  ``Connection: close`` and the connection is closed after the response.
- ``x-qs-fetch-source`` and AppendObject: not implemented (**501 ``not_implemented``**); other
  sub-resources (acl, cors, policy, ...): **405 ``method_not_allowed``**.
- Admin requests under ``/_emulator/`` are not authenticated and not put in the request log.
- ``request_id`` (body and ``x-qs-request-id``) is 32 lower-case hex characters; ``message`` texts
  are the emulator's own; ``url`` points at the error-code page with ``#<code>``.

The operations themselves (and their guesses) live in :mod:`qsyncd.emulator.operations`.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from qsyncd.emulator import signing
from qsyncd.emulator.faults import Fault, FaultBook, RequestRecord
from qsyncd.emulator.operations import Operations, classify
from qsyncd.emulator.store import Store, StoreError
from qsyncd.emulator.wire import BodyReader, parse_date, valid_bucket_name

log = logging.getLogger("qsyncd.emulator")

DEFAULT_CREDENTIALS: dict[str, str] = {
    "QSYNCDEMULATORKEY000": "qsyncd-emulator-secret-not-for-production",
}
MAX_SKEW_SECONDS = 15 * 60
DRAIN_LIMIT = 5 * 1024 * 1024 * 1024
ERROR_DOC_URL = "https://docs.qingcloud.com/qingstor/api/common/error_code.html"


class HTTPError(Exception):
    """Raised by handlers to answer with a QingStor JSON error."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code


class AbortConnection(Exception):
    """The connection was reset or dropped on purpose (faults); nothing more to send."""


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection_failed client=%s", client_address, exc_info=True)

    def close_all_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Handler(Operations, BaseHTTPRequestHandler):
    """One connection; ``handle_one_request`` dispatches every method to :meth:`dispatch`."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
    # to every response that has a body (initiate, listings).
    disable_nagle_algorithm = True
    server_version = "QingStor"
    sys_version = ""
    timeout = 600
    server: _Server

    def version_string(self) -> str:
        return "QingStor"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle_expect_100(self) -> bool:
        # 100 Continue is sent only once the request passed auth and validation (see read_body).
        return True

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = lambda self: self.dispatch()

    # ---- per-request state ----------------------------------------------------------------------

    @property
    def emu(self) -> Emulator:
        return self.server.emulator

    def _reset_state(self) -> None:
        self.request_id = uuid.uuid4().hex
        self.status_sent = 0
        self.bytes_out = 0
        self.body: BodyReader | None = None
        self.expect_pending = False
        self.part_number: int | None = None
        self.upload_id: str | None = None
        self.bucket = ""
        self.key = ""
        self.operation = ""

    # ---- entry ----------------------------------------------------------------------------------

    def dispatch(self) -> None:
        self._reset_state()
        target = self.path
        if target[:8].lower().startswith(("http://", "https://")):  # absolute-form (a proxy request)
            rest = target.split("://", 1)[1]
            slash = rest.find("/")
            target = rest[slash:] if slash >= 0 else "/"
        raw_path, _, raw_query = target.partition("?")
        raw_path = raw_path or "/"
        self.raw_path, self.raw_query = raw_path, raw_query
        if raw_path == "/_emulator" or raw_path.startswith("/_emulator/"):
            self._admin(raw_path)
            return
        self.expect_pending = (
            self.headers.get("Expect", "").strip().lower() == "100-continue" and self.request_version == "HTTP/1.1"
        )
        self._setup_body()
        self._seq = self.emu.book.next_seq()
        self._arrived = self.emu.clock()
        self._fault: Fault | None = None
        self._recorded: RequestRecord | None = None
        try:
            self.query = signing.parse_query(raw_query)
            self.bucket, raw_key = _split_path(raw_path)
            bad_key = False
            try:
                self.key = signing.unquote_path(raw_key) if raw_key else ""
            except UnicodeDecodeError:
                self.key, bad_key = raw_key, True
            self.operation = classify(self.command, self.bucket, self.key, self.query)
            self._note_params()
            self._fault = self.emu.book.take(self.command, self.operation, self.key)
            self._apply_fault(self._fault)
            self.authenticate()
            if bad_key:
                raise HTTPError(400, "invalid_object_name", "the key is not valid UTF-8")
            self.run_operation()
        except HTTPError as err:
            self.send_error_json(err.status, err.code, err.message)
        except StoreError as err:
            self.send_error_json(err.status, err.code, err.message)
        except AbortConnection:
            self.close_connection = True
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True
        except Exception:
            log.exception("request_failed method=%s operation=%s", self.command, self.operation)
            self.close_connection = True
            self.send_error_json(500, "internal_error", "emulator bug; see its log")
        finally:
            rec = self._make_record(self.status_sent, self.bytes_out)
            if rec != self._recorded:
                self.emu.book.record(self._seq, rec)
            log.info(
                "request_handled method=%s operation=%s bucket=%s key=%r status=%d bytes_in=%d bytes_out=%d fault=%s",
                rec.method,
                rec.operation,
                rec.bucket,
                rec.key,
                rec.status,
                rec.bytes_in,
                rec.bytes_out,
                rec.fault,
            )

    def _make_record(self, status: int, bytes_out: int) -> RequestRecord:
        return RequestRecord(
            method=self.command,
            operation=self.operation,
            bucket=self.bucket,
            key=self.key,
            status=status,
            bytes_in=self.body.received if self.body else 0,
            bytes_out=bytes_out,
            part_number=self.part_number,
            upload_id=self.upload_id,
            time=self._arrived,
            fault=self._fault.describe() if self._fault else None,
        )

    def _note_params(self) -> None:
        if "upload_id" in self.query:
            self.upload_id = self.query["upload_id"]
        if "part_number" in self.query:
            try:
                self.part_number = int(self.query["part_number"])
            except ValueError:
                self.part_number = None

    def _setup_body(self) -> None:
        te = self.headers.get("Transfer-Encoding", "").lower()
        chunked = "chunked" in te
        length: int | None = None
        cl = self.headers.get("Content-Length")
        if cl is not None and not chunked:
            try:
                length = int(cl.strip())
                if length < 0:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                length = 0
        elif not chunked:
            length = 0
        self.has_length = cl is not None or chunked
        self.body = BodyReader(self.rfile, length, chunked)

    # ---- faults ---------------------------------------------------------------------------------

    def _apply_fault(self, fault: Fault | None) -> None:
        if fault is None:
            return
        stop = self.emu._stopping
        if fault.latency:
            stop.wait(fault.latency)
        if fault.stall:
            stop.wait(fault.stall)
            self._drop_connection(rst=False)
        if fault.reset_after_bytes is not None:
            self.send_continue()
            want = fault.reset_after_bytes
            assert self.body is not None
            try:
                while want > 0:
                    chunk = self.body.read(min(want, 1024 * 1024))
                    if not chunk:
                        break
                    want -= len(chunk)
            except Exception:
                pass
            self._drop_connection(rst=True)
        if fault.status is not None:
            raise HTTPError(int(fault.status), fault.error_code(), "injected fault")

    def _drop_connection(self, rst: bool) -> None:
        conn = self.connection
        try:
            if rst:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            conn.close()
        except OSError:
            pass
        raise AbortConnection()

    # ---- authentication -------------------------------------------------------------------------

    def authenticate(self) -> None:
        """Check the header or query signature and the clock; raise ``HTTPError`` on failure."""
        headers = list(self.headers.items())
        auth = self.headers.get("Authorization")
        now = self.emu.now()
        if auth is None and "signature" in self.query and "access_key_id" in self.query:
            akid = self.query["access_key_id"]
            secret = self.emu.credentials.get(akid)
            if secret is None:
                raise HTTPError(401, "invalid_access_key_id", "the access key id does not exist")
            try:
                expires = int(self.query.get("expires", ""))
            except ValueError:
                raise HTTPError(401, "signature_not_matched", "expires is not an integer") from None
            given = self.query["signature"]
            query = signing.strip_query_auth(self.raw_query)
            ctypes = {"", self.headers.get("Content-Type", "")}
            ok = any(
                signing.verify(
                    signing.query_signature(
                        secret, self.command, self.raw_path, query, headers, expires, content_type=ct, decode_values=dec
                    ),
                    given,
                )
                for ct in ctypes
                for dec in (False, True)
            )
            if not ok:
                raise HTTPError(401, "signature_not_matched", "the query signature does not match")
            if expires < now:
                raise HTTPError(403, "request_expired", "the query signature has expired")
            return
        if auth is None:
            raise HTTPError(403, "permission_denied", "anonymous access to a private bucket is denied")
        scheme, _, rest = auth.strip().partition(" ")
        akid, sep, given = rest.strip().partition(":")
        if scheme != "QS" or not sep:
            raise HTTPError(401, "signature_not_matched", "the Authorization header is malformed")
        secret = self.emu.credentials.get(akid)
        if secret is None:
            raise HTTPError(401, "invalid_access_key_id", "the access key id does not exist")
        ok = any(
            signing.verify(
                signing.header_signature(
                    secret, self.command, self.raw_path, self.raw_query, headers, decode_values=dec
                ),
                given.strip(),
            )
            for dec in (False, True)
        )
        if not ok:
            raise HTTPError(401, "signature_not_matched", "the signature does not match")
        date_value = self.headers.get("x-qs-date") or self.headers.get("Date") or ""
        when = parse_date(date_value)
        if when is None or abs(when - now) > MAX_SKEW_SECONDS:
            raise HTTPError(403, "request_expired", "the request date is more than 15 minutes from server time")

    # ---- bodies ---------------------------------------------------------------------------------

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the client asked for it and it was not sent yet."""
        if self.expect_pending:
            self.expect_pending = False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()

    def _settle_body_before_response(self) -> None:
        body = self.body
        if body is None or body.done:
            return
        if self.expect_pending:
            self.close_connection = True
            return
        remaining = body.remaining()
        if remaining is not None and remaining > DRAIN_LIMIT:
            self.close_connection = True
            return
        if not body.drain(DRAIN_LIMIT, time.monotonic() + 120):
            self.close_connection = True

    # ---- responses ------------------------------------------------------------------------------

    def start_response(self, status: int, headers: Iterable[tuple[str, str]] = (), length: int | None = 0) -> None:
        """Send status and headers (``length`` None: no Content-Length, for 204/304)."""
        self._settle_body_before_response()
        self.send_response(status)
        self.send_header("x-qs-request-id", self.request_id)
        for name, value in headers:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        if self.operation != "Admin":
            # Record before the client can see any answer; corrected in dispatch() if the body fails.
            expected_out = 0 if self.command == "HEAD" or length is None else length
            self._recorded = self._make_record(status, expected_out)
            self.emu.book.record(self._seq, self._recorded)
        self.status_sent = status
        self.end_headers()

    def write_body(self, data: bytes | memoryview) -> None:
        """Write response body bytes (skipped for HEAD)."""
        if self.command == "HEAD":
            return
        self.wfile.write(data)
        self.bytes_out += len(data)

    def send_json(self, status: int, obj: Any) -> None:
        """Answer with a JSON body and ``Content-Type: application/json`` exactly."""
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.start_response(status, [("Content-Type", "application/json")], len(data))
        self.write_body(data)

    def send_empty(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Answer without a body."""
        self.start_response(status, headers, None if status in (204, 304) else 0)

    def send_error_json(self, status: int, code: str, message: str) -> None:
        """A QingStor error: JSON body, except for HEAD (no body)."""
        if self.status_sent:
            self.close_connection = True
            return
        try:
            if self.command == "HEAD":
                self.start_response(status, [], 0)
                return
            data = json.dumps(
                {"code": code, "message": message, "request_id": self.request_id, "url": f"{ERROR_DOC_URL}#{code}"}
            ).encode("utf-8")
            self.start_response(status, [("Content-Type", "application/json")], len(data))
            self.write_body(data)
        except OSError:
            self.close_connection = True

    # ---- admin ----------------------------------------------------------------------------------

    def _admin(self, raw_path: str) -> None:
        self.operation = "Admin"
        self._setup_body()
        try:
            path = raw_path.rstrip("/")
            body = b""
            assert self.body is not None
            if self.body.length or self.body.chunked:
                self.send_continue()
                parts = []
                while chunk := self.body.read(1024 * 1024):
                    parts.append(chunk)
                body = b"".join(parts)
            if path == "/_emulator/health" and self.command == "GET":
                self.send_json(200, {"ok": True})
            elif path == "/_emulator/faults" and self.command == "POST":
                try:
                    fault = self.emu.inject(Fault.from_json(json.loads(body or b"{}")))
                except (ValueError, TypeError) as exc:
                    raise HTTPError(400, "invalid_argument", str(exc)) from None
                self.send_json(201, fault.to_json())
            elif path == "/_emulator/faults" and self.command == "GET":
                self.send_json(200, [f.to_json() for f in self.emu.book.faults()])
            elif path == "/_emulator/faults" and self.command == "DELETE":
                self.emu.clear_faults()
                self.send_empty(204)
            elif path == "/_emulator/requests" and self.command == "GET":
                self.send_json(200, [r.to_json() for r in self.emu.requests])
            elif path == "/_emulator/requests" and self.command == "DELETE":
                self.emu.clear_requests()
                self.send_empty(204)
            elif path == "/_emulator/clock_skew" and self.command == "PUT":
                try:
                    seconds = float(json.loads(body)["seconds"])
                except (ValueError, TypeError, KeyError) as exc:
                    raise HTTPError(400, "invalid_argument", f'expected {{"seconds": N}}: {exc}') from None
                self.emu.clock_skew = seconds
                self.send_json(200, {"seconds": seconds})
            elif path == "/_emulator/clock_skew" and self.command == "GET":
                self.send_json(200, {"seconds": self.emu.clock_skew})
            else:
                raise HTTPError(404, "not_found", "unknown emulator admin endpoint")
        except HTTPError as err:
            self.send_error_json(err.status, err.code, err.message)
        except OSError:
            self.close_connection = True


def _split_path(raw_path: str) -> tuple[str, str]:
    """``/b/k...`` -> (bucket, raw key); ``/`` -> ("", "")."""
    stripped = raw_path.lstrip("/")
    bucket, _, raw_key = stripped.partition("/")
    return bucket, raw_key


class Emulator:
    """A QingStor-compatible server on a local port, storing under ``root``."""

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: dict[str, str] | None = None,
        buckets: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        *,
        seed: int | None = None,
        zone: str = "pek3a",
        fsync: bool = True,
    ) -> None:
        self.root = Path(root)
        self.host = host
        self._requested_port = port
        self.credentials = dict(DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.clock = clock
        self.clock_skew = 0.0
        self.zone = zone
        self.random = random.Random(seed)
        self.book = FaultBook(self.random)
        self.store = Store(self.root, self.now, fsync=fsync)
        for name in buckets:
            if not valid_bucket_name(name):
                raise ValueError(f"invalid bucket name: {name!r}")
            self.store.ensure_bucket(name)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.port = port

    def now(self) -> float:
        """The server's notion of now: ``clock() + clock_skew``."""
        return self.clock() + self.clock_skew

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        """Bind and serve in background threads."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self._requested_port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"emulator-{self.port}", daemon=True
        )
        self._thread.start()
        log.info("emulator_started url=%s root=%s", self.url, self.root)
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection; join all threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None
        log.info("emulator_stopped url=%s", self.url)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault) -> Fault:
        """Add a fault; faults match in insertion order."""
        return self.book.add(fault)

    def clear_faults(self) -> None:
        """Remove all faults."""
        self.book.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log in arrival order."""
        return self.book.records()

    def clear_requests(self) -> None:
        """Forget the request log."""
        self.book.clear_records()

    def object_path(self, bucket: str, key: str) -> Path:
        """Where a single-file object's bytes are stored (``KeyError`` if there is no such object).

        A completed multipart object is several files: this raises ``ValueError`` for it; use
        :meth:`object_bytes` or :meth:`object_files`."""
        try:
            return self.store.object_path(bucket, key)
        except StoreError as err:
            raise KeyError(f"{bucket}/{key}: {err.code}") from None

    def object_files(self, bucket: str, key: str) -> list[Path]:
        """The object's data files in the order of its bytes (``KeyError`` if there is no such object)."""
        try:
            return self.store.object_files(bucket, key)
        except StoreError as err:
            raise KeyError(f"{bucket}/{key}: {err.code}") from None

    def object_bytes(self, bucket: str, key: str) -> bytes:
        """The object's whole content, also for multipart objects (``KeyError`` if there is no such object)."""
        try:
            return self.store.read_object(bucket, key)
        except StoreError as err:
            raise KeyError(f"{bucket}/{key}: {err.code}") from None


__all__ = ["DEFAULT_CREDENTIALS", "Emulator", "HTTPError"]
