"""Load and validate ``qsyncd.toml`` into frozen dataclasses.

Everything the daemon can be told lives here: one ``Config`` built by ``load_config()`` (or
``parse_config()`` for tests), with every limit as a field rather than a global. Every problem is a
``ConfigError`` whose message names the key with its table (``[upload] part_size = "3MiB": must be at
least 4 MiB``); all problems in a file are reported at once, one per line. The secret access key is
never put into a message or ``repr``; ``Config.redacted()`` is the safe view for ``check-config``.

The modules: ``model`` (the dataclasses, each default written once on its field), ``stores`` (the store
tables, exactly one per file), ``credentials`` (the four ways to give a secret), ``watch`` (``[[watch]]``),
``tables`` (the other tables), ``readers``/``convs``/``sizes``/``messages`` (reading one value), and
``load`` (the file and the whole).
"""

from __future__ import annotations

from qsyncd.config.credentials import ENV_ACCESS_KEY, ENV_SECRET, SECRET_CREDENTIAL_NAME
from qsyncd.config.load import load_config, parse_config
from qsyncd.config.model import (
    DEFAULT_EXCLUDES,
    MAX_CONCURRENCY,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    STALL_MARGIN,
    Config,
    LogConfig,
    MetricsConfig,
    SettleConfig,
    StateConfig,
    UploadConfig,
    VerifyConfig,
    WatchConfig,
    WatchdogConfig,
    default_stall_seconds,
)
from qsyncd.config.sizes import GiB, KiB, MiB, TiB, parse_size
from qsyncd.config.stores import DEFAULT_ENDPOINT, STORE_TABLES, QingStorConfig, S3Config, StoreConfig
from qsyncd.config.tables import default_state_dir

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_EXCLUDES",
    "ENV_ACCESS_KEY",
    "ENV_SECRET",
    "MAX_CONCURRENCY",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "SECRET_CREDENTIAL_NAME",
    "STALL_MARGIN",
    "STORE_TABLES",
    "Config",
    "GiB",
    "KiB",
    "LogConfig",
    "MetricsConfig",
    "MiB",
    "QingStorConfig",
    "S3Config",
    "SettleConfig",
    "StateConfig",
    "StoreConfig",
    "TiB",
    "UploadConfig",
    "VerifyConfig",
    "WatchConfig",
    "WatchdogConfig",
    "default_stall_seconds",
    "default_state_dir",
    "load_config",
    "parse_config",
    "parse_size",
]
