"""Requests go through an HTTP proxy from the environment, both the SDK-built ones and the ones
qsyncd signs itself (HEAD, PutObject, UploadMultipart, ListObjects).

The endpoint's host name does not resolve (``.invalid``); the only way to reach anything is the proxy
named in ``HTTP_PROXY``, which is the emulator itself (it accepts absolute-form request lines, as a
proxy forwarding them would pass on). Its request log shows every request arrived.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

import pytest
from qsynctest import ACCESS_KEY, BUCKET, SECRET, md5_b64, md5_hex
from remote_support import proxy_through

from qsyncd.remote.base import PartInfo
from qsyncd.remote.qingstor import QingStorRemote


def test_every_operation_goes_through_the_environment_proxy(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With HTTP_PROXY set, an unresolvable endpoint still works: every request went via the proxy."""
    port = urlsplit(emulator.url).port
    proxy_through(monkeypatch, emulator.url)
    remote = QingStorRemote(
        endpoint=f"http://qsyncd-test.invalid:{port}",
        zone="",
        bucket=BUCKET,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET,
        connect_timeout=2,
        read_timeout=10,
    )
    try:
        emulator.clear_requests()
        remote.probe()  # SDK-built
        small = b"through the proxy"
        hex_small, b64_small = md5_hex(small), md5_b64(small)
        assert remote.put("p/small.txt", io.BytesIO(small), len(small), b64_small) == hex_small  # self-signed
        info = remote.head("p/small.txt")  # self-signed
        assert info is not None and info.etag == hex_small
        assert [o.key for o in remote.list_objects("p/", "/")] == ["p/small.txt"]  # self-signed
        part = b"x" * (4 << 20)
        hex_part, b64_part = md5_hex(part), md5_b64(part)
        upload_id = remote.initiate("p/big.bin")  # SDK-built
        assert remote.upload_part("p/big.bin", upload_id, 0, io.BytesIO(part), len(part), b64_part) == hex_part
        remote.complete("p/big.bin", upload_id, [PartInfo(0, len(part), hex_part)], hex_part)  # SDK-built
        assert emulator.object_bytes(BUCKET, "p/big.bin") == part
    finally:
        remote.close()
    operations = [r.operation for r in emulator.requests]
    for op in (
        "HeadBucket",
        "PutObject",
        "HeadObject",
        "ListObjects",
        "InitiateMultipartUpload",
        "UploadMultipart",
        "CompleteMultipartUpload",
    ):
        assert op in operations, (op, operations)
