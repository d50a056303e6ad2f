"""Load and validate ``qsyncd.toml`` into frozen dataclasses.

Everything the daemon can be told lives here: one ``Config`` built by ``load_config()`` (or
``parse_config()`` for tests), with every limit as a field rather than a global. Every problem is a
``ConfigError`` whose message names the key with its table (``[upload] part_size = "3MiB": must be at
least 4 MiB``); all problems in a file are reported at once, one per line. The secret access key is
never put into a message or ``repr``; ``Config.redacted()`` is the safe view for ``check-config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import socket
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from qsyncd.errors import ConfigError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

MIN_PART_SIZE = 4 * MiB  # QingStor rejects smaller non-final parts
MAX_PART_SIZE = 5 * GiB  # QingStor's limit for one part and for one PUT
MAX_CONCURRENCY = 256

SECRET_CREDENTIAL_NAME = "qsyncd-secret-key"  # systemd LoadCredential=qsyncd-secret-key:/path
ENV_SECRET = "QSYNCD_SECRET_ACCESS_KEY"
ENV_ACCESS_KEY = "QSYNCD_ACCESS_KEY_ID"

# Matched against the basename (globs with "/" against the path relative to the watch root).
# Each one is a temporary/partial/lock file some common program writes before the real file exists.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "*.tmp",  # generic temp files
    "*.temp",
    "*.part",  # curl -C, wget, Firefox, mc's *.part.minio (mc#1902)
    "*.partial",  # Safari, rsync --partial-dir conventions
    "*.crdownload",  # Chrome
    "*.download",  # Safari bundle
    "*.swp",  # vim swap files
    "*.swx",
    ".*.swp",
    "*~",  # editor backups
    "~$*",  # MS Office owner files
    ".~lock.*#",  # LibreOffice locks
    ".#*",  # emacs locks
    "#*#",  # emacs autosave
    "*.filepart",  # WinSCP
    ".goutputstream-*",  # GLib atomic writes
    ".nfs*",  # NFS silly-renamed deleted files
    ".fuse_hidden*",  # FUSE deleted-but-open files
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    ".syncthing.*.tmp",  # Syncthing temp files
    "*.!qB",  # qBittorrent incomplete
    ".Trash-*",  # freedesktop trash dirs
)


# --------------------------------------------------------------------------------------------
# Dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QingStorConfig:
    """Where objects go and with which credentials."""

    endpoint: str
    zone: str
    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    connect_timeout_seconds: float = 10
    read_timeout_seconds: float = 60


@dataclass(frozen=True)
class WatchConfig:
    """One watched directory tree and how its files map to keys."""

    path: Path
    prefix: str = ""
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    recursive: bool = True
    follow_symlinks: bool = False
    after_upload: Literal["keep", "delete"] = "keep"
    watcher: Literal["inotify", "polling"] = "inotify"
    poll_interval_seconds: float = 5
    exclude_defaults: bool = True  # extra: how ``exclude`` was built (already applied)


@dataclass(frozen=True)
class SettleConfig:
    """When a file counts as finished."""

    quiet_seconds: float = 2.0
    max_wait_seconds: float = 300.0
    rescan_interval_seconds: float = 600.0


@dataclass(frozen=True)
class UploadConfig:
    """How files are sent."""

    multipart_threshold: int = 64 * MiB
    part_size: int = 16 * MiB
    concurrency: int = 16
    part_concurrency: int = 4
    storage_class: Literal["STANDARD", "STANDARD_IA"] = "STANDARD"
    max_bytes_per_second: int | None = None
    retry_initial_seconds: float = 1
    retry_max_seconds: float = 300
    part_retries: int = 4
    permanent_retry_seconds: float = 900
    store_metadata: bool = True


@dataclass(frozen=True)
class StateConfig:
    """Where the ledger and the lock live."""

    dir: Path


@dataclass(frozen=True)
class LogConfig:
    """Log format and level."""

    format: Literal["auto", "journal", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True)
class MetricsConfig:
    """The Prometheus endpoint (off unless ``listen`` is set)."""

    listen: str | None = None


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    qingstor: QingStorConfig
    watches: tuple[WatchConfig, ...]
    settle: SettleConfig
    upload: UploadConfig
    state: StateConfig
    log: LogConfig
    metrics: MetricsConfig
    source: Path | None = None
    warnings: tuple[str, ...] = ()

    def redacted(self) -> dict[str, Any]:
        """Everything as plain JSON-able data, with the secret replaced by ``"***"``."""
        data = _plain(dataclasses.asdict(self))
        data["qingstor"]["secret_access_key"] = "***"
        return cast(dict[str, Any], data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kKmMgGtT])(i)?)?\s*([bB])?\s*$")
_BINARY = {"k": KiB, "m": MiB, "g": GiB, "t": TiB}
_DECIMAL = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(value: int | str, key: str) -> int:
    """Parse a size in bytes: ``123``, ``"64MiB"``, ``"8 MB"``, ``"1GiB"``, ``"512k"``.

    ``KiB/MiB/GiB/TiB`` and a bare ``k/M/G/T`` are powers of 1024 (as in rclone and ``ls -h``);
    ``kB/KB/MB/GB/TB`` are SI powers of 1000. ``key`` names the setting in error messages.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f'{key}: expected a size (bytes or a string like "64MiB"), got {_describe(value)}')
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{key} = {value}: a size cannot be negative")
        return value
    m = _SIZE_RE.match(value)
    if not m:
        raise ConfigError(
            f"{key} = {_toml(value)}: not a size; write bytes or a number with a unit, e.g. 64MiB, 8MB, 512k"
        )
    number, unit, binary, byte = m.groups()
    if unit is None:
        mult = 1
    elif binary or not byte:
        mult = _BINARY[unit.lower()]
    else:
        mult = _DECIMAL[unit.lower()]
    result = float(number) * mult if "." in number else int(number) * mult
    if isinstance(result, float):
        if result != math.floor(result):
            raise ConfigError(f"{key} = {_toml(value)}: not a whole number of bytes")
        result = int(result)
    return result


def _format_size(n: int) -> str:
    for unit, mult in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= mult and n % mult == 0:
            return f"{n // mult} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def _toml(value: Any) -> str:
    """Show a value the way it looks in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{...}"
    return str(value)


def _describe(value: Any) -> str:
    """Name a value's TOML type for "expected X, got Y" messages."""
    if isinstance(value, bool):
        return f"boolean {_toml(value)}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {_toml(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__  # datetimes


class _Errors:
    """Collects every problem so the user sees them all at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_if_any(self, source: Path | None) -> None:
        if not self.items:
            return
        where = f"{source}: " if source else ""
        if len(self.items) == 1:
            raise ConfigError(f"{where}{self.items[0]}")
        lines = "\n".join(f"  - {m}" for m in self.items)
        raise ConfigError(f"{where}{len(self.items)} problems in the configuration:\n{lines}")


class _Invalid(Exception):
    """One key's value is wrong (message already complete)."""


T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Typed readers for one table
# --------------------------------------------------------------------------------------------


class _Table:
    """Reads typed values from one TOML table and reports unknown keys."""

    def __init__(self, label: str, data: Mapping[str, Any], known: list[str], errors: _Errors) -> None:
        self.label = label  # "[upload]" or "[[watch]] #2"
        self.data = data
        self.errors = errors
        for key in data:
            if key not in known:
                errors.add(f"{label} {key}: unknown key{_suggest(key, known)}")

    def name(self, key: str) -> str:
        return f"{self.label} {key}"

    def get(self, key: str, default: T, conv: Callable[[str, Any], T]) -> T:
        if key not in self.data:
            return default
        try:
            return conv(self.name(key), self.data[key])
        except _Invalid as exc:
            self.errors.add(str(exc))
        except ConfigError as exc:
            self.errors.add(str(exc))
        return default

    def require(self, key: str, conv: Callable[[str, Any], T]) -> T | None:
        if key not in self.data:
            self.errors.add(f"{self.name(key)}: missing")
            return None
        try:
            return conv(self.name(key), self.data[key])
        except (_Invalid, ConfigError) as exc:
            self.errors.add(str(exc))
        return None


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys: {', '.join(known)}"


def _as_str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise _Invalid(f"{name}: expected a string, got {_describe(v)}")
    return v


def _secret_str(name: str, v: Any) -> str:
    if not isinstance(v, str):  # never echo the value: it is a secret
        raise _Invalid(f"{name}: expected a string")
    return v


def _as_bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Invalid(f"{name}: expected true or false, got {_describe(v)}")
    return v


def _as_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Invalid(f"{name}: expected an integer, got {_describe(v)}")
    return v


def _as_number(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Invalid(f"{name}: expected a number, got {_describe(v)}")
    if math.isnan(v) or math.isinf(v):
        raise _Invalid(f"{name} = {v}: must be a finite number")
    return float(v)


def _positive(conv: Callable[[str, Any], float]) -> Callable[[str, Any], float]:
    def check(name: str, v: Any) -> float:
        n = conv(name, v)
        if n <= 0:
            raise _Invalid(f"{name} = {_toml(v)}: must be greater than 0")
        return n

    return check


def _non_negative(conv: Callable[[str, Any], float]) -> Callable[[str, Any], float]:
    def check(name: str, v: Any) -> float:
        n = conv(name, v)
        if n < 0:
            raise _Invalid(f"{name} = {_toml(v)}: must not be negative")
        return n

    return check


def _int_range(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name: str, v: Any) -> int:
        n = _as_int(name, v)
        if not lo <= n <= hi:
            raise _Invalid(f"{name} = {n}: must be between {lo} and {hi}")
        return n

    return check


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, v: Any) -> str:
        s = _as_str(name, v)
        if s not in choices:
            alts = ", ".join(_toml(c) for c in choices)
            raise _Invalid(f"{name} = {_toml(s)}: must be one of {alts}")
        return s

    return check


def _glob_list(name: str, v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        raise _Invalid(f"{name}: expected an array of globs, got {_describe(v)}; write [{_toml(v)}]")
    if not isinstance(v, list):
        raise _Invalid(f"{name}: expected an array of globs, got {_describe(v)}")
    out = []
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise _Invalid(f"{name}: item {i + 1} must be a string, got {_describe(item)}")
        if not item:
            raise _Invalid(f"{name}: item {i + 1} is an empty glob")
        out.append(item)
    return tuple(out)


def _size(name: str, v: Any) -> int:
    return parse_size(v, name)


# --------------------------------------------------------------------------------------------
# Domain validators
# --------------------------------------------------------------------------------------------

_ENDPOINT_RE = re.compile(r"^(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?/?$")
_ZONE_RE = re.compile(r"^[a-z0-9-]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{4,61}[a-z0-9]$")
_HOSTPORT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$")


def _endpoint(name: str, v: Any) -> str:
    s = _as_str(name, v)
    m = _ENDPOINT_RE.match(s)
    if not m or (m.group(3) is not None and not 1 <= int(m.group(3)) <= 65535):
        raise _Invalid(
            f"{name} = {_toml(s)}: must be http(s)://host[:port] with no path or query, "
            'e.g. "https://qingstor.com" or "http://127.0.0.1:9000"'
        )
    return s.rstrip("/")


def _ip_literal_host(endpoint: str) -> str | None:
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


def _zone(name: str, v: Any) -> str:
    s = _as_str(name, v)
    if s and not _ZONE_RE.match(s):
        raise _Invalid(f'{name} = {_toml(s)}: must be lower-case letters, digits and "-" (e.g. "pek3a"), or ""')
    return s


def _bucket(name: str, v: Any) -> str:
    s = _as_str(name, v)
    if not _BUCKET_RE.match(s):
        raise _Invalid(
            f'{name} = {_toml(s)}: a bucket name is 6-63 characters of a-z, 0-9 and "-", '
            "starting and ending with a letter or digit"
        )
    return s


def _listen(name: str, v: Any) -> str:
    s = _as_str(name, v)
    m = _HOSTPORT_RE.match(s)
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise _Invalid(f'{name} = {_toml(s)}: must be "host:port" with a port 1-65535, e.g. "127.0.0.1:9464"')
    host = m.group(1)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _Invalid(f"{name} = {_toml(s)}: {host} is not an IPv6 address") from None
    return s


def _expand_path(name: str, v: Any, env: Mapping[str, str]) -> Path:
    s = _as_str(name, v)
    if not s:
        raise _Invalid(f"{name}: must not be empty")
    if s.startswith("~"):
        home = env.get("HOME") or os.path.expanduser("~")
        s = home + s[1:] if s == "~" or s.startswith("~/") else os.path.expanduser(s)
    p = Path(s)
    if not p.is_absolute():
        raise _Invalid(f"{name} = {_toml(v)}: must be an absolute path (or start with ~/)")
    return p.resolve()


def _prefix(name: str, v: Any) -> str:
    s = _as_str(name, v)
    if "{hostname}" in s:
        s = s.replace("{hostname}", socket.gethostname())
    if "{" in s or "}" in s:
        raise _Invalid(f"{name} = {_toml(v)}: unknown placeholder; only {{hostname}} is supported")
    if s.startswith("/"):
        raise _Invalid(f'{name} = {_toml(v)}: must not start with "/" (object keys are relative to the bucket)')
    if "//" in s:
        raise _Invalid(f'{name} = {_toml(v)}: must not contain "//"')
    parts = s.rstrip("/").split("/") if s else []
    if any(p in (".", "..") for p in parts):
        raise _Invalid(f'{name} = {_toml(v)}: must not contain "." or ".." components')
    if s and not s.endswith("/"):
        s += "/"
    return s


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


def _file_kind(path: Path) -> str:
    """What is at ``path``, for a message: "a regular file", "a FIFO", ..."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"not readable ({exc.strerror})"
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a directory")


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_TOP = ["qingstor", "watch", "settle", "upload", "state", "log", "metrics"]
_QS_KEYS = [
    "endpoint",
    "zone",
    "bucket",
    "access_key_id",
    "secret_access_key",
    "secret_access_key_file",
    "connect_timeout_seconds",
    "read_timeout_seconds",
]
_WATCH_KEYS = [
    "path",
    "prefix",
    "include",
    "exclude",
    "exclude_defaults",
    "recursive",
    "follow_symlinks",
    "after_upload",
    "watcher",
    "poll_interval_seconds",
]
DEFAULT_ENDPOINT = "https://qingstor.com"


def _table(data: Mapping[str, Any], name: str, errors: _Errors) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        errors.add(f"[{name}]: expected a table, got {_describe(value)}; write a [{name}] section")
        return {}
    return value


def _secret(
    qs: _Table, env: Mapping[str, str], source: Path | None, errors: _Errors, warnings: list[str]
) -> str | None:
    inline = qs.get("secret_access_key", None, _secret_str)
    if inline is not None and source is not None:
        try:
            mode = source.stat().st_mode
        except OSError:
            mode = 0
        if mode & 0o077:
            warnings.append(
                f"{source} holds secret_access_key inline and is readable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {source}`, or move the secret to "
                "secret_access_key_file or systemd LoadCredential=qsyncd-secret-key:..."
            )
    secret_file = qs.get("secret_access_key_file", None, _as_str)
    if secret_file is not None:
        path = Path(os.path.expanduser(secret_file))
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            errors.add(f"{qs.name('secret_access_key_file')}: cannot read {path}: {why}")
            return None
        if not text:
            errors.add(f"{qs.name('secret_access_key_file')}: {path} is empty")
            return None
        return text
    cred_dir = env.get("CREDENTIALS_DIRECTORY", "")
    if cred_dir:
        path = Path(cred_dir) / SECRET_CREDENTIAL_NAME
        if path.exists():
            try:
                text = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                errors.add(f"[qingstor] secret access key: cannot read credential {path}: {why}")
                return None
            if not text:
                errors.add(f"[qingstor] secret access key: credential {path} is empty")
                return None
            return text
    if env.get(ENV_SECRET):
        return env[ENV_SECRET].strip()
    if inline:
        return inline
    errors.add(
        "[qingstor] secret access key: not found; give it one of four ways: "
        'secret_access_key_file = "/path" in [qingstor], '
        f"systemd LoadCredential={SECRET_CREDENTIAL_NAME}:/path ($CREDENTIALS_DIRECTORY/{SECRET_CREDENTIAL_NAME}), "
        f"the environment variable {ENV_SECRET}, "
        'or secret_access_key = "..." in [qingstor] (keep the file chmod 600)'
    )
    return None


def parse_config(data: dict[str, Any], *, source: Path | None, env: Mapping[str, str]) -> Config:
    """Validate parsed TOML ``data`` into a ``Config``; ``source`` is only used in messages/warnings."""
    errors = _Errors()
    warnings: list[str] = []
    for key in data:
        if key not in _TOP:
            errors.add(f"[{key}]: unknown table{_suggest(key, _TOP)}")

    # [qingstor]
    qs = _Table("[qingstor]", _table(data, "qingstor", errors), _QS_KEYS, errors)
    endpoint = qs.get("endpoint", DEFAULT_ENDPOINT, _endpoint)
    zone = qs.require("zone", _zone)
    ip_host = _ip_literal_host(endpoint)
    if zone and ip_host:
        errors.add(
            f"{qs.name('zone')} = {_toml(zone)}: the zone is put in front of the endpoint's host name "
            f"({zone}.{ip_host}), and endpoint = {_toml(endpoint)} is an IP address, so that name never "
            'resolves: set zone = "" for an emulator or any endpoint that serves one zone'
        )
    bucket = qs.require("bucket", _bucket)
    access_key_id = env.get(ENV_ACCESS_KEY) or qs.get("access_key_id", None, _as_str)
    if not access_key_id:
        errors.add(f"{qs.name('access_key_id')}: missing (set it here or in the environment as {ENV_ACCESS_KEY})")
    secret = _secret(qs, env, source, errors, warnings)
    connect_timeout = qs.get("connect_timeout_seconds", 10.0, _positive(_as_number))
    read_timeout = qs.get("read_timeout_seconds", 60.0, _positive(_as_number))

    # [state]
    st = _Table("[state]", _table(data, "state", errors), ["dir"], errors)
    state_dir = st.get("dir", None, lambda n, v: _expand_path(n, v, env)) or default_state_dir(env)

    # [[watch]]
    watches: list[WatchConfig] = []
    raw_watches = data.get("watch")
    if raw_watches is None:
        errors.add("[[watch]]: missing; add at least one [[watch]] table with a path")
        raw_watches = []
    elif isinstance(raw_watches, dict):
        errors.add("[watch]: must be an array of tables; write [[watch]] (double brackets)")
        raw_watches = []
    elif not isinstance(raw_watches, list):
        errors.add(f"[[watch]]: expected an array of tables, got {_describe(raw_watches)}")
        raw_watches = []
    for i, raw in enumerate(raw_watches, start=1):
        label = f"[[watch]] #{i}"
        if not isinstance(raw, dict):
            errors.add(f"{label}: expected a table, got {_describe(raw)}")
            continue
        w = _Table(label, raw, _WATCH_KEYS, errors)
        path = w.require("path", lambda n, v: _expand_path(n, v, env))
        prefix = w.get("prefix", "", _prefix)
        include: tuple[str, ...] = w.get("include", ("*",), _glob_list)
        user_exclude: tuple[str, ...] = w.get("exclude", (), _glob_list)
        exclude_defaults = w.get("exclude_defaults", True, _as_bool)
        exclude = (*DEFAULT_EXCLUDES, *user_exclude) if exclude_defaults else user_exclude
        recursive = w.get("recursive", True, _as_bool)
        follow = w.get("follow_symlinks", False, _as_bool)
        after = w.get("after_upload", "keep", _choice("keep", "delete"))
        watcher = w.get("watcher", "inotify", _choice("inotify", "polling"))
        poll = w.get("poll_interval_seconds", 5.0, _positive(_as_number))
        if path is None:
            continue
        if _overlaps(path, state_dir):
            where = "is inside" if state_dir in path.parents or path == state_dir else "contains"
            errors.add(
                f"{label} path = {_toml(str(path))}: {where} the state directory {state_dir}; "
                "qsyncd would upload its own database: move one of them"
            )
        for j, other in enumerate(watches, start=1):
            if _overlaps(path, other.path):
                errors.add(
                    f"{label} path = {_toml(str(path))}: overlaps [[watch]] #{j} path = {_toml(str(other.path))}; "
                    "every file must belong to exactly one watch"
                )
        if path.exists() and not path.is_dir():
            errors.add(
                f"{label} path = {_toml(str(path))}: is {_file_kind(path)}, not a directory; "
                "a watch root must be a directory (to upload one file, watch the directory it is in "
                "and narrow it with include = [...])"
            )
        elif not path.is_dir():
            warnings.append(f"{label} path {path} does not exist (yet); qsyncd will wait for it")
        watches.append(
            WatchConfig(
                path=path,
                prefix=prefix,
                include=include,
                exclude=exclude,
                recursive=recursive,
                follow_symlinks=follow,
                after_upload=cast(Literal["keep", "delete"], after),
                watcher=cast(Literal["inotify", "polling"], watcher),
                poll_interval_seconds=poll,
                exclude_defaults=exclude_defaults,
            )
        )

    # [settle]
    se = _Table(
        "[settle]",
        _table(data, "settle", errors),
        ["quiet_seconds", "max_wait_seconds", "rescan_interval_seconds"],
        errors,
    )
    quiet = se.get("quiet_seconds", 2.0, _non_negative(_as_number))
    max_wait = se.get("max_wait_seconds", 300.0, _positive(_as_number))
    rescan = se.get("rescan_interval_seconds", 600.0, _positive(_as_number))
    if max_wait < quiet:
        errors.add(f"[settle] max_wait_seconds = {max_wait:g}: must be at least quiet_seconds ({quiet:g})")

    # [upload]
    up_keys = [f.name for f in dataclasses.fields(UploadConfig)]
    up = _Table("[upload]", _table(data, "upload", errors), up_keys, errors)
    threshold = up.get("multipart_threshold", 64 * MiB, _size)
    if "multipart_threshold" in up.data and not 1 <= threshold <= MAX_PART_SIZE:
        errors.add(
            f"[upload] multipart_threshold = {_toml(up.data['multipart_threshold'])}: "
            "must be between 1 byte and 5 GiB (the largest single PUT)"
        )
    part_size = up.get("part_size", 16 * MiB, _size)
    if "part_size" in up.data:
        shown = f"[upload] part_size = {_toml(up.data['part_size'])}"
        if part_size < MIN_PART_SIZE:
            errors.add(f"{shown}: must be at least 4 MiB (got {_format_size(part_size)})")
        elif part_size > MAX_PART_SIZE:
            errors.add(f"{shown}: must be at most 5 GiB (got {_format_size(part_size)})")
    concurrency = up.get("concurrency", 16, _int_range(1, MAX_CONCURRENCY))
    part_concurrency = up.get("part_concurrency", 4, _int_range(1, MAX_CONCURRENCY))
    storage_class = up.get("storage_class", "STANDARD", _choice("STANDARD", "STANDARD_IA"))
    max_bps: int | None = up.get("max_bytes_per_second", None, _size)
    if max_bps == 0:
        max_bps = None  # 0 means "no limit", same as leaving the key out
    retry_initial = up.get("retry_initial_seconds", 1.0, _positive(_as_number))
    retry_max = up.get("retry_max_seconds", 300.0, _positive(_as_number))
    if retry_max < retry_initial:
        errors.add(
            f"[upload] retry_max_seconds = {retry_max:g}: must be at least retry_initial_seconds ({retry_initial:g})"
        )
    part_retries = up.get("part_retries", 4, _int_range(0, 100))
    permanent_retry = up.get("permanent_retry_seconds", 900.0, _positive(_as_number))
    store_metadata = up.get("store_metadata", True, _as_bool)

    # [log], [metrics]
    lg = _Table("[log]", _table(data, "log", errors), ["format", "level"], errors)
    log_format = lg.get("format", "auto", _choice("auto", "journal", "json", "console"))
    log_level = lg.get("level", "info", _choice("debug", "info", "warning", "error"))
    me = _Table("[metrics]", _table(data, "metrics", errors), ["listen"], errors)
    listen = me.get("listen", None, _listen)

    errors.raise_if_any(source)
    assert zone is not None and bucket is not None and access_key_id and secret
    return Config(
        qingstor=QingStorConfig(
            endpoint=endpoint,
            zone=zone,
            bucket=bucket,
            access_key_id=access_key_id,
            secret_access_key=secret,
            connect_timeout_seconds=connect_timeout,
            read_timeout_seconds=read_timeout,
        ),
        watches=tuple(watches),
        settle=SettleConfig(quiet_seconds=quiet, max_wait_seconds=max_wait, rescan_interval_seconds=rescan),
        upload=UploadConfig(
            multipart_threshold=threshold,
            part_size=part_size,
            concurrency=concurrency,
            part_concurrency=part_concurrency,
            storage_class=cast(Literal["STANDARD", "STANDARD_IA"], storage_class),
            max_bytes_per_second=max_bps,
            retry_initial_seconds=retry_initial,
            retry_max_seconds=retry_max,
            part_retries=part_retries,
            permanent_retry_seconds=permanent_retry,
            store_metadata=store_metadata,
        ),
        state=StateConfig(dir=state_dir),
        log=LogConfig(
            format=cast(Literal["auto", "journal", "json", "console"], log_format),
            level=cast(Literal["debug", "info", "warning", "error"], log_level),
        ),
        metrics=MetricsConfig(listen=listen),
        source=source,
        warnings=tuple(warnings),
    )


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Read and validate the TOML file at ``path``; raises ``ConfigError`` saying what to fix."""
    path = Path(path).absolute()  # every message names the file as the user can find it from anywhere
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
    return parse_config(data, source=path.absolute(), env=env)
