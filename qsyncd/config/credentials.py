"""Where a store table's credentials come from; every store table takes them the same four ways.

The access key id: ``$QSYNCD_ACCESS_KEY_ID``, else ``access_key_id`` in the table. The secret access key,
the first that exists: ``secret_access_key_file = "/path"``, ``$CREDENTIALS_DIRECTORY/qsyncd-secret-key``
(systemd ``LoadCredential=``), ``$QSYNCD_SECRET_ACCESS_KEY``, ``secret_access_key = "..."`` inline (with
a warning when the file is readable by group or others). A secret never appears in a message.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from qsyncd.config.convs import as_str, secret_str
from qsyncd.config.readers import Errors, Table

SECRET_CREDENTIAL_NAME = "qsyncd-secret-key"  # systemd LoadCredential=qsyncd-secret-key:/path
ENV_SECRET = "QSYNCD_SECRET_ACCESS_KEY"
ENV_ACCESS_KEY = "QSYNCD_ACCESS_KEY_ID"
SECRET_FILE_KEY = "secret_access_key_file"  # a key of every store table that is not a field


def credential_keys(fields: Sequence[str]) -> list[str]:
    """A store table's keys: its dataclass ``fields`` with ``secret_access_key_file`` after the secret."""
    out: list[str] = []
    for name in fields:
        out.append(name)
        if name == "secret_access_key":
            out.append(SECRET_FILE_KEY)
    return out


def read_access_key_id(table: Table, env: Mapping[str, str], errors: Errors) -> str | None:
    """The access key id from the environment or the table (missing: an error, and None)."""
    access_key_id = env.get(ENV_ACCESS_KEY) or table.get("access_key_id", as_str, None)
    if not access_key_id:
        errors.add(f"{table.name('access_key_id')}: missing (set it here or in the environment as {ENV_ACCESS_KEY})")
        return None
    return access_key_id


def _read_text(path: Path, what: str, noun: str, errors: Errors) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        errors.add(f"{what}: cannot read {noun}{path}: {why}")
        return None
    if not text:
        errors.add(f"{what}: {noun}{path} is empty")
        return None
    return text


def read_secret(
    table: Table, env: Mapping[str, str], source: Path | None, errors: Errors, warnings: list[str]
) -> str | None:
    """The secret access key from the first of the four sources that exists (none: an error, and None)."""
    inline = table.get("secret_access_key", secret_str, None)
    if inline is not None and source is not None:
        try:
            mode = source.stat().st_mode
        except OSError:
            mode = 0
        if mode & 0o077:
            warnings.append(
                f"{source} holds secret_access_key inline and is readable by group or others "
                f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {source}`, or move the secret to "
                f"{SECRET_FILE_KEY} or systemd LoadCredential={SECRET_CREDENTIAL_NAME}:..."
            )
    secret_file = table.get(SECRET_FILE_KEY, as_str, None)
    if secret_file is not None:
        return _read_text(Path(os.path.expanduser(secret_file)), table.name(SECRET_FILE_KEY), "", errors)
    cred_dir = env.get("CREDENTIALS_DIRECTORY", "")
    if cred_dir:
        path = Path(cred_dir) / SECRET_CREDENTIAL_NAME
        if path.exists():
            return _read_text(path, f"{table.label} secret access key", "credential ", errors)
    if env.get(ENV_SECRET):
        return env[ENV_SECRET].strip()
    if inline:
        return inline
    errors.add(
        f"{table.label} secret access key: not found; give it one of four ways: "
        f'{SECRET_FILE_KEY} = "/path" in {table.label}, '
        f"systemd LoadCredential={SECRET_CREDENTIAL_NAME}:/path ($CREDENTIALS_DIRECTORY/{SECRET_CREDENTIAL_NAME}), "
        f"the environment variable {ENV_SECRET}, "
        f'or secret_access_key = "..." in {table.label} (keep the file chmod 600)'
    )
    return None
