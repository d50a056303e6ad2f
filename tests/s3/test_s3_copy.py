"""``S3Remote.copy``/``move`` on SeaweedFS where S3 differs from the contract suite's cases.

The contract suite (tests/remote/test_contract.py) proves copy, move and versioning on every store. These
are the S3-only paths: a source replaced between the HEAD and the copy (the ``CopySourceIfMatch``
condition, 412 -> ``SourceChanged``, on the single copy and on the part copies), an object another tool
wrote (no ``md5chksum``) copied part by part, and a move whose DeleteObject fails.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from qsynctest.seaweed import Seaweed

from qsyncd.errors import AuthError, SourceChanged
from qsyncd.remote.s3 import MD5_META, S3Remote

MiB = 1024 * 1024


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def remote(seaweed: Seaweed, s3_bucket: str) -> Any:
    r = seaweed.remote(s3_bucket, max_copy_size=5 * MiB)
    yield r
    r.close()


def replace_before(remote: S3Remote, seaweed: Seaweed, bucket: str, operation: str, key: str) -> None:
    """Just before the first ``operation`` request goes out, another writer replaces ``key``."""
    done: list[bool] = []

    def replace(**_: Any) -> None:
        if not done:
            done.append(True)
            seaweed.client().put_object(Bucket=bucket, Key=key, Body=b"written by someone else meanwhile")

    remote._client().meta.events.register(f"before-call.s3.{operation}", replace)


@pytest.mark.parametrize(("size", "operation"), [(1000, "CopyObject"), (12 * MiB, "UploadPartCopy")])
def test_a_source_replaced_after_the_head_is_source_changed(
    remote: S3Remote, seaweed: Seaweed, s3_bucket: str, size: int, operation: str
) -> None:
    """The copy is conditional on the ETag the HEAD saw: a source replaced in between fails it with
    SourceChanged; nothing is written at the target and no upload is left."""
    data = os.urandom(size)
    seaweed.client().put_object(Bucket=s3_bucket, Key="src", Body=data)
    replace_before(remote, seaweed, s3_bucket, operation, "src")
    with pytest.raises(SourceChanged) as info:
        remote.copy("src", "dst", etag=md5(data), size=size)
    assert "precondition_failed" == info.value.code
    assert remote.head("dst") is None
    assert [] == remote.list_uploads("")


def test_an_object_without_md5chksum_copied_in_parts_reports_its_md5(
    remote: S3Remote, seaweed: Seaweed, s3_bucket: str
) -> None:
    """A single-PUT object another tool wrote has no md5chksum; its ETag is its MD5, so the part-by-part
    copy (a multipart object, ETag ``-N``) gets md5chksum from it and HEAD still reports the MD5."""
    data = os.urandom(12 * MiB)
    seaweed.client().put_object(Bucket=s3_bucket, Key="foreign", Body=data, Metadata={"origin": "rclone"})
    assert md5(data) == remote.copy("foreign", "copied", etag=md5(data), size=len(data))
    raw = seaweed.client().head_object(Bucket=s3_bucket, Key="copied")
    assert str(raw["ETag"]).strip('"').endswith("-3") and MD5_META in raw["Metadata"]
    info = remote.head("copied")
    assert info is not None and (md5(data), {"origin": "rclone"}) == (info.etag, dict(info.metadata))


def test_a_move_whose_delete_fails_raises_it_and_keeps_the_copy(
    remote: S3Remote, seaweed: Seaweed, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 has no move: copy, then DeleteObject. A refused delete is raised (the caller sees the source is
    still there); the copy at the target stands."""
    data = b"moved in two steps"
    seaweed.client().put_object(Bucket=s3_bucket, Key="old", Body=data)
    copies = remote._copies
    call = copies._call

    def refuse_delete(operation: str, key: str, **params: Any) -> dict[str, Any]:
        if operation == "DeleteObject":
            raise AuthError("DeleteObject refused", status=403, code="permission_denied", operation=operation, key=key)
        return call(operation, key, **params)

    monkeypatch.setattr(copies, "_call", refuse_delete)
    with pytest.raises(AuthError):
        remote.move("old", "new", etag=md5(data), size=len(data))
    new, old = remote.head("new"), remote.head("old")
    assert new is not None and old is not None and md5(data) == new.etag == old.etag
