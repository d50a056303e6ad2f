"""What qsyncd can be told: one frozen dataclass per table, and ``Config``, the whole of it.

Each default is written once, on its field; the readers take it from there (``readers.Table``) and
``qsyncd.toml.example`` shows it (a test keeps the two equal). The store table's dataclass lives in
``stores``; everything here is store-independent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from qsyncd.config.sizes import GiB, MiB
from qsyncd.config.stores import QingStorConfig, S3Config

MIN_PART_SIZE = 4 * MiB  # QingStor rejects smaller non-final parts
MIN_S3_PART_SIZE = 5 * MiB  # S3 rejects smaller non-final parts (EntityTooSmall)
MAX_PART_SIZE = 5 * GiB  # QingStor's limit for one part and for one PUT
MAX_CONCURRENCY = 256
MAX_PART_RETRIES = 100
STALL_MARGIN = 120.0  # by default a stage silent for the store's read_timeout_seconds + this long is wedged

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


@dataclass(frozen=True)
class WatchConfig:
    """One watched directory tree and how its files map to keys."""

    path: Path
    prefix: str = ""
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES  # the globs in effect (the key adds to or replaces the defaults)
    exclude_defaults: bool = True  # whether ``exclude`` includes DEFAULT_EXCLUDES (already applied)
    recursive: bool = True
    follow_symlinks: bool = False
    after_upload: Literal["keep", "delete"] = "keep"
    watcher: Literal["inotify", "polling"] = "inotify"
    poll_interval_seconds: float = 5.0
    renames: Literal["copy", "move", "upload"] = "copy"  # a file with uploaded content: server-side copy/move
    on_change: Literal["keep", "overwrite", "refuse"] = "keep"  # the bucket holds another version of the file
    kept_prefix: str = ".qsyncd-kept/"  # where on_change = "keep" puts the replaced object (qsyncd.changes)


@dataclass(frozen=True)
class SettleConfig:
    """When a file counts as finished."""

    quiet_seconds: float = 2.0
    max_wait_seconds: float = 300.0
    rescan_interval_seconds: float = 600.0
    rescan_cpu_share: float = 0.005  # periodic rescans of a watched tree take at most this share of a core (0: any)


@dataclass(frozen=True)
class UploadConfig:
    """How files are sent."""

    multipart_threshold: int = 64 * MiB
    part_size: int = 16 * MiB
    concurrency: int = 16
    part_concurrency: int = 4
    storage_class: Literal["STANDARD", "STANDARD_IA"] = "STANDARD"
    max_bytes_per_second: int | None = None
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    part_retries: int = 4
    permanent_retry_seconds: float = 900.0
    store_metadata: bool = True


@dataclass(frozen=True)
class StateConfig:
    """Where the ledger and the lock live (the default is ``tables.default_state_dir``)."""

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
class WatchdogConfig:
    """When the service stops answering systemd's watchdog.

    ``stall_seconds``: how long one pipeline stage may be silent (no heartbeat) before the watchdog ping is
    withheld, so that systemd restarts a wedged daemon. Its default depends on the store table and is
    ``default_stall_seconds(read_timeout_seconds)``: a request may legitimately wait that long for an answer.
    """

    stall_seconds: float


@dataclass(frozen=True)
class VerifyConfig:
    """The service's periodic verify: one listing per watch prefix compared with the ledger, every
    ``interval_seconds`` (0: never); objects found missing or changed are uploaded again."""

    interval_seconds: float = 21600.0


def default_stall_seconds(read_timeout_seconds: float) -> float:
    """``[watchdog] stall_seconds`` when it is not set: the store's read timeout plus ``STALL_MARGIN``."""
    return read_timeout_seconds + STALL_MARGIN


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    store: QingStorConfig | S3Config  # the one store table of the file
    watches: tuple[WatchConfig, ...]
    settle: SettleConfig
    upload: UploadConfig
    state: StateConfig
    log: LogConfig
    metrics: MetricsConfig
    watchdog: WatchdogConfig
    source: Path | None = None
    warnings: tuple[str, ...] = ()
    verify: VerifyConfig = VerifyConfig()

    @property
    def store_name(self) -> str:
        """The store table's name: ``"qingstor"`` or ``"s3"``."""
        return "s3" if isinstance(self.store, S3Config) else "qingstor"

    @property
    def qingstor(self) -> QingStorConfig:
        """The ``[qingstor]`` table; an ``AttributeError`` when the file's store is another one."""
        if not isinstance(self.store, QingStorConfig):
            raise AttributeError(f"this config's store is [{self.store_name}], not [qingstor]")
        return self.store

    def redacted(self) -> dict[str, Any]:
        """Everything as plain JSON-able data, the store under its table's name, the secret as ``"***"``."""
        data = _plain(dataclasses.asdict(self))
        store = data.pop("store")
        store["secret_access_key"] = "***"
        return cast(dict[str, Any], {self.store_name: store, **data})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
