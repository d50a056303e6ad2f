"""E2E: special files and bad names are skipped with a reason; odd but valid names upload under exact keys."""

from __future__ import annotations

import os
import socket
import unicodedata

from e2e_support import assert_remote_equals, op_counts

ODD_NAMES = [
    "with space.txt",
    "100%.txt",
    "what?.txt",
    "hash#tag.txt",
    "back\\slash.txt",
    "new\nline.txt",
    "-leading-dash.txt",
    "plus+and&amp=.txt",
    unicodedata.normalize("NFC", "caf\u00e9.txt"),
    unicodedata.normalize("NFD", "caf\u00e9.txt"),
    "中文 名字.txt",
]


def test_bad_inputs_skipped_and_odd_names_uploaded(setup, tmp_path):
    """FIFO, socket, symlinks (shadow, outside, broken, plain), bad UTF-8, >1023-byte key skipped; the rest arrive."""
    assert len({n.encode() for n in ODD_NAMES}) == len(ODD_NAMES)  # NFC and NFD really are two names
    nofollow = tmp_path / "nofollow"
    nofollow.mkdir()
    setup.config(
        watch=[
            {"path": str(setup.root), "prefix": "", "follow_symlinks": True},
            {"path": str(nofollow), "prefix": "nf/"},
        ]
    )
    d = setup.daemon()
    root = setup.root
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside the root")

    os.mkfifo(root / "pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(root / "sock"))
        os.symlink("/etc/shadow", root / "shadow-link")
        os.symlink(outside, root / "outside-link")
        os.symlink(root / "does-not-exist", root / "broken-link")
        fd = os.open(os.path.join(os.fsencode(root), b"bad\xffname.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"latin-1 name")
        os.close(fd)
        long_dir = root / ("d" * 250) / ("e" * 250) / ("f" * 250) / ("g" * 250)
        long_dir.mkdir(parents=True)
        long_file = long_dir / ("too-long-key-" + "k" * 40 + ".txt")  # 4 x 251 + 57 bytes > 1023
        long_file.write_bytes(b"x")
        (nofollow / "target.txt").write_bytes(b"target")
        os.symlink(nofollow / "target.txt", nofollow / "plain-link")

        expect: dict[str, bytes] = {}
        (root / "odd").mkdir()
        for i, name in enumerate(ODD_NAMES):
            data = f"{i}:{name}".encode() + os.urandom(32)
            (root / "odd" / name).write_bytes(data)
            expect[f"odd/{name}"] = data
        (root / "normal.txt").write_bytes(b"normal")
        expect["normal.txt"] = b"normal"
        os.symlink(root / "normal.txt", root / "inside-link")  # followed: inside the root
        expect["inside-link"] = b"normal"
        expect["nf/target.txt"] = b"target"

        setup.wait_uploaded(d, list(expect), timeout=30)
        want = {
            "pipe": "fifo",
            "sock": "socket",
            "shadow-link": "symlink_outside_root",
            "outside-link": "symlink_outside_root",
            "broken-link": "broken_symlink",
            "bad\\xffname.txt": "invalid_utf8",  # logged with the bad byte escaped
            str(long_file.relative_to(root)): "key_too_long",
        }

        def reasons() -> dict[str, str]:
            out = {}
            for e in d.events("file_skipped"):
                p = e.get("path", "")
                if p.startswith(str(nofollow)):
                    out["nf:" + os.path.relpath(p, nofollow)] = e.get("reason")
                else:
                    out[os.path.relpath(p, root)] = e.get("reason")
            return out

        setup.shared.wait_for(
            lambda: all(k in reasons() for k in [*want, "nf:plain-link"]),
            timeout=15,
            what=f"file_skipped for every bad input; got {reasons()}",
        )
        got = reasons()
        for name, reason in want.items():
            assert got[name] == reason, (name, got[name], reason)
        assert got["nf:plain-link"] == "symlink"
    finally:
        sock.close()

    for key, data in expect.items():
        assert_remote_equals(setup.emu, key, data)
        assert op_counts(setup.emu, "PutObject")[key] == 1, key
    sent = {r.key for r in setup.emu.requests if r.operation == "PutObject"}
    assert sent == set(expect), sent ^ set(expect)
    assert d.proc.poll() is None, "the daemon died"
