"""Fixtures for the QingStorRemote contract suite (see remote_support for how targets are chosen)."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_support import EMU_AKID, EMU_BUCKET, EMU_SECRET, Target, live_settings

from qsyncd.remote.qingstor import QingStorRemote


def _cleanup_live(target: Target) -> None:
    """Abort uploads and delete objects under the test prefix (live QingStor only)."""
    remote = target.remote()
    for upload in remote.list_uploads(target.prefix):
        remote.abort(upload.key, upload.upload_id)
    # Remote has no delete (qsyncd never deletes); use the SDK directly for cleanup.
    from qingstor.sdk.config import Config
    from qingstor.sdk.service.qingstor import QingStor

    from qsyncd.remote.qingstor import parse_endpoint

    ep = parse_endpoint(target.endpoint)
    config = Config(target.access_key_id, target.secret_access_key)
    config.host, config.port, config.protocol = ep.host, ep.port, ep.scheme
    bucket = QingStor(config).Bucket(target.bucket, target.zone)
    listing = bucket.list_objects(prefix=target.prefix, limit="1000")
    for item in listing.get("keys") or []:
        bucket.delete_object(item["key"])


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    """The object store under test: live QingStor if configured, else a fresh emulator."""
    prefix = f"qsyncd-test-{uuid.uuid4().hex[:12]}/"
    live = live_settings()
    if live is not None:
        t = Target(
            endpoint=live["ENDPOINT"],
            zone=live["ZONE"],
            bucket=live["BUCKET"],
            access_key_id=live["ACCESS_KEY_ID"],
            secret_access_key=live["SECRET_ACCESS_KEY"],
            prefix=prefix,
        )
        try:
            yield t
        finally:
            try:
                _cleanup_live(t)
            finally:
                for r in t.remotes:
                    r.close()
        return

    from qsyncd.emulator import Emulator

    # Crash safety is not under test here; skip the emulator's fsyncs when it offers that extra.
    extra = {"fsync": False} if "fsync" in inspect.signature(Emulator).parameters else {}
    emu = Emulator(
        tmp_path / "emu",
        host="127.0.0.1",
        port=0,
        credentials={EMU_AKID: EMU_SECRET},
        buckets=[EMU_BUCKET],
        **extra,
    )
    emu.start()
    t = Target(
        endpoint=emu.url,
        zone="",
        bucket=EMU_BUCKET,
        access_key_id=EMU_AKID,
        secret_access_key=EMU_SECRET,
        prefix=prefix,
        emu=emu,
    )
    try:
        yield t
    finally:
        try:
            for r in t.remotes:
                r.close()
        finally:
            emu.stop()


@pytest.fixture
def emu(target: Target) -> Any:
    """The emulator behind ``target``; skips the test against live QingStor."""
    if target.emu is None:
        pytest.skip("needs the emulator (fault injection / request log / on-disk bytes)")
    return target.emu


@pytest.fixture
def remote(target: Target) -> QingStorRemote:
    """A QingStorRemote with the right credentials for ``target``."""
    return target.remote()
