"""The hand-signed transport: the requests sent once per file or part, signed by qsyncd, sent on the SDK's pool.

HeadObject, PutObject, UploadMultipart and ListObjects are sent once per file or part, and so are a
copy or move (PutObject with ``x-qs-copy-source`` / ``x-qs-move-source``: once per renamed file, and
qingstor-sdk 2.6.0 has no parameter for ``x-qs-move-source-if-match``); GetBucketVersioning is here
because the SDK has no call for it at all. Building an SDK
request (Builder, requests' prepare, Session.send) cost more CPU than sending a 16 KiB file, so qsyncd
signs them itself (``signature.py``, pinned to the SDK's output by ``tests/remote/test_remote_signature.py``)
and sends them on the same session's urllib3 pool (``qingstor_sdk.Clients``: same proxies, TLS settings
and kept-alive connections).

* header values are always ``str``; bodies are ``SizedBody`` iterables (1 MiB reads, exact
  Content-Length, never chunked); on a plain-HTTP endpoint the pool's connections are
  ``SpliceHTTPConnection`` and file bodies go out with sendfile(2);
* no retries and no redirects at this level (qsyncd retries higher up); the pool's timeout is
  ``(connect_timeout, read_timeout)``;
* a JSON body (an error, a listing) is parsed only when the Content-Type says JSON.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from urllib3 import Timeout
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from qsyncd import __version__
from qsyncd.remote.body import ShortBodyError, SizedBody, shrank
from qsyncd.remote.endpoint import ZoneSite
from qsyncd.remote.qingstor_reply import Judge, MissingOk, Reply, transport_failure
from qsyncd.remote.qingstor_sdk import Clients, Timeouts
from qsyncd.remote.signature import Signer, bucket_path, canonical_resource, object_path, query_string

USER_AGENT = f"qsyncd/{__version__} (Python {platform.python_version()}; {sys.platform})"


class FastTransport:
    """Signs and sends one request without building SDK objects."""

    def __init__(
        self,
        clients: Clients,
        site: ZoneSite,
        bucket: str,
        signer: Signer,
        timeout: Timeouts,
        judge: Judge,
    ) -> None:
        self._clients = clients
        self._bucket_name = bucket
        self._host = site.host
        self._base_url = site.base_url
        self._contacted = site.contacted
        self._signer = signer
        self._pool_timeout = Timeout(connect=timeout[0], read=timeout[1])
        self._judge = judge

    def sign(
        self, method: str, key: str | None, headers: dict[str, str], query: Sequence[tuple[str, str]], date: str = ""
    ) -> str:
        """Add Date, Host, User-Agent and Authorization to ``headers``; return the request target
        (path and query, quoted as the SDK quotes them) for the object ``key`` or (None) the bucket."""
        path = bucket_path(self._bucket_name) if key is None else object_path(self._bucket_name, key)
        qs = query_string(query)
        headers["date"] = date or formatdate(usegmt=True)  # locale-independent
        headers["host"] = self._host
        headers["user-agent"] = USER_AGENT
        headers["authorization"] = self._signer.authorization(method, headers, canonical_resource(path, qs))
        return f"{path}?{qs}" if qs else path

    def send(
        self,
        operation: str,
        method: str,
        key: str,
        headers: dict[str, str],
        ok: int,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: SizedBody | None = None,
        missing_ok: MissingOk | None = None,
        bucket_level: bool = False,
    ) -> Reply | None:
        """Sign and send one request; return the reply, ``None`` if ``missing_ok`` accepts the error, or raise.

        The request is for the object ``key``, or for the bucket when ``bucket_level`` (``key`` then
        only names what the request is about in errors). ``headers`` has lower-case names; Date,
        Host, User-Agent and Authorization are added here.
        """
        client = self._clients.get()
        if body is not None and client.splice:
            body.enable_splice()
        url = self.sign(method, None if bucket_level else key, headers, query)
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
            raise shrank(operation, key, exc) from None
        except (Urllib3HTTPError, OSError) as exc:
            raise transport_failure(exc, operation, key, self._contacted) from None
        data: Mapping[str, Any] = {}
        if response.data and "json" in (response.headers.get("Content-Type") or ""):
            try:
                parsed = json.loads(response.data)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                data = parsed
        return self._judge(operation, key, Reply(response.status, data, response.headers), ok, missing_ok)

    def sent(self, operation: str, method: str, key: str, headers: dict[str, str], ok: int, **kw: Any) -> Reply:
        """``send`` for a request that tolerates no error status (its result is never ``None``)."""
        result = self.send(operation, method, key, headers, ok, **kw)
        assert result is not None
        return result

    def copy(self, operation: str, key: str, source: str, if_match: str, *, move: bool) -> Reply:
        """PUT ``key`` with ``x-qs-copy-source`` (or ``x-qs-move-source``) ``/<bucket>/<source>`` URL-encoded
        as the SDK encodes it, conditional on the source's ETag (``...-if-match``), no body (201)."""
        header = "x-qs-move-source" if move else "x-qs-copy-source"
        headers = {
            header: quote(f"/{self._bucket_name}/{source}"),
            f"{header}-if-match": f'"{if_match}"',
            "content-length": "0",
        }
        return self.sent(operation, "PUT", key, headers, 201)

    def versioning(self) -> Reply:
        """GET /<bucket>?versioning (200, ``{"status": "ENABLED" | "SUSPENDED" | "DISABLED"}``)."""
        return self.sent("GetBucketVersioning", "GET", "", {}, 200, query=[("versioning", "")], bucket_level=True)
