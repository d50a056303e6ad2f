"""Hostile input: each oddity gets a clear event, the daemon survives, and every other file still arrives."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import unicodedata
from pathlib import Path
from typing import Any

from relsupport import PY, REPO, Rig, bucket_objects, local_tree, rss_kib, wait_converged

GiB = 1 << 30
MiB = 1 << 20


def skipped(d: Any, reason: str, name: str) -> bool:
    return any(e.get("reason") == reason and name in e.get("path", "") for e in d.events("file_skipped"))


def test_hostile_names_and_file_types(rig: Rig, tmp_path: Path, seed: int) -> None:
    """Symlinks out of the tree, FIFO, socket, odd names, invalid UTF-8, long keys, empty and dir->file."""
    rng = random.Random(seed)
    t = rig.tree
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_bytes(b"must never be uploaded")
    rig.write_config(watch_opts={"follow_symlinks": True}, settle={"quiet_seconds": 0.3}, upload={"concurrency": 4})
    d = rig.daemon()
    d.wait_event("daemon_ready", timeout=30)

    # links: out of the tree (never uploaded even with follow_symlinks), and inside (allowed explicitly)
    os.symlink("/etc/shadow", t / "shadow-link")
    os.symlink(outside / "private.txt", t / "outside-link")
    os.symlink("../outside", t / "outside-dir-link")
    (t / "real.txt").write_bytes(b"real content")
    os.symlink("real.txt", t / "inside-link")
    os.symlink("does-not-exist", t / "broken-link")
    # special files: must not block the daemon
    os.mkfifo(t / "a.fifo")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(t / "a.sock"))
    # names
    names = [
        "new\nline.txt",
        "with space.txt",
        "pct%20%zz.txt",
        "q?mark.txt",
        "hash#tag.txt",
        "back\\slash.txt",
        "-leading-dash.txt",
        "--",
        unicodedata.normalize("NFC", "café-nfc.txt"),
        unicodedata.normalize("NFD", "café-nfd.txt"),
        "日本語/ファイル.txt",
        "emoji-🙂.txt",
        "+plus&amp;=.txt",
        "  leading-spaces.txt",
        "trailing-dot.",
        "semi;colon.txt",
        "quote'\".txt",
        "tab\there.txt",
    ]
    for n in names:
        p = t / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randrange(1, 5000)))
    bad = os.fsencode(str(t)) + b"/bad-\xff\xfe.bin"
    with open(bad, "wb") as f:
        f.write(b"latin1 name")
    long_dir = t / ("d" * 200) / ("e" * 200) / ("f" * 200) / ("g" * 200) / ("h" * 200)
    long_dir.mkdir(parents=True)
    (long_dir / ("x" * 100)).write_bytes(b"too long a key")
    (t / "empty.bin").write_bytes(b"")
    # a directory replaced by a file
    (t / "swap").mkdir()
    (t / "swap" / "inner.txt").write_bytes(b"inner")
    wait_converged(
        rig.emu_root,
        lambda: {"swap/inner.txt": t / "swap" / "inner.txt"},
        timeout=60,
        daemon=d,
        allow_extra=True,
        count=False,
    )
    shutil.rmtree(t / "swap")
    (t / "swap").write_bytes(b"now a file")

    def expected() -> dict[str, Path]:
        exp = {k: p for k, p in local_tree(t).items() if "\udcff" not in k and "ddddd" not in k}
        exp["inside-link"] = t / "real.txt"
        return exp

    rig.converge(timeout=90, daemon=d, expected=expected, allow_extra=True)
    remote = bucket_objects(rig.emu_root)
    extra = set(remote) - set(expected())
    assert extra == {"swap/inner.txt"}, extra  # the old file under the former directory stays (upload-only)
    for reason, name in [
        ("symlink_outside_root", "shadow-link"),
        ("symlink_outside_root", "outside-link"),
        ("broken_symlink", "broken-link"),
        ("fifo", "a.fifo"),
        ("socket", "a.sock"),
        ("invalid_utf8", "bad-"),
        ("key_too_long", "xxxx"),
    ]:
        assert skipped(d, reason, name), f"no file_skipped reason={reason} for {name}:\n{d.tail(80)}"
    assert not any("private" in k or "shadow" in k for k in remote), sorted(remote)
    # NFC and NFD names are two files and stay two distinct keys, byte for byte as named.
    assert unicodedata.normalize("NFC", "café-nfc.txt") in remote
    assert unicodedata.normalize("NFD", "café-nfd.txt") in remote
    assert d.proc is not None and d.proc.poll() is None
    sock.close()


def test_sparse_20_gib_file_does_not_starve_or_bloat_the_daemon(rig: Rig, seed: int) -> None:
    """A sparse 20 GiB file uploads as bounded-memory multipart while other files still arrive."""
    rng = random.Random(seed)
    rig.write_config(settle={"quiet_seconds": 0.3}, upload={"concurrency": 3, "part_concurrency": 2})
    d = rig.daemon()
    d.wait_event("daemon_ready", timeout=30)
    sparse = rig.tree / "sparse-20g.img"
    with open(sparse, "wb") as f:
        f.truncate(20 * GiB)
    d.wait_event("multipart_started", timeout=60, pred=lambda e: e.get("key") == "sparse-20g.img")
    base = rss_kib(d.pid)
    for i in range(50):
        (rig.tree / "others" / f"f{i}").parent.mkdir(exist_ok=True)
        (rig.tree / "others" / f"f{i}").write_bytes(rng.randbytes(1000))
    rig.converge(
        timeout=60,
        daemon=d,
        expected=lambda: {k: p for k, p in local_tree(rig.tree).items() if k.startswith("others/")},
        allow_extra=True,
    )
    emu: Any = rig.emu  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while sum(1 for r in emu.requests if r.operation == "UploadMultipart" and r.status == 201) < 8:
        assert time.monotonic() < deadline, d.tail()
        time.sleep(0.2)
    peak = rss_kib(d.pid)
    assert peak - base < 200 * 1024, f"RSS grew {peak - base} KiB while streaming a 20 GiB file"
    # The file is emptied: the upload must notice, abort, and never complete a wrong object.
    os.truncate(sparse, 0)
    d.wait_event("multipart_aborted", timeout=60, pred=lambda e: e.get("key") == "sparse-20g.img")
    sparse.unlink()
    time.sleep(1.0)
    assert "sparse-20g.img" not in bucket_objects(rig.emu_root)
    assert d.proc is not None and d.proc.poll() is None


def test_watch_root_deleted_and_recreated(rig: Rig, seed: int) -> None:
    """The watch root vanishes and comes back: the daemon says so, re-arms, and uploads the new files."""
    rng = random.Random(seed)
    rig.write_config(settle={"quiet_seconds": 0.3})
    d = rig.daemon()
    d.wait_event("daemon_ready", timeout=30)
    (rig.tree / "first.txt").write_bytes(rng.randbytes(100))
    rig.converge(timeout=30, daemon=d)
    shutil.rmtree(rig.tree)
    deadline = time.monotonic() + 30
    while not (d.events("watch_root_vanished") or d.events("watch_root_missing") or d.events("watcher_died")):
        assert time.monotonic() < deadline, d.tail()
        time.sleep(0.1)
    rig.tree.mkdir()
    for i in range(10):
        (rig.tree / f"again-{i}.txt").write_bytes(rng.randbytes(100))
    rig.converge(timeout=60, daemon=d, allow_extra=True)
    assert d.proc is not None and d.proc.poll() is None
    assert len(d.events("watch_armed")) >= 2


def test_unreadable_file_without_read_permission(rig: Rig, shared: Any, seed: int) -> None:
    """A file the daemon may not read (root minus CAP_DAC_*): file_skipped reason=unreadable; others arrive."""
    if os.geteuid() != 0:
        shared.require_in_ci("needs root to drop CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH for the daemon")
    # The venv's python lives under /root (0700), so `nobody` cannot run it; root without the two
    # capabilities that bypass file permissions is an unprivileged reader for every file it does not own.
    rng = random.Random(seed)
    nobody = 65534
    secret = rig.tree / "secret.txt"
    secret.write_bytes(b"readable by its owner only")
    os.chown(secret, nobody, nobody)
    os.chmod(secret, 0o600)
    for i in range(5):
        (rig.tree / f"ok-{i}.txt").write_bytes(rng.randbytes(100))
    rig.write_config(settle={"quiet_seconds": 0.3})
    d = rig.daemon(start=False)
    d._out = open(d.log_path, "ab")
    d.proc = subprocess.Popen(
        [
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            PY,
            "-m",
            "qsyncd",
            "run",
            "-c",
            str(rig.config),
            "--log-format",
            "json",
        ],
        stdout=d._out,
        stderr=subprocess.STDOUT,
        env=d.env,
        cwd=str(REPO),
    )
    rig.converge(
        timeout=60, daemon=d, expected=lambda: {k: p for k, p in local_tree(rig.tree).items() if k != "secret.txt"}
    )
    ev = d.wait_event("file_skipped", timeout=30, pred=lambda e: e.get("reason") == "unreadable")
    assert "secret.txt" in ev[0]["path"] and "read" in ev[0]["error"], ev[0]
    assert "secret.txt" not in bucket_objects(rig.emu_root)
    assert d.proc.poll() is None


def test_symlinks_not_followed_unless_allowed(rig: Rig, tmp_path: Path, seed: int) -> None:
    """With follow_symlinks off (the default) no link is uploaded, not even one pointing inside the tree."""
    rng = random.Random(seed)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_bytes(b"must never be uploaded")
    (rig.tree / "real.txt").write_bytes(rng.randbytes(100))
    os.symlink("real.txt", rig.tree / "inside-link")
    os.symlink("/etc/shadow", rig.tree / "shadow-link")
    os.symlink(outside, rig.tree / "outside-dir")  # a directory link: its contents are never walked
    rig.write_config(settle={"quiet_seconds": 0.3})
    d = rig.daemon()
    rig.converge(timeout=30, daemon=d, expected=lambda: {"real.txt": rig.tree / "real.txt"})
    for name in ("inside-link", "shadow-link"):
        ev = d.wait_event("file_skipped", timeout=30, pred=lambda e, n=name: e.get("path", "").endswith(n))
        assert ev[0]["reason"] == "symlink" and "follow_symlinks" in ev[0]["error"], ev[0]
    assert set(bucket_objects(rig.emu_root)) == {"real.txt"}
