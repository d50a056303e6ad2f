"""``qsyncd sync --dry-run``: what the uploader would do with one file, sending nothing and writing nothing.

``examine`` asks ``qsyncd.decide`` the same questions ``Uploader.upload`` does (the ledger, a HEAD, the
file's MD5) and, where the bytes would go up, whether a donor object already holds them (a rename:
``qsyncd.changes``), so the dry run says "copied there" instead of "upload" for a renamed file.
"""

from __future__ import annotations

import os

from qsyncd.changes import OLD_BEHAVIOUR, ChangeRules
from qsyncd.decide import UNKNOWN, Decision, decide
from qsyncd.identity import FileIdentity
from qsyncd.remote.base import ObjectInfo
from qsyncd.source import md5_section
from qsyncd.upload import OPEN_FLAGS, Known, Uploader, regular


def examine(
    uploader: Uploader,
    path: str,
    key: str,
    *,
    source: str | None = None,
    known: Known | None = None,
    rules: ChangeRules = OLD_BEHAVIOUR,
) -> Decision:
    """What ``uploader.upload()`` would do with ``path``: reads the file and HEADs the key, sends nothing."""
    fd = os.open(source or path, OPEN_FLAGS)
    try:
        st = regular(fd, path)
        record = (known if known is not None else uploader.ledger.lookup(path))[0]
        ident = FileIdentity.of(st)
        remote: ObjectInfo | object | None = UNKNOWN
        md5: str | None = None
        while True:
            d = decide(key=key, local=ident, record=record, remote=remote, md5=md5)  # type: ignore[arg-type]
            if d.action == "ask_remote":
                remote = uploader.remote.head(key)
            elif d.action == "hash":
                md5 = md5_section(fd, 0, st.st_size).hexdigest()
            elif d.action == "upload" and rules.renames != "upload" and st.st_size > 0:
                md5 = md5 or md5_section(fd, 0, st.st_size).hexdigest()
                donor = uploader.server.donor(path, ident, md5, rules)
                if donor is None or donor.key == key:
                    return d
                how = "moved" if uploader.server.via(donor, rules) == "move" else "copied"  # as upload() would
                return Decision("upload", "renamed", f"its bytes are in the bucket as {donor.key}: {how} there")
            else:
                return d
    finally:
        os.close(fd)
