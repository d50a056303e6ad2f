"""Shared helpers of the QingStorRemote contract suite (imported by conftest and tests).

By default every test runs the real SDK against a fresh ``qsyncd.emulator.Emulator`` on
127.0.0.1 (tmp root, stopped in teardown). When all of
``QSYNCD_TEST_QINGSTOR_{ENDPOINT,ZONE,BUCKET,ACCESS_KEY_ID,SECRET_ACCESS_KEY}`` are set the same
tests run against live QingStor under a unique key prefix (cleaned up afterwards); tests that need
the emulator (faults, clock skew, on-disk bytes, request log) request the ``emu`` fixture and are
skipped there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import requests

from qsyncd.remote.base import Remote
from qsyncd.remote.qingstor import QingStorRemote
from qsyncd.remote.signature import Signer, bucket_path, canonical_resource

LIVE_VARS = ("ENDPOINT", "ZONE", "BUCKET", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY")
EMU_AKID = "QSYNCDTESTAKID0000001"
EMU_SECRET = "qsyncd-test-secret-0123456789abcdefghijklmnop"
EMU_BUCKET = "qsyncd-test"


def live_settings() -> dict[str, str] | None:
    """The live QingStor settings from the environment, or None when any is missing."""
    values = {name: os.environ.get(f"QSYNCD_TEST_QINGSTOR_{name}", "") for name in LIVE_VARS}
    # ZONE may be set but empty (a zone-less endpoint such as a separately started emulator).
    required = [values[name] for name in LIVE_VARS if name != "ZONE"]
    present = "QSYNCD_TEST_QINGSTOR_ZONE" in os.environ
    return values if all(required) and present else None


def proxy_through(monkeypatch: Any, url: str) -> None:
    """Make ``url`` the environment's HTTP proxy for every plain-HTTP request (no exemptions)."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("http_proxy", url)


@dataclass
class Target:
    """Where the suite runs: connection settings, a per-test key prefix and the emulator if any."""

    endpoint: str
    zone: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    prefix: str
    emu: Any | None = None
    remotes: list[QingStorRemote] = field(default_factory=list)

    def remote(self, **overrides: Any) -> QingStorRemote:
        """A QingStorRemote for this target (closed at teardown); overrides replace settings."""
        settings: dict[str, Any] = {
            "endpoint": self.endpoint,
            "zone": self.zone,
            "bucket": self.bucket,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "connect_timeout": 5.0,
            "read_timeout": 30.0,
        }
        settings.update(overrides)
        remote = QingStorRemote(**settings)
        self.remotes.append(remote)
        return remote

    def key(self, name: str) -> str:
        """A key unique to this test."""
        return self.prefix + name


@dataclass
class Store:
    """One object store under the contract suite: a ``Remote`` on it and what the suite needs besides.

    A new store is one builder in conftest.py (``(request) -> Store``, fixtures via ``request.getfixturevalue``)
    and one entry in ``STORES``.
    """

    name: str
    remote: Remote
    prefix: str  # every key of the test starts with it (unique per test)
    min_part_size: int  # the smallest part other than the last that Complete accepts
    wrong_secret: Callable[[], Remote]  # a Remote with the right key id and a wrong secret
    missing_bucket: Callable[[], Remote]  # a Remote for a bucket that does not exist
    copy_limited: Callable[[int], Remote]  # a Remote on the same bucket with this ``max_copy_size``
    read: Callable[[str], bytes]  # the bytes stored under a key, read with the store's own client
    parts: Callable[[str], int]  # how many parts the object under a key was assembled from (1: one piece)
    set_versioning: Callable[[str], None]  # "ENABLED" or "SUSPENDED", through the store's own API
    delete: Callable[[str], None]  # delete the object under a key, with the store's own client

    def key(self, name: str) -> str:
        """A key unique to this test."""
        return self.prefix + name


def put_versioning(target: Target, status: str) -> None:
    """PUT /<bucket>?versioning ``{"status": ...}`` on the QingStor API (qingstor-sdk 2.6.0 has no call for it)."""
    body = json.dumps({"status": status}).encode()
    headers = {"content-type": "application/json", "date": formatdate(usegmt=True)}
    path = bucket_path(target.bucket)
    signer = Signer(target.access_key_id, target.secret_access_key)
    headers["authorization"] = signer.authorization("PUT", headers, canonical_resource(path, "versioning"))
    reply = requests.put(f"{target.endpoint}{path}?versioning", data=body, headers=headers, timeout=10)
    assert 200 == reply.status_code, reply.text
