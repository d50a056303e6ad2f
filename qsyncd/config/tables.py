"""The store-independent tables with one value each: ``[state]``, ``[settle]``, ``[upload]``, ``[log]``,
``[metrics]``, ``[watchdog]`` and ``[verify]``. Defaults come from the dataclasses in ``model``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qsyncd.config.convs import abs_path, as_bool, int_range, listen, non_negative, positive, size
from qsyncd.config.messages import toml_value
from qsyncd.config.model import (
    MAX_CONCURRENCY,
    MAX_PART_RETRIES,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    LogConfig,
    MetricsConfig,
    SettleConfig,
    StateConfig,
    UploadConfig,
    VerifyConfig,
    WatchdogConfig,
    default_stall_seconds,
)
from qsyncd.config.readers import Errors, Table, section
from qsyncd.config.sizes import format_size


def default_state_dir(env: Mapping[str, str]) -> Path:
    """$STATE_DIRECTORY (systemd StateDirectory=, first entry), else $XDG_STATE_HOME/qsyncd,
    else ~/.local/state/qsyncd."""
    sd = env.get("STATE_DIRECTORY", "")
    if sd:
        first = sd.split(":")[0]
        if first:
            return Path(first).resolve()
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return (Path(xdg) / "qsyncd").resolve()
    home = env.get("HOME") or os.path.expanduser("~")
    return (Path(home) / ".local" / "state" / "qsyncd").resolve()


def read_state(data: Mapping[str, Any], env: Mapping[str, str], errors: Errors) -> StateConfig:
    st = Table("[state]", section(data, "state", errors), errors, StateConfig)
    return StateConfig(dir=st.get("dir", abs_path(env), None) or default_state_dir(env))


def read_settle(data: Mapping[str, Any], errors: Errors) -> SettleConfig:
    se = Table("[settle]", section(data, "settle", errors), errors, SettleConfig)
    quiet = se.get("quiet_seconds", non_negative)
    max_wait = se.get("max_wait_seconds", positive)
    rescan = se.get("rescan_interval_seconds", positive)
    share = se.get("rescan_cpu_share", non_negative)
    if max_wait < quiet:
        errors.add(f"[settle] max_wait_seconds = {max_wait:g}: must be at least quiet_seconds ({quiet:g})")
    if share > 1:
        errors.add(f"[settle] rescan_cpu_share = {share:g}: a share of one core, from 0 (no limit) to 1")
    return SettleConfig(
        quiet_seconds=quiet, max_wait_seconds=max_wait, rescan_interval_seconds=rescan, rescan_cpu_share=share
    )


def read_upload(data: Mapping[str, Any], errors: Errors) -> UploadConfig:
    up = Table("[upload]", section(data, "upload", errors), errors, UploadConfig)
    threshold = up.get("multipart_threshold", size)
    if "multipart_threshold" in up.data and not 1 <= threshold <= MAX_PART_SIZE:
        errors.add(
            f"[upload] multipart_threshold = {toml_value(up.data['multipart_threshold'])}: "
            "must be between 1 byte and 5 GiB (the largest single PUT)"
        )
    part_size = up.get("part_size", size)
    if "part_size" in up.data:
        shown = f"[upload] part_size = {toml_value(up.data['part_size'])}"
        if part_size < MIN_PART_SIZE:
            errors.add(f"{shown}: must be at least {format_size(MIN_PART_SIZE)} (got {format_size(part_size)})")
        elif part_size > MAX_PART_SIZE:
            errors.add(f"{shown}: must be at most {format_size(MAX_PART_SIZE)} (got {format_size(part_size)})")
    concurrency = up.get("concurrency", int_range(1, MAX_CONCURRENCY))
    part_concurrency = up.get("part_concurrency", int_range(1, MAX_CONCURRENCY))
    storage_class = up.choice("storage_class")
    max_bps = up.optional("max_bytes_per_second", size) or None  # 0 means "no limit", same as leaving it out
    retry_initial = up.get("retry_initial_seconds", positive)
    retry_max = up.get("retry_max_seconds", positive)
    if retry_max < retry_initial:
        errors.add(
            f"[upload] retry_max_seconds = {retry_max:g}: must be at least retry_initial_seconds ({retry_initial:g})"
        )
    return UploadConfig(
        multipart_threshold=threshold,
        part_size=part_size,
        concurrency=concurrency,
        part_concurrency=part_concurrency,
        storage_class=storage_class,
        max_bytes_per_second=max_bps,
        retry_initial_seconds=retry_initial,
        retry_max_seconds=retry_max,
        part_retries=up.get("part_retries", int_range(0, MAX_PART_RETRIES)),
        permanent_retry_seconds=up.get("permanent_retry_seconds", positive),
        store_metadata=up.get("store_metadata", as_bool),
    )


def read_log(data: Mapping[str, Any], errors: Errors) -> LogConfig:
    lg = Table("[log]", section(data, "log", errors), errors, LogConfig)
    return LogConfig(format=lg.choice("format"), level=lg.choice("level"))


def read_metrics(data: Mapping[str, Any], errors: Errors) -> MetricsConfig:
    me = Table("[metrics]", section(data, "metrics", errors), errors, MetricsConfig)
    return MetricsConfig(listen=me.optional("listen", listen))


def read_watchdog(data: Mapping[str, Any], read_timeout_seconds: float, errors: Errors) -> WatchdogConfig:
    """``[watchdog]``; ``read_timeout_seconds`` is the store table's (the default depends on it)."""
    wd = Table("[watchdog]", section(data, "watchdog", errors), errors, WatchdogConfig)
    return WatchdogConfig(stall_seconds=wd.get("stall_seconds", positive, default_stall_seconds(read_timeout_seconds)))


def read_verify(data: Mapping[str, Any], errors: Errors) -> VerifyConfig:
    ve = Table("[verify]", section(data, "verify", errors), errors, VerifyConfig)
    return VerifyConfig(interval_seconds=ve.get("interval_seconds", non_negative))
