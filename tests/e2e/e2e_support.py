"""Helpers for the end-to-end suite: byte-exact remote checks, request-log counts and the ``Setup`` world.

Everything here only reads what the emulator stored and logged, or drives real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qsynctest import ACCESS_KEY, BUCKET, REPO, SECRET, md5_b64, md5_hex


def remote_bytes(emu: Any, key: str) -> bytes | None:
    """The stored bytes of ``key`` or None when the bucket has no such object."""
    try:
        return emu.object_bytes(BUCKET, key)
    except KeyError:
        return None


def assert_remote_equals(emu: Any, key: str, expected: bytes) -> None:
    """The object ``key`` holds exactly ``expected``: same bytes and the same MD5."""
    got = remote_bytes(emu, key)
    assert got is not None, f"no object {key!r} in the bucket"
    assert md5_hex(got) == md5_hex(expected), f"{key!r}: remote MD5 {md5_hex(got)} != local {md5_hex(expected)}"
    assert got == expected, f"{key!r}: remote bytes differ from the local file"


def sdk_delete(url: str, key: str) -> None:
    """DeleteObject through the QingStor SDK, signed like any client's."""
    from qingstor.sdk.config import Config
    from qingstor.sdk.service.qingstor import QingStor

    from qsyncd.remote.qingstor import parse_endpoint

    ep = parse_endpoint(url)
    config = Config(ACCESS_KEY, SECRET)
    config.host, config.port, config.protocol = ep.host, ep.port, ep.scheme
    out = QingStor(config).Bucket(BUCKET, "").delete_object(key)
    assert out.status_code == 204, out.status_code


def overwrite(url: str, key: str, data: bytes) -> None:
    """PutObject ``data`` under ``key`` with qsyncd's own signed PUT, as another writer of the bucket would."""
    import io

    from qsyncd.remote.qingstor import QingStorRemote

    remote = QingStorRemote(endpoint=url, zone="", bucket=BUCKET, access_key_id=ACCESS_KEY, secret_access_key=SECRET)
    try:
        remote.put(key, io.BytesIO(data), len(data), md5_b64(data))
    finally:
        remote.close()


def ok(rec: Any) -> bool:
    return 200 <= rec.status < 300


def op_counts(emu: Any, operation: str, *, only_ok: bool = True) -> Counter[str]:
    """How many requests of ``operation`` each key got (successful ones unless ``only_ok`` is False)."""
    return Counter(r.key for r in emu.requests if r.operation == operation and (ok(r) or not only_ok))


def requests_for(emu: Any, key: str, operations: tuple[str, ...] | None = None) -> list[Any]:
    return [r for r in emu.requests if r.key == key and (operations is None or r.operation in operations)]


@dataclass
class Setup:
    """One test's world: the watched tree, the state dir, the emulator and the daemons started."""

    shared: types.ModuleType
    tmp: Path
    root: Path
    state: Path
    emu: Any
    factory: Callable[..., Any]
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config_path = self.tmp / "qsyncd.toml"

    def config(self, *, endpoint: str | None = None, **kw: Any) -> Path:
        """(Re)write the config; keyword arguments go to ``write_config``."""
        kw.setdefault("watch", self.root)
        return self.shared.write_config(self.config_path, endpoint=endpoint or self.emu.url, state=self.state, **kw)

    def daemon(self, *, wait_ready: bool = True, env: dict[str, str] | None = None) -> Any:
        """Start ``qsyncd run`` and wait until the watch is armed and every start-up scan finished."""
        if not self.config_path.exists():
            self.config()
        d = self.factory(self.config_path, env=env).start()
        if wait_ready:
            d.wait_event("daemon_ready", timeout=30)
            roots = d.wait_event("daemon_ready")[0].get("roots", 1)
            d.wait_event("rescan_finished", timeout=30, pred=lambda e: e.get("reason") == "startup", count=roots)
        return d

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``python -m qsyncd ARGS -c CONFIG`` to completion."""
        if not self.config_path.exists():
            self.config()
        return subprocess.run(
            [sys.executable, "-m", "qsyncd", *args, "-c", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(REPO),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def key(self, path: Path, prefix: str = "") -> str:
        return prefix + path.relative_to(self.root).as_posix()

    def wait_uploaded(self, d: Any, keys: list[str] | set[str], timeout: float = 60) -> None:
        """Wait until an ``upload_finished`` (or ``upload_skipped``, or a server-side copy's) event names each key."""
        want = set(keys)

        def done() -> bool:
            seen = {e.get("key") for e in d.events("upload_finished")}
            seen |= {e.get("key") for e in d.events("upload_skipped")}
            seen |= {e.get("key") for e in d.events("object_copied") + d.events("object_moved")}  # renames
            return want <= seen

        try:
            self.shared.wait_for(done, timeout=timeout, interval=0.2, what=f"{len(want)} uploads")
        except AssertionError:
            seen = {e.get("key") for e in d.events("upload_finished")}
            missing = sorted(want - seen)
            raise AssertionError(f"{len(missing)} keys never uploaded, e.g. {missing[:5]}\n{d.tail()}") from None

    def assert_no_secret(self, *texts: str) -> None:
        for t in texts:
            assert self.shared.SECRET not in t, "the secret key leaked into output"
