"""Skip or upload: the one decision about a settled file, as a pure function.

``decide()`` is asked with what is known so far and answers with the next step: skip or upload (with
a reason), or "ask the remote" / "hash the file" when it cannot tell yet. The caller fetches what was
asked for and asks again, so the expensive steps happen only when the cheap ones could not settle it:

1. The ledger holds this version of the file under this key: skip (``ledger_match``), no request.
   With ``after_upload = "delete"`` the file is only deleted once the bucket confirms it, so the
   ledger's MD5 is checked against the remote instead (the file is unchanged: no need to hash it).
2. Nothing in the bucket under the key, or an object of another size: upload.
3. Same size: the object's ETag against the file's MD5 decides (``remote_match`` or ``content_differs``).

The uploader (``qsyncd.upload``) and ``qsyncd sync --dry-run`` both act on these answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from qsyncd.identity import FileIdentity
from qsyncd.remote.base import ObjectInfo
from qsyncd.state import FileRecord

Action = Literal["skip", "upload", "ask_remote", "hash"]


class _Unknown:
    """The remote has not been asked yet (``None`` means asked: no such object)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


@dataclass(frozen=True)
class Decision:
    """The next step for one file; ``reason`` is a snake_case code, ``detail`` says it to a person."""

    action: Action
    reason: str = ""
    detail: str = ""


ASK_REMOTE: Final = Decision("ask_remote")
HASH: Final = Decision("hash")


def decide(
    *,
    key: str,
    local: FileIdentity,
    record: FileRecord | None,
    delete_after: bool = False,
    remote: ObjectInfo | _Unknown | None = UNKNOWN,
    md5: str | None = None,
) -> Decision:
    """What to do with the file ``local`` that belongs under ``key``.

    ``record`` is the ledger's record of the path; ``remote`` what the bucket holds under ``key``
    (``UNKNOWN`` until asked, ``None`` for nothing); ``md5`` the file's MD5 once hashed.
    """
    known = record is not None and record.key == key and local.same_version(record.identity)
    if known and not delete_after:
        return Decision("skip", "ledger_match", "the ledger has this version of the file in the bucket")
    if isinstance(remote, _Unknown):
        return ASK_REMOTE
    changed = "; changed since it was uploaded" if record is not None and not known else ""
    if remote is None:
        return Decision("upload", "not_in_bucket", "not in the bucket" + changed)
    if remote.size != local.size:
        return Decision("upload", "size_differs", f"size differs (remote {remote.size}, local {local.size}){changed}")
    if known and record is not None and remote.etag == record.md5:  # unchanged file: its MD5 is the record's
        return Decision("skip", "ledger_match", "the ledger has this version in the bucket, and the bucket agrees")
    if md5 is None:
        return HASH
    if remote.etag == md5:
        return Decision("skip", "remote_match", "in the bucket with the same size and MD5")
    return Decision("upload", "content_differs", "content differs (ETag != MD5)" + changed)
