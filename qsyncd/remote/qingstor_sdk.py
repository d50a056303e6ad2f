"""The SDK transport: requests built and signed by qingstor-sdk 2.6.0 and sent by qsyncd; the one SDK importer.

The SDK builds and signs each request (``Bucket.<op>_request(...)`` -> ``Request.sign()``); this
module sends it itself so that it controls everything the SDK gets wrong (see
``/work/shared/qingstor-api.md`` §7). It also owns each thread's SDK objects, whose
``requests.Session`` and urllib3 pool the hand-signed transport (``qingstor_fast``) sends on too.

* ``UploadClient`` (swallows errors, passes ints) and ``FileChunk`` (1 KiB reads) are never used;
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
* query parameters are always ``str`` (the SDK ``quote()``s params).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, cast

import requests
from qingstor.sdk.config import Config
from qingstor.sdk.error import ParameterRequiredError, ParameterValueNotAllowedError
from qingstor.sdk.service.qingstor import QingStor
from qingstor.sdk.unpack import Unpacker
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from qsyncd.errors import BadRequest
from qsyncd.remote.body import ShortBodyError, SpliceHTTPConnection, shrank
from qsyncd.remote.endpoint import ZoneSite
from qsyncd.remote.qingstor_reply import Judge, MissingOk, Reply, transport_failure

_SDK_LOGGER = "qingstor-sdk"

Timeouts = tuple[float, float]  # (connect, read) seconds


class _SdkConfig(Config):  # type: ignore[misc]  # the SDK ships no type hints: Config is Any to mypy
    """SDK config without the ``logging.basicConfig`` side effect and with DEBUG logs muted
    (the SDK logs the Authorization header at DEBUG)."""

    def set_log_level(self) -> None:
        self.logger = logging.getLogger(_SDK_LOGGER)
        self.logger.setLevel(logging.WARNING)


def unpack(response: requests.Response) -> Reply:
    """Parse the body with the SDK's Unpacker; a JSON body that is not an object (which makes
    Unpacker raise AttributeError) counts as no body."""
    try:
        data: Mapping[str, Any] = dict(Unpacker(response))
    except (AttributeError, TypeError, ValueError):
        data = {}
    return Reply(response.status_code, data, response.headers)


@dataclass
class Client:
    """One thread's SDK objects (they share one requests.Session)."""

    service: Any  # qingstor.sdk.service.qingstor.QingStor
    bucket: Any  # qingstor.sdk.service.bucket.Bucket
    session: requests.Session
    generation: int
    thread: threading.Thread
    pool: HTTPConnectionPool  # the session's urllib3 pool for the endpoint (the hot path sends on it)
    absolute: bool  # through a plain-HTTP proxy: the request line carries the whole URL
    splice: bool  # plain HTTP: file bodies go out with sendfile(2) (SpliceHTTPConnection)


class Clients:
    """Each thread's ``Client``, made on first use; ``close()`` closes every session."""

    def __init__(self, site: ZoneSite, bucket: str, access_key_id: str, secret_access_key: str) -> None:
        self._site = site
        self._bucket_name = bucket
        config = _SdkConfig(access_key_id, secret_access_key)
        config.host = site.endpoint.host
        config.port = site.endpoint.port
        config.protocol = site.endpoint.scheme
        config.connection_retries = 0
        config.timeout = 0  # timeouts are passed to every send() instead
        config.enable_virtual_host_style = False
        self._config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[Client] = []
        self._generation = 0

    def get(self) -> Client:
        """This thread's client (a new one after ``close()``)."""
        client: Client | None = getattr(self._local, "client", None)
        if client is not None and client.generation == self._generation:
            return client
        service = QingStor(self._config)
        session: requests.Session = service.client
        for prefix in ("http://", "https://"):  # drop the SDK's Retry(status_forcelist=5xx)
            session.mount(prefix, HTTPAdapter(max_retries=0))
        # requests re-reads proxy and CA settings from the environment on every request (~12 % of the
        # CPU per small file); read them once here instead.
        ep = self._site.endpoint  # (proxy matching lower-cases the host itself)
        session.proxies.update(requests.utils.get_environ_proxies(f"{ep.scheme}://{self._site.zone_host}:{ep.port}"))
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False
        bucket = service.Bucket(self._bucket_name, self._site.zone)
        # The hot path (HEAD, PutObject, UploadMultipart, ListObjects) sends on the session's own urllib3 pool, so
        # proxies, TLS settings and kept-alive connections are the same as for SDK-built requests.
        base_url = self._site.base_url
        adapter = cast(HTTPAdapter, session.get_adapter(base_url))  # mounted above
        probe = requests.Request("GET", base_url + "/").prepare()
        pool = adapter.get_connection_with_tls_context(probe, session.verify, proxies=session.proxies)
        absolute = adapter.request_url(probe, session.proxies) != probe.path_url
        # Plain HTTP (directly or through an HTTP proxy): let the kernel copy file bodies into the
        # socket. HTTPS and SOCKS keep their own connection classes and the read-and-send path.
        splice = type(pool) is HTTPConnectionPool and pool.ConnectionCls is HTTPConnection
        if splice:
            pool.ConnectionCls = SpliceHTTPConnection
        with self._lock:
            client = Client(
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


def diagnose_auth_code(clients: Clients, timeout: Timeouts) -> str:
    """HEAD errors carry no body: ask ListObjects (limit 1) for the JSON error code ("" if none)."""
    client = clients.get()
    try:
        request = client.bucket.list_objects_request(limit="1")
        request.req.headers["Date"] = formatdate(usegmt=True)
        response = client.session.send(request.sign(), timeout=timeout)
        result = unpack(response)
    except (requests.RequestException, Urllib3HTTPError, OSError):
        return ""
    if response.status_code in (401, 403):
        return str(result.get("code") or "")
    return ""


class SdkTransport:
    """The requests sent a few times per upload (bucket HEAD, multipart bookkeeping), built by the SDK.

    Each method sends one request and returns the reply, or raises what ``Judge`` makes of it.
    """

    def __init__(self, clients: Clients, timeout: Timeouts, judge: Judge, contacted: str) -> None:
        self._clients = clients
        self._timeout = timeout
        self._judge = judge
        self._contacted = contacted

    def head_bucket(self) -> None:
        """HeadBucket (200)."""
        self._send("HeadBucket", "", lambda b: b.head_request(), 200)

    def initiate(self, key: str, content_type: str, meta: dict[str, str] | None, storage_class: str | None) -> Reply:
        """InitiateMultipartUpload (200)."""

        def build(b: Any) -> Any:
            return b.initiate_multipart_upload_request(
                key, content_type=content_type, x_qs_meta_data=meta, x_qs_storage_class=storage_class
            )

        return self._sent("InitiateMultipartUpload", key, build, 200)

    def copy_part(
        self, key: str, upload_id: str, part_number: int, source: str, byte_range: str, if_match: str
    ) -> Reply:
        """UploadMultipart with ``x-qs-copy-source`` (``/<bucket>/<key>``, quoted by the SDK),
        ``x-qs-copy-range`` and ``x-qs-copy-source-if-match`` (201). The docs promise no ETag in the answer."""

        def build(b: Any) -> Any:
            return b.upload_multipart_request(
                key,
                part_number=str(part_number),
                upload_id=upload_id,
                x_qs_copy_source=source,
                x_qs_copy_range=byte_range,
                x_qs_copy_source_if_match=if_match,
            )

        return self._sent("CopyObjectPart", key, build, 201)

    def list_parts_page(self, key: str, upload_id: str, limit: int, marker: str | None) -> Reply:
        """One page of ListMultipart (200) after the part number ``marker``."""

        def build(b: Any) -> Any:
            return b.list_multipart_request(key, limit=str(limit), part_number_marker=marker, upload_id=upload_id)

        return self._sent("ListMultipart", key, build, 200)

    def complete(self, key: str, upload_id: str, etag: str, object_parts: list[dict[str, Any]]) -> None:
        """CompleteMultipartUpload (201); ``etag`` is sent quoted as the ETag request header."""

        def build(b: Any) -> Any:
            return b.complete_multipart_upload_request(
                key, upload_id=upload_id, etag=f'"{etag}"', object_parts=object_parts
            )

        self._send("CompleteMultipartUpload", key, build, 201)

    def abort(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload (204); 404 ``upload_not_exists`` counts as done (already gone)."""
        self._send(
            "AbortMultipartUpload",
            key,
            lambda b: b.abort_multipart_upload_request(key, upload_id=upload_id),
            204,
            missing_ok=lambda status, code: status == 404 and code == "upload_not_exists",
        )

    def list_uploads_page(self, prefix: str, limit: int, key_marker: str | None, id_marker: str | None) -> Reply:
        """One page of ListMultipartUploads (200) after (``key_marker``, ``id_marker``)."""

        def build(b: Any) -> Any:
            return b.list_multipart_uploads_request(
                limit=str(limit), prefix=prefix or None, key_marker=key_marker, upload_id_marker=id_marker
            )

        return self._sent("ListMultipartUploads", prefix, build, 200)

    def _sent(self, operation: str, key: str, build: Callable[[Any], Any], ok: int) -> Reply:
        result = self._send(operation, key, build, ok)
        assert result is not None  # no missing_ok: every other status raised
        return result

    def _send(
        self,
        operation: str,
        key: str,
        build: Callable[[Any], Any],
        ok: int,
        *,
        missing_ok: MissingOk | None = None,
    ) -> Reply | None:
        """Build (``build(bucket)``), sign and send one request; return the unpacked response or raise.

        ``missing_ok(status, code)`` returning True turns that error into ``None``.
        """
        client = self._clients.get()
        try:
            request = build(client.bucket)
            request.req.headers["Date"] = formatdate(usegmt=True)  # locale-independent
            prepared = request.sign()
            response = client.session.send(prepared, timeout=self._timeout)
            result = unpack(response)
        except ShortBodyError as exc:
            raise shrank(operation, key, exc) from None
        except (ParameterRequiredError, ParameterValueNotAllowedError) as exc:
            raise BadRequest(
                f"{operation} {key!r} failed: invalid request ({exc})",
                code="invalid_request",
                operation=operation,
                key=key,
            ) from None
        except (requests.RequestException, Urllib3HTTPError, OSError) as exc:
            raise transport_failure(exc, operation, key, self._contacted) from None
        return self._judge(operation, key, result, ok, missing_ok)
