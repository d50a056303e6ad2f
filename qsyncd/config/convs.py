"""Converters for one key's value: ``conv(name, value)`` returns the typed value or raises ``Invalid``.

``name`` is the key with its table (``[upload] part_size``) and starts every message. Store-specific
checks (endpoint, zone, bucket) live with their store table in ``stores``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qsyncd import prefixes
from qsyncd.config.messages import Invalid, describe, toml_value
from qsyncd.config.sizes import parse_size

_HOSTPORT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$")


def as_str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise Invalid(f"{name}: expected a string, got {describe(v)}")
    return v


def secret_str(name: str, v: Any) -> str:
    if not isinstance(v, str):  # never echo the value: it is a secret
        raise Invalid(f"{name}: expected a string")
    return v


def as_bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise Invalid(f"{name}: expected true or false, got {describe(v)}")
    return v


def as_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise Invalid(f"{name}: expected an integer, got {describe(v)}")
    return v


def as_number(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Invalid(f"{name}: expected a number, got {describe(v)}")
    if math.isnan(v) or math.isinf(v):
        raise Invalid(f"{name} = {v}: must be a finite number")
    return float(v)


def positive(name: str, v: Any) -> float:
    """A number greater than 0 (seconds, mostly)."""
    n = as_number(name, v)
    if n <= 0:
        raise Invalid(f"{name} = {toml_value(v)}: must be greater than 0")
    return n


def non_negative(name: str, v: Any) -> float:
    """A number of at least 0."""
    n = as_number(name, v)
    if n < 0:
        raise Invalid(f"{name} = {toml_value(v)}: must not be negative")
    return n


def int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name: str, v: Any) -> int:
        n = as_int(name, v)
        if not lo <= n <= hi:
            raise Invalid(f"{name} = {n}: must be between {lo} and {hi}")
        return n

    return check


def choice(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, v: Any) -> str:
        s = as_str(name, v)
        if s not in choices:
            alts = ", ".join(toml_value(c) for c in choices)
            raise Invalid(f"{name} = {toml_value(s)}: must be one of {alts}")
        return s

    return check


def glob_list(name: str, v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        raise Invalid(f"{name}: expected an array of globs, got {describe(v)}; write [{toml_value(v)}]")
    if not isinstance(v, list):
        raise Invalid(f"{name}: expected an array of globs, got {describe(v)}")
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise Invalid(f"{name}: item {i + 1} must be a string, got {describe(item)}")
        if not item:
            raise Invalid(f"{name}: item {i + 1} is an empty glob")
        out.append(item)
    return tuple(out)


def size(name: str, v: Any) -> int:
    return parse_size(v, name)


def listen(name: str, v: Any) -> str:
    s = as_str(name, v)
    m = _HOSTPORT_RE.match(s)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise Invalid(f'{name} = {toml_value(s)}: must be "host:port" with a port 1-65535, e.g. "127.0.0.1:9464"')
    host = m.group(1)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise Invalid(f"{name} = {toml_value(s)}: {host} is not an IPv6 address") from None
    return s


def abs_path(env: Mapping[str, str]) -> Callable[[str, Any], Path]:
    """An absolute path, or one starting with ``~/`` (``$HOME`` from ``env``), resolved."""

    def check(name: str, v: Any) -> Path:
        s = as_str(name, v)
        if not s:
            raise Invalid(f"{name}: must not be empty")
        if s.startswith("~"):
            home = env.get("HOME") or os.path.expanduser("~")
            s = home + s[1:] if s == "~" or s.startswith("~/") else os.path.expanduser(s)
        p = Path(s)
        if not p.is_absolute():
            raise Invalid(f"{name} = {toml_value(v)}: must be an absolute path (or start with ~/)")
        return p.resolve()

    return check


def key_prefix(name: str, v: Any) -> str:
    """An object key prefix: "" or "dir/sub/" ("/" added), with ``{hostname}`` replaced.

    ``{mtime:FORMAT}`` fields stay in the prefix (``qsyncd.prefixes``): each file's key fills them in.
    The checks below apply to the text as written and to the prefix expanded for a few dates.
    """
    s = as_str(name, v)
    try:
        s = prefixes.resolve(s, socket.gethostname)
    except prefixes.PrefixError as err:
        raise Invalid(f"{name} = {toml_value(v)}: {err}") from None
    if s and not s.endswith("/"):
        s += "/"
    for expanded in prefixes.samples(s) if prefixes.is_template(s) else [s]:
        _check_prefix(name, v, expanded)
    return s


def fixed_key_prefix(name: str, v: Any) -> str:
    """A key prefix without ``{mtime:...}`` fields ("" or "dir/sub/"), e.g. where kept versions go."""
    s = key_prefix(name, v)
    if prefixes.is_template(s):
        raise Invalid(f"{name} = {toml_value(v)}: takes no {{mtime:...}} field (only {{hostname}})")
    return s


def _check_prefix(name: str, v: Any, s: str) -> None:
    if s.startswith("/"):
        raise Invalid(f'{name} = {toml_value(v)}: must not start with "/" (object keys are relative to the bucket)')
    if "//" in s:
        raise Invalid(f'{name} = {toml_value(v)}: must not contain "//"')
    parts = s.rstrip("/").split("/") if s else []
    if any(p in (".", "..") for p in parts):
        raise Invalid(f'{name} = {toml_value(v)}: must not contain "." or ".." components')
