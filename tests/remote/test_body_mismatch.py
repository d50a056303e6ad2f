"""A ``BodyMismatch`` from any remote sends the file back to settle (``FileChanged``), by type, not by code.

The uploader used to compare error-code strings (QingStor's ``bad_digest``/``incomplete_body``); a
second store has other codes. These run the real ``Uploader`` on the in-memory remote, which raises
a ``BodyMismatch`` whose code is not QingStor's, for a single PUT and for a multipart part.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import structlog
from qsynctest.memremote import MemRemote

from qsyncd.config import UploadConfig
from qsyncd.errors import BodyMismatch, FileChanged
from qsyncd.upload import Uploader

MiB = 1 << 20
SETTINGS = UploadConfig(multipart_threshold=8 * MiB, part_size=4 * MiB, part_concurrency=1)


def _mismatch(operation: str) -> BodyMismatch:
    return BodyMismatch(f"{operation} failed: BadDigest", status=400, code="BadDigest", operation=operation)


@pytest.mark.parametrize(("method", "size"), [("put", 3000), ("upload_part", 12 * MiB)], ids=["put", "part"])
def test_body_mismatch_is_file_changed_and_stores_nothing(ledger: Any, tmp_path: Path, method: str, size: int) -> None:
    """The upload raises FileChanged, nothing is stored, no upload is left, the ledger holds nothing."""
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(size))
    remote = MemRemote()
    remote.store.fail(method, _mismatch(method))
    up = Uploader(remote, ledger, SETTINGS, log=structlog.get_logger())
    with pytest.raises(FileChanged) as info:
        up.upload(str(f), "f.bin")
    assert isinstance(info.value.__cause__, BodyMismatch)
    assert {} == remote.store.objects()
    assert [] == remote.list_uploads("")
    assert ledger.get(str(f)) is None
    assert "f.bin" == up.upload(str(f), "f.bin").key  # once it holds still, it is sent
    assert f.read_bytes() == remote.store.objects()["f.bin"]
