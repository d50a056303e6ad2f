"""The store tables: where objects go. A config file has exactly one of them.

Each store is one entry of ``STORE_TABLES``: its TOML table name, its frozen dataclass and the function
that reads it: ``[qingstor]`` and ``[s3]`` (any S3-compatible store: AWS S3, MinIO, Ceph RGW, R2,
SeaweedFS, QingStor's S3 endpoint). Credentials come the same four ways for every store (``credentials``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from qsyncd.config.convs import as_str, positive
from qsyncd.config.credentials import credential_keys, read_access_key_id, read_secret
from qsyncd.config.messages import Invalid, toml_value
from qsyncd.config.readers import Errors, Table, field_defaults, section

_ENDPOINT_RE = re.compile(r"^(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?/?$")
_ZONE_RE = re.compile(r"^[a-z0-9-]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{4,61}[a-z0-9]$")
_S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z0-9-]+$")


class StoreConfig(Protocol):
    """What every store table holds (``Config.store``)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def bucket(self) -> str: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def secret_access_key(self) -> str: ...
    @property
    def connect_timeout_seconds(self) -> float: ...
    @property
    def read_timeout_seconds(self) -> float: ...


@dataclass(frozen=True, kw_only=True)
class QingStorConfig:
    """``[qingstor]``: where objects go and with which credentials."""

    endpoint: str = "https://qingstor.com"
    zone: str
    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0


DEFAULT_ENDPOINT: str = field_defaults(QingStorConfig)["endpoint"]


@dataclass(frozen=True, kw_only=True)
class S3Config:
    """``[s3]``: an S3-compatible store, its bucket and the credentials."""

    endpoint: str
    region: str
    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0


# --------------------------------------------------------------------------------------------
# Value checks
# --------------------------------------------------------------------------------------------


def endpoint_url(name: str, v: Any) -> str:
    """``http(s)://host[:port]`` with no path or query (a trailing "/" is dropped)."""
    s = as_str(name, v)
    m = _ENDPOINT_RE.match(s)
    if not m or (m.group(3) is not None and not 1 <= int(m.group(3)) <= 65535):
        raise Invalid(
            f"{name} = {toml_value(s)}: must be http(s)://host[:port] with no path or query, "
            'e.g. "https://qingstor.com" or "http://127.0.0.1:9000"'
        )
    return s.rstrip("/")


def ip_literal_host(endpoint: str) -> str | None:
    """The host of a valid ``endpoint`` when it is an IP address (as written, IPv6 in brackets), else None."""
    m = _ENDPOINT_RE.match(endpoint)
    if not m:
        return None
    host = m.group(2)
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return host


def qingstor_zone(name: str, v: Any) -> str:
    s = as_str(name, v)
    if s and not _ZONE_RE.match(s):
        raise Invalid(f'{name} = {toml_value(s)}: must be lower-case letters, digits and "-" (e.g. "pek3a"), or ""')
    return s


def qingstor_bucket(name: str, v: Any) -> str:
    s = as_str(name, v)
    if not _BUCKET_RE.match(s):
        raise Invalid(
            f'{name} = {toml_value(s)}: a bucket name is 6-63 characters of a-z, 0-9 and "-", '
            "starting and ending with a letter or digit"
        )
    return s


def s3_region(name: str, v: Any) -> str:
    s = as_str(name, v)
    if not _REGION_RE.match(s):
        raise Invalid(
            f'{name} = {toml_value(s)}: must be the bucket\'s region, lower-case letters, digits and "-" '
            '(e.g. "eu-central-1"; "us-east-1" for MinIO and SeaweedFS, "auto" for R2)'
        )
    return s


def is_s3_bucket_name(s: str) -> bool:
    """S3's rule: 3-63 of a-z, 0-9, "." and "-", a letter or digit at each end, no ".."."""
    return bool(_S3_BUCKET_RE.match(s)) and ".." not in s


def s3_bucket(name: str, v: Any) -> str:
    s = as_str(name, v)
    if not is_s3_bucket_name(s):
        raise Invalid(
            f'{name} = {toml_value(s)}: an S3 bucket name is 3-63 characters of a-z, 0-9, "." and "-", '
            "starting and ending with a letter or digit"
        )
    return s


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------

StoreReader = Callable[[Mapping[str, Any], Mapping[str, str], Path | None, Errors, list[str]], Any]


def store_keys(model: type) -> list[str]:
    """The keys of a store table: its dataclass fields and ``secret_access_key_file``."""
    return credential_keys([f.name for f in dataclasses.fields(model)])


@dataclass(frozen=True)
class StoreTable:
    """One kind of store: the TOML table that configures it and how that table is read."""

    name: str  # "qingstor" for [qingstor]
    model: type
    read: StoreReader  # (table data, env, source, errors, warnings) -> the store's config, or None if invalid


def read_qingstor(
    raw: Mapping[str, Any], env: Mapping[str, str], source: Path | None, errors: Errors, warnings: list[str]
) -> QingStorConfig | None:
    """``[qingstor]`` (``raw`` is {} when the table is missing: each required key is then reported)."""
    qs = Table("[qingstor]", raw, errors, QingStorConfig, store_keys(QingStorConfig))
    endpoint = qs.get("endpoint", endpoint_url)
    zone = qs.require("zone", qingstor_zone)
    ip_host = ip_literal_host(endpoint)
    if zone and ip_host:
        errors.add(
            f"{qs.name('zone')} = {toml_value(zone)}: the zone is put in front of the endpoint's host name "
            f"({zone}.{ip_host}), and endpoint = {toml_value(endpoint)} is an IP address, so that name never "
            'resolves: set zone = "" for an emulator or any endpoint that serves one zone'
        )
    bucket = qs.require("bucket", qingstor_bucket)
    access_key_id = read_access_key_id(qs, env, errors)
    secret = read_secret(qs, env, source, errors, warnings)
    connect_timeout = qs.get("connect_timeout_seconds", positive)
    read_timeout = qs.get("read_timeout_seconds", positive)
    if zone is None or bucket is None or not access_key_id or not secret:
        return None
    return QingStorConfig(
        endpoint=endpoint,
        zone=zone,
        bucket=bucket,
        access_key_id=access_key_id,
        secret_access_key=secret,
        connect_timeout_seconds=connect_timeout,
        read_timeout_seconds=read_timeout,
    )


def read_s3(
    raw: Mapping[str, Any], env: Mapping[str, str], source: Path | None, errors: Errors, warnings: list[str]
) -> S3Config | None:
    """``[s3]``: the endpoint, region and bucket are required (S3 has no one default endpoint)."""
    t = Table("[s3]", raw, errors, S3Config, store_keys(S3Config))
    endpoint = t.require("endpoint", endpoint_url)
    region = t.require("region", s3_region)
    bucket = t.require("bucket", s3_bucket)
    style = t.choice("addressing_style")
    if endpoint is not None and style == "virtual" and ip_literal_host(endpoint):
        errors.add(
            f'{t.name("addressing_style")} = "virtual": the bucket is put in front of the endpoint\'s host name, '
            f"and endpoint = {toml_value(endpoint)} is an IP address, so that name never resolves: "
            'use addressing_style = "path" (or "auto")'
        )
    access_key_id = read_access_key_id(t, env, errors)
    secret = read_secret(t, env, source, errors, warnings)
    connect_timeout = t.get("connect_timeout_seconds", positive)
    read_timeout = t.get("read_timeout_seconds", positive)
    if endpoint is None or region is None or bucket is None or not access_key_id or not secret:
        return None
    return S3Config(
        endpoint=endpoint,
        region=region,
        bucket=bucket,
        access_key_id=access_key_id,
        secret_access_key=secret,
        addressing_style=style,
        connect_timeout_seconds=connect_timeout,
        read_timeout_seconds=read_timeout,
    )


STORE_TABLES: dict[str, StoreTable] = {
    "qingstor": StoreTable("qingstor", QingStorConfig, read_qingstor),
    "s3": StoreTable("s3", S3Config, read_s3),
}
DEFAULT_STORE = "qingstor"  # the table whose missing keys are reported when a file names no store


def read_store(
    data: Mapping[str, Any], env: Mapping[str, str], source: Path | None, errors: Errors, warnings: list[str]
) -> tuple[str, Any]:
    """(table name, its config or None) for the one store table in ``data``; naming two is an error."""
    present = [name for name in STORE_TABLES if name in data]
    if len(present) > 1:
        tables = " and ".join(f"[{name}]" for name in present)
        errors.add(f"{tables}: a config file names exactly one store; remove all but one of these tables")
    name = present[0] if present else DEFAULT_STORE
    return name, STORE_TABLES[name].read(section(data, name, errors), env, source, errors, warnings)
