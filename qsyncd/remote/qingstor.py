"""``QingStorRemote``: the ``Remote`` contract on top of qingstor-sdk 2.6.0 (the only SDK user).

The SDK builds and signs each request (``Bucket.<op>_request(...)`` -> ``Request.sign()``); this
module sends it itself so that it controls everything the SDK gets wrong (see
``/work/shared/qingstor-api.md`` §7). The four requests sent once per file or part — HeadObject,
PutObject, UploadMultipart and ListObjects — are the exception: building an SDK request (Builder,
requests' prepare, Session.send) cost more CPU than sending a 16 KiB file, so qsyncd signs them itself
(``signature.py``, pinned to the SDK's output by ``tests/remote/test_remote_signature.py``) and sends
them on the same session's urllib3 pool (same proxies, TLS settings and kept-alive connections).
Everything below holds for both kinds:

* query parameters and header values are always ``str`` (the SDK ``quote()``s params and
  requests rejects non-str header values);
* the SDK's "validation" never notices a missing ``upload_id``/``part_number`` and silently turns
  UploadMultipart/ListMultipart/Abort into plain object PUT/GET/DELETE, so empty upload ids and
  bad part numbers are refused here with ``ValueError`` before the SDK is called;
* ``UploadClient`` (swallows errors, passes ints) and ``FileChunk`` (1 KiB reads) are never used:
  bodies are ``SizedBody`` iterables (1 MiB reads, exact Content-Length, never chunked); on a
  plain-HTTP endpoint the pool's connections are ``SpliceHTTPConnection`` and file bodies go out
  with sendfile(2);
* one ``requests.Session`` is shared by a ``QingStor`` object and its ``Bucket``s, so every
  thread gets its own ``QingStor``+``Bucket`` (``threading.local``); ``close()`` closes them all;
* the SDK mounts an ``HTTPAdapter`` whose urllib3 ``Retry`` resends idempotent requests on 5xx and
  ends in ``RetryError``; it is replaced by ``HTTPAdapter(max_retries=0)`` (qsyncd retries at a
  higher level) and every send gets ``timeout=(connect_timeout, read_timeout)``;
* the SDK's ``Date`` header comes from ``time.strftime`` and follows ``LC_TIME``; it is
  overwritten before signing with ``email.utils.formatdate(usegmt=True)``, which is
  locale-independent, so a process that called ``setlocale(LC_ALL, "")`` still signs valid dates;
* ``Config()`` calls ``logging.basicConfig`` and the SDK logs the ``Authorization`` header at
  DEBUG: a ``Config`` subclass skips basicConfig and pins the ``qingstor-sdk`` logger to WARNING;
* success statuses are checked exactly (PutObject 201, UploadMultipart 201, Initiate 200,
  Complete 201, Abort 204, Head 200, List 200); anything else is an error.
* ListObjects pages with ``limit`` 1000 and ``marker`` = ``next_marker`` (or the last key or common
  prefix of the page) while ``has_more`` is true; its quoted ``etag`` values are unquoted.

Decisions where the API is not confirmed: ListMultipart has no ``has_more``; paging continues
while a page is full (``limit`` 1000) or ``has_more`` is true, with ``part_number_marker`` = the
last part number seen, and duplicate part numbers are dropped (safe whether the marker is
inclusive or exclusive). Abort treats 404 ``upload_not_exists`` as success (already gone). A
HEAD 401/403 has no body and therefore no error code; a diagnostic ``ListObjects limit=1`` is
sent to learn the code so the message can say which credential is wrong.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import os
import platform
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import requests
import structlog
from qingstor.sdk.config import Config
from qingstor.sdk.error import ParameterRequiredError, ParameterValueNotAllowedError
from qingstor.sdk.request import Request
from qingstor.sdk.service.bucket import Bucket
from qingstor.sdk.service.qingstor import QingStor
from qingstor.sdk.unpack import Unpacker
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, Timeout
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from qsyncd import __version__
from qsyncd.errors import BadRequest, BodyMismatch, RemoteError, TransientError
from qsyncd.remote.base import ObjectInfo, PartInfo, UploadInfo
from qsyncd.remote.body import ShortBodyError, SizedBody, SpliceHTTPConnection
from qsyncd.remote.signature import Signer, bucket_path, canonical_resource, object_path, query_string
from qsyncd.remote.translate import status_error, transport_error

log = structlog.get_logger("qsyncd.remote")

LIST_LIMIT = 1000
MAX_PART_NUMBER = 10000
STORAGE_CLASSES = ("STANDARD", "STANDARD_IA")
_META_KEY_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_HEX32_RE = re.compile(r"^[0-9a-f]{32}$")
_PRINTABLE_RE = re.compile(r"[\x20-\x7e]*")
_SDK_LOGGER = "qingstor-sdk"
_USER_AGENT = f"qsyncd/{__version__} (Python {platform.python_version()}; {sys.platform})"


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``scheme://host[:port]`` endpoint."""

    scheme: str
    host: str  # IPv6 literals keep their brackets, as the SDK pastes host and port together
    port: int

    def __str__(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{self.host}" + ("" if self.port == default else f":{self.port}")


def parse_endpoint(endpoint: str) -> Endpoint:
    """Parse ``http(s)://host[:port]`` (default port 80/443); anything else is a ``ValueError``."""
    hint = "expected scheme://host[:port], e.g. https://qingstor.com or http://127.0.0.1:9000"
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError(f"endpoint is empty: {hint}")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"endpoint {endpoint!r} must start with http:// or https://: {hint}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"endpoint must not contain credentials: {hint}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in endpoint or "#" in endpoint:
        raise ValueError(f"endpoint {endpoint!r} must not have a path, query or fragment: {hint}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"endpoint {endpoint!r} has an invalid port: {hint}") from None
    host = parts.hostname
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"endpoint {endpoint!r} has no valid host: {hint}")
    if port == 0:
        raise ValueError(f"endpoint {endpoint!r} has port 0: {hint}")
    if ":" in host:
        host = f"[{host}]"
    return Endpoint(parts.scheme, host, port or (443 if parts.scheme == "https" else 80))


class _SdkConfig(Config):
    """SDK config without the ``logging.basicConfig`` side effect and with DEBUG logs muted
    (the SDK logs the Authorization header at DEBUG)."""

    def set_log_level(self) -> None:
        self.logger = logging.getLogger(_SDK_LOGGER)
        self.logger.setLevel(logging.WARNING)


@dataclass(frozen=True)
class _Reply:
    """What a successful (or tolerated) response carried: status, JSON fields and headers."""

    status: int
    data: Mapping[str, Any]
    headers: Mapping[str, str]

    def get(self, name: str, default: Any = None) -> Any:
        """A field of the JSON body."""
        return self.data.get(name, default)


def _unpack(response: requests.Response) -> _Reply:
    """Parse the body with the SDK's Unpacker; a JSON body that is not an object (which makes
    Unpacker raise AttributeError) counts as no body."""
    try:
        data: Mapping[str, Any] = dict(Unpacker(response))
    except (AttributeError, TypeError, ValueError):
        data = {}
    return _Reply(response.status_code, data, response.headers)


def _shrank(operation: str, key: str, exc: ShortBodyError) -> BodyMismatch:
    return BodyMismatch(
        f"{operation} {key!r} failed: the body ended after {exc.sent} of {exc.size} bytes: "
        "the file shrank while it was read; nothing was stored",
        code="incomplete_body",
        operation=operation,
        key=key,
    )


def _invalid_response(operation: str, key: str, reply: _Reply, detail: str) -> TransientError:
    return TransientError(
        f"{operation} {key!r} failed: the server's response is not what the API documents: {detail}",
        status=reply.status,
        code="invalid_response",
        operation=operation,
        key=key,
        request_id=str(reply.headers.get("x-qs-request-id", "")),
    )


@dataclass
class _Client:
    """One thread's SDK objects (they share one requests.Session)."""

    service: QingStor
    bucket: Bucket
    session: requests.Session
    generation: int
    thread: threading.Thread
    pool: HTTPConnectionPool  # the session's urllib3 pool for the endpoint (the hot path sends on it)
    absolute: bool  # through a plain-HTTP proxy: the request line carries the whole URL
    splice: bool  # plain HTTP: file bodies go out with sendfile(2) (SpliceHTTPConnection)


def normalise_etag(etag: str | None) -> str:
    """``"ABC"`` / ``W/"abc"`` / ``abc`` -> ``abc``."""
    if not etag:
        return ""
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').strip().lower()


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("object key must be a non-empty str")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"object key {key!r} is not valid UTF-8") from None
    if len(encoded) > 1023:
        raise ValueError(f"object key is {len(encoded)} bytes; QingStor allows at most 1023")


def _check_upload_id(upload_id: str) -> None:
    # Without this the SDK sends a plain object PUT/GET/DELETE instead (qingstor-api.md §7.3).
    if not isinstance(upload_id, str) or not upload_id.strip():
        raise ValueError("upload_id must be a non-empty str")


def _check_part_number(part_number: int) -> None:
    if isinstance(part_number, bool) or not isinstance(part_number, int):
        raise ValueError(f"part_number must be an int, got {type(part_number).__name__}")
    if not 0 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"part_number must be in 0..{MAX_PART_NUMBER}, got {part_number}")


def _check_md5_b64(md5_b64: str) -> None:
    try:
        raw = base64.b64decode(md5_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("md5_b64 must be the Base64 of a 16-byte MD5 digest") from None
    if len(raw) != 16:
        raise ValueError("md5_b64 must be the Base64 of a 16-byte MD5 digest")


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"size must be an int >= 0, got {size!r}")


def _meta_headers(metadata: Mapping[str, str] | None) -> dict[str, str] | None:
    """Validate user metadata for ``x_qs_meta_data`` (names come back lower-cased from HEAD)."""
    if not metadata:
        return None
    out: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_KEY_RE.match(name) or len(name) > 512:
            raise ValueError(f"metadata name {name!r} must be 1..512 chars of [A-Za-z0-9._-]")
        if not isinstance(value, str) or not _PRINTABLE_RE.fullmatch(value):
            raise ValueError(f"metadata value of {name!r} must be printable ASCII")
        if value != value.strip():
            raise ValueError(f"metadata value of {name!r} must not start or end with spaces")
        out[name] = value
    return out


def _object_headers(content_type: str, metadata: Mapping[str, str] | None, storage_class: str | None) -> dict[str, str]:
    """Content-Type, ``x-qs-meta-*`` and ``x-qs-storage-class`` headers of a new object (validated)."""
    _check_storage_class(storage_class)
    _check_content_type(content_type)
    headers = {"content-type": content_type or "application/octet-stream"}
    for name, value in (_meta_headers(metadata) or {}).items():
        headers[f"x-qs-meta-{name.lower()}"] = value
    if storage_class is not None:
        headers["x-qs-storage-class"] = storage_class
    return headers


def _check_content_type(content_type: str) -> None:
    # http.client encodes header values as latin-1 and requests rejects CR/LF: refuse them here.
    if not isinstance(content_type, str) or not _PRINTABLE_RE.fullmatch(content_type):
        raise ValueError(f"content_type must be printable ASCII, got {content_type!r}")


def _check_storage_class(storage_class: str | None) -> None:
    if storage_class is not None and storage_class not in STORAGE_CLASSES:
        raise ValueError(f"storage_class must be one of {STORAGE_CLASSES}, got {storage_class!r}")


class QingStorRemote:
    """One QingStor bucket, safe for concurrent use from many threads."""

    def __init__(
        self,
        *,
        endpoint: str,
        zone: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        self._endpoint = parse_endpoint(endpoint)
        if not isinstance(bucket, str) or not bucket:
            raise ValueError("bucket must be a non-empty str")
        if not isinstance(zone, str):
            raise ValueError("zone must be a str ('' for no zone prefix, e.g. a local emulator)")
        if not access_key_id or not secret_access_key:
            raise ValueError("access_key_id and secret_access_key must be non-empty")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("connect_timeout and read_timeout must be > 0 (0 would mean no timeout)")
        self._zone = zone
        self._bucket_name = bucket
        self._access_key_id = access_key_id
        self._timeout = (float(connect_timeout), float(read_timeout))
        config = _SdkConfig(access_key_id, secret_access_key)
        config.host = self._endpoint.host
        config.port = self._endpoint.port
        config.protocol = self._endpoint.scheme
        config.connection_retries = 0
        config.timeout = 0  # timeouts are passed to every send() instead
        config.enable_virtual_host_style = False
        self._config = config
        self._signer = Signer(access_key_id, secret_access_key)
        self._zone_host = f"{zone}.{self._endpoint.host}" if zone else self._endpoint.host
        default_port = 443 if self._endpoint.scheme == "https" else 80
        # the Host header, as the SDK's Builder.parse_request_host writes it (no port when it is the default)
        port = "" if self._endpoint.port == default_port else f":{self._endpoint.port}"
        self._host = self._zone_host + port
        self._base_url = f"{self._endpoint.scheme}://{self._host}"
        # What error messages name: the URL actually contacted, and how the zone made it
        self._contacted = (
            f"{self._base_url} (zone {zone!r} put in front of the host of endpoint {self._endpoint})"
            if zone
            else self._base_url
        )
        self._pool_timeout = Timeout(connect=self._timeout[0], read=self._timeout[1])
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[_Client] = []
        self._generation = 0

    def __repr__(self) -> str:
        return (
            f"QingStorRemote(endpoint={str(self._endpoint)!r}, zone={self._zone!r}, "
            f"bucket={self._bucket_name!r}, access_key_id={self._access_key_id!r})"
        )

    def __enter__(self) -> QingStorRemote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        """The endpoint as ``scheme://host[:port]``."""
        return str(self._endpoint)

    # ---- per-thread SDK clients -------------------------------------------------------------

    def _client(self) -> _Client:
        client: _Client | None = getattr(self._local, "client", None)
        if client is not None and client.generation == self._generation:
            return client
        service = QingStor(self._config)
        session = service.client
        for prefix in ("http://", "https://"):  # drop the SDK's Retry(status_forcelist=5xx)
            session.mount(prefix, HTTPAdapter(max_retries=0))
        # requests re-reads proxy and CA settings from the environment on every request (~12 % of the
        # CPU per small file); read them once here instead.
        ep = self._endpoint  # (proxy matching lower-cases the host itself)
        session.proxies.update(requests.utils.get_environ_proxies(f"{ep.scheme}://{self._zone_host}:{ep.port}"))
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False
        bucket = service.Bucket(self._bucket_name, self._zone)
        # The hot path (HEAD, PutObject, UploadMultipart, ListObjects) sends on the session's own urllib3 pool, so
        # proxies, TLS settings and kept-alive connections are the same as for SDK-built requests.
        adapter = session.get_adapter(self._base_url)
        probe = requests.Request("GET", self._base_url + "/").prepare()
        pool = adapter.get_connection_with_tls_context(probe, session.verify, proxies=session.proxies)
        absolute = adapter.request_url(probe, session.proxies) != probe.path_url
        # Plain HTTP (directly or through an HTTP proxy): let the kernel copy file bodies into the
        # socket. HTTPS and SOCKS keep their own connection classes and the read-and-send path.
        splice = type(pool) is HTTPConnectionPool and pool.ConnectionCls is HTTPConnection
        if splice:
            pool.ConnectionCls = SpliceHTTPConnection
        with self._lock:
            client = _Client(
                service, bucket, session, self._generation, threading.current_thread(), pool, absolute, splice
            )
            # Sessions of threads that have ended are never used again: close them now.
            dead = [c for c in self._clients if not c.thread.is_alive()]
            self._clients = [c for c in self._clients if c.thread.is_alive()] + [client]
        for stale in dead:
            stale.session.close()
        self._local.client = client
        return client

    def close(self) -> None:
        """Close every thread's HTTP session; later calls open new ones."""
        with self._lock:
            clients, self._clients = self._clients, []
            self._generation += 1
        for client in clients:
            client.session.close()

    # ---- one request --------------------------------------------------------------------------

    def _send(
        self,
        operation: str,
        key: str,
        build: Callable[[Bucket], Request],
        ok: int,
        *,
        missing_ok: Callable[[int, str], bool] | None = None,
    ) -> _Reply | None:
        """Build, sign and send one request; return the unpacked response or raise.

        ``missing_ok(status, code)`` returning True turns that error into ``None``.
        """
        client = self._client()
        try:
            request = build(client.bucket)
            request.req.headers["Date"] = formatdate(usegmt=True)  # locale-independent
            prepared = request.sign()
            response = client.session.send(prepared, timeout=self._timeout)
            result = _unpack(response)
        except ShortBodyError as exc:
            raise _shrank(operation, key, exc) from None
        except (ParameterRequiredError, ParameterValueNotAllowedError) as exc:
            raise BadRequest(
                f"{operation} {key!r} failed: invalid request ({exc})",
                code="invalid_request",
                operation=operation,
                key=key,
            ) from None
        except (requests.RequestException, Urllib3HTTPError, OSError) as exc:
            raise self._transport_failure(exc, operation, key) from None
        return self._judge(operation, key, result, ok, missing_ok)

    def _send_fast(
        self,
        operation: str,
        method: str,
        key: str,
        headers: dict[str, str],
        ok: int,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: SizedBody | None = None,
        missing_ok: Callable[[int, str], bool] | None = None,
        bucket_level: bool = False,
    ) -> _Reply | None:
        """Sign and send one request without building SDK objects (see ``signature.py``).

        The request is for the object ``key``, or for the bucket when ``bucket_level`` (``key`` then
        only names what the request is about in errors). ``headers`` has lower-case names; Date,
        Host, User-Agent and Authorization are added here.
        """
        client = self._client()
        if body is not None and client.splice:
            body.enable_splice()
        url = self._sign_fast(method, None if bucket_level else key, headers, query)
        try:
            response = client.pool.urlopen(
                method,
                self._base_url + url if client.absolute else url,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
                decode_content=False,
                timeout=self._pool_timeout,
            )
        except ShortBodyError as exc:
            raise _shrank(operation, key, exc) from None
        except (Urllib3HTTPError, OSError) as exc:
            raise self._transport_failure(exc, operation, key) from None
        data: Mapping[str, Any] = {}
        if response.data and "json" in (response.headers.get("Content-Type") or ""):
            try:
                parsed = json.loads(response.data)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                data = parsed
        return self._judge(operation, key, _Reply(response.status, data, response.headers), ok, missing_ok)

    def _sign_fast(
        self, method: str, key: str | None, headers: dict[str, str], query: Sequence[tuple[str, str]], date: str = ""
    ) -> str:
        """Add Date, Host, User-Agent and Authorization to ``headers``; return the request target
        (path and query, quoted as the SDK quotes them) for the object ``key`` or (None) the bucket."""
        path = bucket_path(self._bucket_name) if key is None else object_path(self._bucket_name, key)
        qs = query_string(query)
        headers["date"] = date or formatdate(usegmt=True)  # locale-independent
        headers["host"] = self._host
        headers["user-agent"] = _USER_AGENT
        headers["authorization"] = self._signer.authorization(method, headers, canonical_resource(path, qs))
        return f"{path}?{qs}" if qs else path

    def _transport_failure(self, exc: BaseException, operation: str, key: str) -> RemoteError:
        err = transport_error(exc, operation=operation, key=key, endpoint=self._contacted)
        log.debug("request_failed", operation=operation, key=key, code=err.code)
        return err

    def _judge(
        self,
        operation: str,
        key: str,
        result: _Reply,
        ok: int,
        missing_ok: Callable[[int, str], bool] | None,
    ) -> _Reply | None:
        """The reply if its status is ``ok``; ``None`` if ``missing_ok`` accepts it; else raise."""
        status = result.status
        if status == ok:
            return result
        code = str(result.get("code") or "")
        if missing_ok is not None and missing_ok(status, code):
            return None
        if status in (401, 403) and not code and operation in ("HeadBucket", "HeadObject"):
            code = self._diagnose_auth_code()
        err = status_error(
            status=status,
            code=code,
            message=str(result.get("message") or ""),
            request_id=str(result.get("request_id") or result.headers.get("x-qs-request-id", "")),
            operation=operation,
            key=key,
            endpoint=self._base_url,
            bucket=self._bucket_name,
            zone=self._zone,
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

    def _diagnose_auth_code(self) -> str:
        """HEAD errors carry no body: ask ListObjects (limit 1) for the JSON error code."""
        client = self._client()
        try:
            request = client.bucket.list_objects_request(limit="1")
            request.req.headers["Date"] = formatdate(usegmt=True)
            response = client.session.send(request.sign(), timeout=self._timeout)
            result = _unpack(response)
        except (requests.RequestException, Urllib3HTTPError, OSError):
            return ""
        if response.status_code in (401, 403):
            return str(result.get("code") or "")
        return ""

    # ---- Remote -------------------------------------------------------------------------------

    def probe(self) -> None:
        """Check that the bucket exists and the credentials work (HEAD bucket)."""
        self._send("HeadBucket", "", lambda b: b.head_request(), 200)

    def head(self, key: str) -> ObjectInfo | None:
        """Return the object's info, or ``None`` when it does not exist (HEAD object 404)."""
        _check_key(key)
        result = self._send_fast("HeadObject", "HEAD", key, {}, 200, missing_ok=lambda status, _code: status == 404)
        if result is None:
            return None
        headers = result.headers
        metadata = {
            name.lower()[len("x-qs-meta-") :]: value
            for name, value in headers.items()
            if name.lower().startswith("x-qs-meta-")
        }
        try:
            size = int(headers.get("Content-Length", ""))
        except ValueError:
            raise _invalid_response("HeadObject", key, result, "no valid Content-Length") from None
        return ObjectInfo(
            key=key,
            size=size,
            etag=normalise_etag(headers.get("ETag")),
            content_type=headers.get("Content-Type", ""),
            metadata=metadata,
        )

    def put(
        self,
        key: str,
        body: BinaryIO,
        size: int,
        md5_b64: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> str:
        """Store ``size`` bytes of ``body`` under ``key`` (PutObject, 201); return its ETag."""
        _check_key(key)
        _check_size(size)
        _check_md5_b64(md5_b64)
        headers = _object_headers(content_type, metadata, storage_class)
        headers["content-length"] = str(size)
        headers["content-md5"] = md5_b64
        result = self._send_fast("PutObject", "PUT", key, headers, 201, body=SizedBody(body, size) if size else None)
        assert result is not None
        return normalise_etag(result.headers.get("ETag")) or base64.b64decode(md5_b64).hex()

    def initiate(
        self,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
        storage_class: str | None = None,
    ) -> str:
        """Start a multipart upload (InitiateMultipartUpload, 200); return its upload id."""
        _check_key(key)
        _check_storage_class(storage_class)
        _check_content_type(content_type)
        meta = _meta_headers(metadata)
        result = self._send(
            "InitiateMultipartUpload",
            key,
            lambda b: b.initiate_multipart_upload_request(
                key,
                content_type=content_type or "application/octet-stream",
                x_qs_meta_data=meta,
                x_qs_storage_class=storage_class,
            ),
            200,
        )
        assert result is not None
        upload_id = result.get("upload_id")
        if not isinstance(upload_id, str) or not upload_id:
            raise _invalid_response(
                "InitiateMultipartUpload",
                key,
                result,
                "no upload_id in the body (is its Content-Type exactly application/json?)",
            )
        return upload_id

    def upload_part(self, key: str, upload_id: str, part_number: int, body: BinaryIO, size: int, md5_b64: str) -> str:
        """Store one 0-based part (UploadMultipart, 201); return its ETag."""
        _check_key(key)
        _check_upload_id(upload_id)
        _check_part_number(part_number)
        _check_size(size)
        _check_md5_b64(md5_b64)
        result = self._send_fast(
            "UploadMultipart",
            "PUT",
            key,
            {"content-length": str(size), "content-md5": md5_b64, "content-type": "application/octet-stream"},
            201,
            query=(("part_number", str(part_number)), ("upload_id", upload_id)),
            body=SizedBody(body, size) if size else None,
        )
        assert result is not None
        return normalise_etag(result.headers.get("ETag")) or base64.b64decode(md5_b64).hex()

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """All stored parts of an upload, ascending, paging through ListMultipart (200)."""
        _check_key(key)
        _check_upload_id(upload_id)
        parts: dict[int, PartInfo] = {}
        marker: str | None = None
        while True:
            result = self._send(
                "ListMultipart",
                key,
                lambda b, m=marker: b.list_multipart_request(
                    key, limit=str(LIST_LIMIT), part_number_marker=m, upload_id=upload_id
                ),
                200,
            )
            assert result is not None
            page = result.get("object_parts") or []
            new = 0
            try:
                for item in page:
                    number = int(item["part_number"])
                    if number not in parts:
                        new += 1
                    parts[number] = PartInfo(
                        part_number=number,
                        size=int(item.get("size", 0)),
                        etag=normalise_etag(item.get("etag")),
                    )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise _invalid_response("ListMultipart", key, result, f"malformed object_parts ({exc!r})") from None
            has_more = result.get("has_more")
            more = bool(has_more) if has_more is not None else len(page) >= LIST_LIMIT
            if not page or not more or new == 0:
                break
            marker = str(max(parts))
        return [parts[n] for n in sorted(parts)]

    def complete(self, key: str, upload_id: str, parts: Sequence[PartInfo], etag: str) -> None:
        """Assemble ``parts`` (strictly ascending) into the object (CompleteMultipart, 201).

        ``etag`` (hex MD5 of the whole file) is sent quoted as the ``ETag`` request header and
        becomes the object's ETag.
        """
        _check_key(key)
        _check_upload_id(upload_id)
        if not parts:
            raise ValueError("complete() needs at least one part")
        numbers = [p.part_number for p in parts]
        for number in numbers:
            _check_part_number(number)
        if any(a >= b for a, b in itertools.pairwise(numbers)):
            raise ValueError(f"parts must be strictly ascending by part_number, got {numbers}")
        whole = normalise_etag(etag)
        if not _HEX32_RE.match(whole):
            raise ValueError("etag must be a 32-digit hex MD5")
        object_parts: list[dict[str, Any]] = [
            {"part_number": p.part_number, "etag": normalise_etag(p.etag), "size": p.size} for p in parts
        ]
        self._send(
            "CompleteMultipartUpload",
            key,
            lambda b: b.complete_multipart_upload_request(
                key, upload_id=upload_id, etag=f'"{whole}"', object_parts=object_parts
            ),
            201,
        )

    def abort(self, key: str, upload_id: str) -> None:
        """Discard an upload (AbortMultipartUpload, 204); an upload already gone is fine."""
        _check_key(key)
        _check_upload_id(upload_id)
        self._send(
            "AbortMultipartUpload",
            key,
            lambda b: b.abort_multipart_upload_request(key, upload_id=upload_id),
            204,
            missing_ok=lambda status, code: status == 404 and code == "upload_not_exists",
        )

    def list_uploads(self, prefix: str = "") -> list[UploadInfo]:
        """All unfinished multipart uploads under ``prefix``, paging ListMultipartUploads (200)."""
        if not isinstance(prefix, str):
            raise ValueError("prefix must be a str")
        uploads: dict[tuple[str, str], UploadInfo] = {}
        key_marker: str | None = None
        id_marker: str | None = None
        while True:
            result = self._send(
                "ListMultipartUploads",
                prefix,
                lambda b, km=key_marker, im=id_marker: b.list_multipart_uploads_request(
                    limit=str(LIST_LIMIT),
                    prefix=prefix or None,
                    key_marker=km,
                    upload_id_marker=im,
                ),
                200,
            )
            assert result is not None
            page = result.get("uploads") or []
            new = 0
            last: tuple[str, str] | None = None
            try:
                for item in page:
                    last = ident = (str(item["key"]), str(item["upload_id"]))
                    if ident not in uploads:
                        new += 1
                    uploads[ident] = UploadInfo(key=ident[0], upload_id=ident[1], created=str(item.get("created", "")))
            except (KeyError, TypeError, AttributeError) as exc:
                raise _invalid_response(
                    "ListMultipartUploads", prefix, result, f"malformed uploads ({exc!r})"
                ) from None
            if last is None or not result.get("has_more") or new == 0:
                break
            key_marker = str(result.get("next_key_marker") or last[0])
            id_marker = str(result.get("next_upload_id_marker") or last[1])
        return sorted(uploads.values(), key=lambda u: (u.key, u.upload_id))

    def list_objects(self, prefix: str, delimiter: str = "") -> list[ObjectInfo]:
        """Every object under ``prefix`` (common prefixes left out), paging ListObjects (200)."""
        if not isinstance(prefix, str) or not isinstance(delimiter, str):
            raise ValueError("prefix and delimiter must be str")
        objects: dict[str, ObjectInfo] = {}
        marker: str | None = None
        while True:
            params = {"prefix": prefix, "delimiter": delimiter, "limit": str(LIST_LIMIT), "marker": marker}
            result = self._send_fast(
                "ListObjects",
                "GET",
                prefix,
                {},
                200,
                query=[(name, value) for name, value in params.items() if value],
                bucket_level=True,
            )
            assert result is not None
            page = result.get("keys") or []
            prefixes = result.get("common_prefixes") or []
            new = 0
            last = ""
            try:
                for item in page:
                    key = str(item["key"])
                    last = max(last, key)
                    if key not in objects:
                        new += 1
                    objects[key] = ObjectInfo(
                        key=key,
                        size=int(item.get("size", 0)),
                        etag=normalise_etag(item.get("etag")),
                        content_type=str(item.get("mime_type") or ""),
                    )
                for cp in prefixes:
                    last = max(last, str(cp))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise _invalid_response("ListObjects", prefix, result, f"malformed keys ({exc!r})") from None
            has_more = result.get("has_more")
            more = bool(has_more) if has_more is not None else len(page) + len(prefixes) >= LIST_LIMIT
            next_marker = str(result.get("next_marker") or last)
            # Stop when a page brings nothing new and the marker does not move (a server ignoring it).
            if not more or not next_marker or (new == 0 and next_marker == marker):
                break
            marker = next_marker
        return [objects[k] for k in sorted(objects)]


__all__ = ["Endpoint", "QingStorRemote", "normalise_etag", "parse_endpoint"]
