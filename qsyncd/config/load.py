"""Turn a TOML file (``load_config``) or parsed TOML (``parse_config``) into a validated ``Config``.

Every problem in a file is reported at once, one per line, each naming the key with its table; a
message about the file names it by its absolute path.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qsyncd.config.messages import toml_value
from qsyncd.config.model import MIN_S3_PART_SIZE, Config
from qsyncd.config.readers import Errors, field_defaults, suggest
from qsyncd.config.sizes import format_size
from qsyncd.config.stores import STORE_TABLES, read_store
from qsyncd.config.tables import (
    read_log,
    read_metrics,
    read_settle,
    read_state,
    read_upload,
    read_verify,
    read_watchdog,
)
from qsyncd.config.watch import read_watches
from qsyncd.errors import ConfigError

OTHER_TABLES = [
    "watch",
    "settle",
    "upload",
    "state",
    "log",
    "metrics",
    "watchdog",
    "verify",
]  # besides the store tables


def parse_config(data: dict[str, Any], *, source: Path | None, env: Mapping[str, str]) -> Config:
    """Validate parsed TOML ``data`` into a ``Config``; ``source`` is only used in messages/warnings."""
    errors = Errors()
    warnings: list[str] = []
    tables = [*STORE_TABLES, *OTHER_TABLES]
    for key in data:
        if key not in tables:
            errors.add(f"[{key}]: unknown table{suggest(key, tables)}")
    store_name, store = read_store(data, env, source, errors, warnings)
    state = read_state(data, env, errors)
    watches = read_watches(data, env, state.dir, errors, warnings)
    settle = read_settle(data, errors)
    upload = read_upload(data, errors)
    log = read_log(data, errors)
    metrics = read_metrics(data, errors)
    read_timeout = (
        store.read_timeout_seconds
        if store is not None
        else field_defaults(STORE_TABLES[store_name].model)["read_timeout_seconds"]
    )
    watchdog = read_watchdog(data, read_timeout, errors)
    verify = read_verify(data, errors)
    if store_name == "s3" and upload.part_size < MIN_S3_PART_SIZE:
        errors.add(
            f"[upload] part_size = {toml_value(data['upload']['part_size'])}: an S3 store needs parts of at least "
            f"{format_size(MIN_S3_PART_SIZE)} (got {format_size(upload.part_size)})"
        )
    errors.raise_if_any(source)
    assert store is not None
    return Config(
        store=store,
        watches=watches,
        settle=settle,
        upload=upload,
        state=state,
        log=log,
        metrics=metrics,
        watchdog=watchdog,
        source=source,
        warnings=tuple(warnings),
        verify=verify,
    )


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Read and validate the TOML file at ``path``; raises ``ConfigError`` saying what to fix."""
    path = Path(path).absolute()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; copy qsyncd.toml.example there and edit it") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    return parse_config(data, source=path, env=env)
