"""``write_config``: a qsyncd.toml for one test, with the secret in a 0600 file beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qsynctest.constants import ACCESS_KEY, BUCKET, SECRET


def write_config(
    path: Path,
    *,
    endpoint: str,
    watch: Path | list[dict[str, Any]],
    state: Path,
    secret: str = SECRET,
    access_key: str = ACCESS_KEY,
    bucket: str = BUCKET,
    settle: dict[str, Any] | None = None,
    upload: dict[str, Any] | None = None,
    extra: str = "",
    prefix: str = "",
    watch_opts: dict[str, Any] | None = None,
) -> Path:
    """Write a qsyncd.toml; the secret goes into a 0600 file next to it."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return json.dumps(str(v))

    secret_file = path.parent / (path.name + ".secret")
    secret_file.write_text(secret)
    os.chmod(secret_file, 0o600)
    lines = [
        "[qingstor]",
        f"endpoint = {val(endpoint)}",
        'zone = ""',
        f"bucket = {val(bucket)}",
        f"access_key_id = {val(access_key)}",
        f"secret_access_key_file = {val(secret_file)}",
        "connect_timeout_seconds = 2",
        "read_timeout_seconds = 10",
        "",
    ]
    watches = watch if isinstance(watch, list) else [{"path": str(watch), "prefix": prefix, **(watch_opts or {})}]
    for w in watches:
        lines.append("[[watch]]")
        lines += [f"{k} = {val(v)}" for k, v in w.items()]
        lines.append("")
    lines += ["[settle]"] + [f"{k} = {val(v)}" for k, v in {"quiet_seconds": 0.5, **(settle or {})}.items()] + [""]
    up = {"retry_initial_seconds": 0.2, "retry_max_seconds": 2, **(upload or {})}
    lines += ["[upload]"] + [f"{k} = {val(v)}" for k, v in up.items()] + [""]
    lines += ["[state]", f"dir = {val(state)}", ""]
    lines += [extra]
    path.write_text("\n".join(lines))
    os.chmod(path, 0o600)
    return path
