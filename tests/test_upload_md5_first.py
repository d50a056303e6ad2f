"""A store that keeps the file's MD5 from initiate on (``needs_md5_at_initiate``, S3) is given it there.

S3 cannot take the whole-file MD5 at Complete (a multipart ETag is md5(part MD5s)-N and metadata is
fixed at CreateMultipartUpload), so the uploader hashes a large file before it initiates the upload
and passes ``md5_hex``. A store like QingStor (the flag off) gets ``None`` and the parts are hashed
while they are sent, as before.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import structlog
from qsynctest.memremote import MemRemote

from qsyncd.config import UploadConfig
from qsyncd.state import Ledger
from qsyncd.upload import Uploader

MiB = 1 << 20
SETTINGS = UploadConfig(multipart_threshold=8 * MiB, part_size=4 * MiB, part_concurrency=2)


class Recording(MemRemote):
    """A MemRemote that says whether it needs the MD5 at initiate and records what it was given."""

    def __init__(self, needs: bool) -> None:
        super().__init__()
        self.needs_md5_at_initiate = needs
        self.given: list[str | None] = []

    def initiate(self, key: str, **kw: Any) -> str:
        self.given.append(kw.get("md5_hex"))
        return super().initiate(key, **kw)


@pytest.mark.parametrize("needs", [True, False])
def test_initiate_gets_the_whole_file_md5_when_the_store_needs_it(tmp_path: Path, needs: bool) -> None:
    f = tmp_path / "big.bin"
    data = os.urandom(13 * MiB + 3)
    f.write_bytes(data)
    remote = Recording(needs)
    ledger = Ledger(tmp_path / "state")
    out = Uploader(remote, ledger, SETTINGS, log=structlog.get_logger()).upload(str(f), "big.bin")
    md5 = hashlib.md5(data).hexdigest()
    assert ("uploaded", 4, md5) == (out.action, out.parts, out.md5)
    assert [md5 if needs else None] == remote.given
    info = remote.head("big.bin")
    assert info is not None and md5 == info.etag
    ledger.close()
