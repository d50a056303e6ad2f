"""``[[watch]]``: the directory trees to watch, each checked against the others and the state directory."""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qsyncd.config.convs import abs_path, as_bool, fixed_key_prefix, glob_list, key_prefix, positive
from qsyncd.config.messages import describe, toml_value
from qsyncd.config.model import DEFAULT_EXCLUDES, WatchConfig
from qsyncd.config.readers import Errors, Table


def read_watches(
    data: Mapping[str, Any], env: Mapping[str, str], state_dir: Path, errors: Errors, warnings: list[str]
) -> tuple[WatchConfig, ...]:
    """Every ``[[watch]]`` table (at least one is required)."""
    raw_watches = data.get("watch")
    if raw_watches is None:
        errors.add("[[watch]]: missing; add at least one [[watch]] table with a path")
        raw_watches = []
    elif isinstance(raw_watches, dict):
        errors.add("[watch]: must be an array of tables; write [[watch]] (double brackets)")
        raw_watches = []
    elif not isinstance(raw_watches, list):
        errors.add(f"[[watch]]: expected an array of tables, got {describe(raw_watches)}")
        raw_watches = []
    watches: list[WatchConfig] = []
    for i, raw in enumerate(raw_watches, start=1):
        label = f"[[watch]] #{i}"
        if not isinstance(raw, dict):
            errors.add(f"{label}: expected a table, got {describe(raw)}")
            continue
        watch = _read_watch(Table(label, raw, errors, WatchConfig), env)
        if watch is not None:
            _check_root(label, watch.path, watches, state_dir, errors, warnings)
            watches.append(watch)
    return tuple(watches)


def _read_watch(w: Table, env: Mapping[str, str]) -> WatchConfig | None:
    path = w.require("path", abs_path(env))
    prefix = w.get("prefix", key_prefix)
    include = w.get("include", glob_list)
    user_exclude = w.get("exclude", glob_list, ())  # the user's globs; the field holds those in effect
    exclude_defaults = w.get("exclude_defaults", as_bool)
    recursive = w.get("recursive", as_bool)
    follow_symlinks = w.get("follow_symlinks", as_bool)
    after_upload = w.choice("after_upload")
    watcher = w.choice("watcher")
    poll_interval = w.get("poll_interval_seconds", positive)
    renames = w.choice("renames")
    on_change = w.choice("on_change")
    kept_prefix = w.get("kept_prefix", fixed_key_prefix)
    if path is None:
        return None
    return WatchConfig(
        path=path,
        prefix=prefix,
        include=include,
        exclude=(*DEFAULT_EXCLUDES, *user_exclude) if exclude_defaults else user_exclude,
        exclude_defaults=exclude_defaults,
        recursive=recursive,
        follow_symlinks=follow_symlinks,
        after_upload=after_upload,
        watcher=watcher,
        poll_interval_seconds=poll_interval,
        renames=renames,
        on_change=on_change,
        kept_prefix=kept_prefix,
    )


def _check_root(
    label: str, path: Path, others: list[WatchConfig], state_dir: Path, errors: Errors, warnings: list[str]
) -> None:
    """Report why ``path`` may not be a watch root (a root that does not exist yet is only a warning)."""
    if overlaps(path, state_dir):
        where = "is inside" if state_dir in path.parents or path == state_dir else "contains"
        errors.add(
            f"{label} path = {toml_value(str(path))}: {where} the state directory {state_dir}; "
            "qsyncd would upload its own database: move one of them"
        )
    for j, other in enumerate(others, start=1):
        if overlaps(path, other.path):
            errors.add(
                f"{label} path = {toml_value(str(path))}: overlaps [[watch]] #{j} path = "
                f"{toml_value(str(other.path))}; every file must belong to exactly one watch"
            )
    if path.exists() and not path.is_dir():
        errors.add(
            f"{label} path = {toml_value(str(path))}: is {file_kind(path)}, not a directory; "
            "a watch root must be a directory (to upload one file, watch the directory it is in "
            "and narrow it with include = [...])"
        )
    elif not path.is_dir():
        warnings.append(f"{label} path {path} does not exist (yet); qsyncd will wait for it")


def file_kind(path: Path) -> str:
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


def overlaps(a: Path, b: Path) -> bool:
    """Whether one of ``a`` and ``b`` is, or is inside, the other."""
    return a == b or a in b.parents or b in a.parents
