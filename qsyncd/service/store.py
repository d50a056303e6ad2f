"""The configured store as a ``Remote``: ``[qingstor]`` or ``[s3]`` (each SDK is imported only when its store is made).

Its own module so that both the daemon and the periodic verify's child process (``reverify``) can build one.
"""

from __future__ import annotations

from qsyncd.config import Config, S3Config
from qsyncd.remote.base import Remote


def make_remote(cfg: Config) -> Remote:
    """The configured store: ``[qingstor]`` or ``[s3]`` (each SDK is imported only when its store is made)."""
    store = cfg.store
    if isinstance(store, S3Config):
        from qsyncd.remote.s3 import S3Remote

        return S3Remote(
            endpoint=store.endpoint,
            region=store.region,
            bucket=store.bucket,
            access_key_id=store.access_key_id,
            secret_access_key=store.secret_access_key,
            addressing_style=store.addressing_style,
            connect_timeout=store.connect_timeout_seconds,
            read_timeout=store.read_timeout_seconds,
            max_connections=cfg.upload.concurrency * (1 + cfg.upload.part_concurrency),
        )
    from qsyncd.remote.qingstor import QingStorRemote

    return QingStorRemote(
        endpoint=store.endpoint,
        zone=store.zone,
        bucket=store.bucket,
        access_key_id=store.access_key_id,
        secret_access_key=store.secret_access_key,
        connect_timeout=store.connect_timeout_seconds,
        read_timeout=store.read_timeout_seconds,
    )
