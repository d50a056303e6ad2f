"""Tests for qsyncd.keys: include/exclude filtering, key mapping, file classification and MIME types."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import unicodedata
from pathlib import Path

import pytest
from qsynctest.unprivileged import readable_package

from qsyncd import keys
from qsyncd.config import DEFAULT_EXCLUDES
from qsyncd.errors import SkipFile
from qsyncd.keys import PathFilter, classify, content_type, object_key

REPO = Path(__file__).resolve().parent.parent


# -- PathFilter ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "wanted"),
    [
        ("report.pdf", True),
        ("deep/dir/photo.jpg", True),
        ("download.tmp", False),
        ("video.mp4.part", False),
        ("file.crdownload", False),
        (".notes.txt.swp", False),
        ("notes.txt~", False),
        ("~$budget.xlsx", False),
        (".~lock.sheet.ods#", False),
        ("#draft.org#", False),
        (".#draft.org", False),
        ("sub/.DS_Store", False),
        ("Thumbs.db", False),
        (".goutputstream-XYZ123", False),
        (".syncthing.movie.mkv.tmp", False),
        ("linux.iso.!qB", False),
        (".Trash-1000/files/old.txt", False),
        ("a/.nfs000001/b", False),
        ("REPORT.TMP", True),  # globs are case-sensitive, like the file system
        ("tmp/x.txt", True),  # "*.tmp" is about names ending in .tmp, not a dir called tmp
    ],
)
def test_default_excludes(relpath: str, wanted: bool) -> None:
    """The default exclude list drops temp/partial files by name and by parent directory."""
    assert wanted == PathFilter(["*"], DEFAULT_EXCLUDES).wanted(relpath)


def test_include_globs_match_names() -> None:
    """Name globs in include pick files by basename at any depth."""
    f = PathFilter(["*.jpg", "*.png"], [])
    assert f.wanted("a/b/c.jpg") and f.wanted("x.png")
    assert not f.wanted("x.gif")
    assert f.dir_wanted("a/b")  # include never prunes directories


def test_path_globs_match_relative_path() -> None:
    """A glob containing "/" matches the path relative to the root."""
    f = PathFilter(["photos/*.jpg"], ["build/*", "cache/tmp"])
    assert f.wanted("photos/a.jpg")
    assert not f.wanted("other/a.jpg")
    g = PathFilter(["*"], ["build/*", "cache/tmp"])
    assert not g.wanted("build/out.bin")
    assert g.wanted("src/build/out.bin")
    assert not g.wanted("cache/tmp/x")
    assert not g.dir_wanted("cache/tmp")
    assert g.dir_wanted("cache")


def test_excluded_parent_dir_excludes_contents_and_prunes() -> None:
    """A directory whose name matches an exclude glob is pruned with everything under it."""
    f = PathFilter(["*"], ["node_modules", ".git"])
    assert not f.wanted("web/node_modules/pkg/index.js")
    assert not f.dir_wanted("web/node_modules")
    assert not f.dir_wanted(".git/objects")
    assert f.dir_wanted("web/src")
    assert f.dir_wanted("") and f.dir_wanted(".")


def test_empty_include_wants_nothing() -> None:
    """include = [] uploads nothing (explicit, not a silent default)."""
    assert not PathFilter([], []).wanted("a.txt")


def test_glob_metacharacters_in_names() -> None:
    """Names containing [, ], ?, * are filtered like any other name."""
    f = PathFilter(["*"], ["*.tmp"])
    assert f.wanted("[draft] what?.txt")
    assert not f.wanted("[draft].tmp")


# -- object_key --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "line\nbreak.txt",
        "with space.txt",
        "100%.txt",
        "what?.txt",
        "hash#tag.txt",
        "back\\slash.txt",
        "-leading-dash",
        "--",
        "日本語/ファイル.txt",
        "tab\there",
    ],
)
def test_odd_names_map_byte_exact(name: str) -> None:
    """Unusual but valid names become prefix + name, unchanged."""
    assert "pre/" + name == object_key("pre/", name.encode())
    assert name == object_key("", name.encode())


def test_nfc_and_nfd_are_different_keys() -> None:
    """NFC and NFD spellings of a name stay distinct, byte-exact keys."""
    nfc = unicodedata.normalize("NFC", "café.txt")
    nfd = unicodedata.normalize("NFD", "café.txt")
    assert nfc != nfd
    assert nfc == object_key("", nfc.encode())
    assert nfd == object_key("", nfd.encode())


# 2024-02-29 23:59:59 UTC, which is already 1 March in UTC+1: the key's date is the UTC one
LEAP_NIGHT = 1709251199.5


@pytest.mark.parametrize(
    ("prefix", "mtime", "key"),
    [
        ("cam/{mtime:%Y/%m/%d}/", LEAP_NIGHT, "cam/2024/02/29/a/b.jpg"),
        ("cam/{mtime:%Y}/{mtime:%j}-", LEAP_NIGHT, "cam/2024/060-a/b.jpg"),
        ("{mtime:%Y-%m-%dT%H%M%S}/", LEAP_NIGHT, "2024-02-29T235959/a/b.jpg"),
        ("{mtime:%G-W%V}/", 0.0, "1970-W01/a/b.jpg"),
        ("old/{mtime:%Y}/", -1.0, "old/1969/a/b.jpg"),
        ("plain/", None, "plain/a/b.jpg"),
        ("plain/", LEAP_NIGHT, "plain/a/b.jpg"),
    ],
)
def test_prefix_with_mtime_fields_uses_the_files_mtime_in_utc(prefix: str, mtime: float | None, key: str) -> None:
    """{mtime:FORMAT} is the file's mtime in UTC with strftime codes; a plain prefix ignores the mtime."""
    assert key == object_key(prefix, b"a/b.jpg", mtime)


def test_touched_file_gets_a_new_key_only_when_its_date_moves() -> None:
    """The key is a function of the mtime: a touch within the day keeps it, one on another day changes it."""
    prefix = "cam/{mtime:%Y/%m/%d}/"
    assert object_key(prefix, b"x.jpg", LEAP_NIGHT) == object_key(prefix, b"x.jpg", LEAP_NIGHT - 3600)
    assert "cam/2024/03/01/x.jpg" == object_key(prefix, b"x.jpg", LEAP_NIGHT + 1)


def test_templated_prefix_without_mtime_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="needs the file's mtime"):
        object_key("cam/{mtime:%Y}/", b"x.jpg")


def test_invalid_utf8_is_skipped_with_escaped_name() -> None:
    """A name that is not UTF-8 raises SkipFile('invalid_utf8') showing the bad byte escaped."""
    with pytest.raises(SkipFile) as info:
        object_key("p/", b"dir/caf\xe9.txt")
    assert "invalid_utf8" == info.value.reason
    assert "\\xe9" in str(info.value)


def test_key_length_limit_counts_bytes_with_prefix() -> None:
    """1023 encoded bytes is the longest key; 1024 is SkipFile('key_too_long')."""
    assert 1023 == len(object_key("p/", b"a" * 1021).encode())
    with pytest.raises(SkipFile) as info:
        object_key("p/", b"a" * 1022)
    assert "key_too_long" == info.value.reason
    assert "1024" in str(info.value)
    euro = "€" * 341  # 3 bytes each: 1023 bytes
    assert euro == object_key("", euro.encode())
    with pytest.raises(SkipFile, match="over"):
        object_key("x", euro.encode())


@pytest.mark.parametrize("raw", [b"", b"a//b", b"./a", b"a/../b", b"..", b"/abs", b"dir/"])
def test_invalid_components_are_skipped(raw: bytes) -> None:
    """Empty, "." and ".." components raise SkipFile('invalid_name')."""
    with pytest.raises(SkipFile) as info:
        object_key("", raw)
    assert "invalid_name" == info.value.reason


# -- classify ----------------------------------------------------------------------------------------


def skip_reason(path: Path, root: Path, follow: bool) -> str:
    """The SkipFile reason classify() raises (fails the test if it returns)."""
    with pytest.raises(SkipFile) as info:
        classify(path, root, follow)
    return info.value.reason


def test_regular_file_returns_its_stat(tmp_path: Path) -> None:
    """A readable regular file gives its stat."""
    f = tmp_path / "a.bin"
    f.write_bytes(b"12345")
    st = classify(f, tmp_path, False)
    assert (5, os.stat(f).st_ino) == (st.st_size, st.st_ino)


def test_directory_fifo_socket_device(tmp_path: Path) -> None:
    """Directories, FIFOs, sockets and devices are skipped with their own reasons (a FIFO is never opened)."""
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp_path / "sock"))
        assert "directory" == skip_reason(tmp_path / "d", tmp_path, False)
        assert "fifo" == skip_reason(tmp_path / "fifo", tmp_path, True)
        assert "socket" == skip_reason(tmp_path / "sock", tmp_path, False)
        assert "device" == skip_reason(Path("/dev/null"), Path("/dev"), False)
    finally:
        sock.close()


def test_symlink_not_followed_says_how_to_enable(tmp_path: Path) -> None:
    """With follow_symlinks off a link is skipped and the message names the setting."""
    (tmp_path / "target.txt").write_text("x")
    (tmp_path / "link").symlink_to("target.txt")
    with pytest.raises(SkipFile) as info:
        classify(tmp_path / "link", tmp_path, False)
    assert "symlink" == info.value.reason
    assert "follow_symlinks = true" in str(info.value)


def test_symlink_inside_root_followed(tmp_path: Path) -> None:
    """With follow_symlinks on a link to a file inside the root gives the target's stat."""
    (tmp_path / "sub").mkdir()
    target = tmp_path / "sub" / "target.txt"
    target.write_text("hello")
    (tmp_path / "link").symlink_to("sub/target.txt")
    st = classify(tmp_path / "link", tmp_path, True)
    assert (5, target.stat().st_ino) == (st.st_size, st.st_ino)


def test_symlink_to_dir_inside_root_is_directory(tmp_path: Path) -> None:
    """A followed link to a directory is reported as a directory."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "dlink").symlink_to("sub")
    assert "directory" == skip_reason(tmp_path / "dlink", tmp_path, True)


def test_symlinks_outside_root(tmp_path: Path) -> None:
    """Links to /dev/null, /etc/shadow or ../elsewhere are never followed out of the root."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("secret")
    (root / "null").symlink_to("/dev/null")
    (root / "shadow").symlink_to("/etc/shadow")
    (root / "up").symlink_to("../outside.txt")
    for name in ("null", "shadow", "up"):
        assert "symlink" == skip_reason(root / name, root, False)
        if name == "shadow" and not os.path.exists("/etc/shadow"):
            continue
        assert "symlink_outside_root" == skip_reason(root / name, root, True)


def test_root_reached_through_a_symlink(tmp_path: Path) -> None:
    """When the root path itself is a link, links to files inside the real root are still inside."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "f.txt").write_text("abc")
    (real / "link").symlink_to(real / "f.txt")
    (tmp_path / "alias").symlink_to(real)
    assert 3 == classify(tmp_path / "alias" / "link", tmp_path / "alias", True).st_size


HAVE_KERNEL_PATHS = keys._kernel_path(Path("/")) is not None  # O_PATH and /proc/self/fd
needs_kernel_paths = pytest.mark.skipif(not HAVE_KERNEL_PATHS, reason="no /proc/self/fd here")


@pytest.fixture(params=[pytest.param("proc", marks=needs_kernel_paths), "no_proc"])
def fd_paths(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a classify test twice: with the path the kernel resolves a file to, and as if /proc were missing."""
    if request.param == "no_proc":
        monkeypatch.setattr(keys, "_kernel_path", lambda path: None)
    return str(request.param)


def test_files_reached_through_symlinked_directories(tmp_path: Path, fd_paths: str) -> None:
    """A file under a symlinked directory follows the symlink rules (inside: only with follow; outside: never)."""
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "f.txt").write_text("abcd")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s")
    (root / "inlink").symlink_to("real")
    (root / "outlink").symlink_to(tmp_path / "outside")
    assert "symlink" == skip_reason(root / "inlink" / "f.txt", root, False)
    assert 4 == classify(root / "inlink" / "f.txt", root, True).st_size
    assert "symlink" == skip_reason(root / "outlink" / "secret.txt", root, False)
    assert "symlink_outside_root" == skip_reason(root / "outlink" / "secret.txt", root, True)
    assert 4 == classify(root / "real" / "f.txt", root, False).st_size


@needs_kernel_paths
def test_plain_file_is_not_resolved_component_by_component(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A regular file below a plain root is checked by the path the kernel resolves it to, without realpath.

    Only a path that is not the plain one (a link on the way) is resolved with realpath; the answers
    are those of the tests above, which also run without /proc.
    """
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("abc")
    (root / "first.txt").write_text("x")
    (root / "link").symlink_to("a")
    classify(root / "first.txt", root, False)  # resolves the root once
    calls: list[str] = []
    real_realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda p, **kw: calls.append(str(p)) or real_realpath(p, **kw))
    assert 3 == classify(root / "a" / "b" / "f.txt", root, False).st_size
    assert [] == calls
    assert "symlink" == skip_reason(root / "link" / "b" / "f.txt", root, False)
    assert str(root / "link" / "b" / "f.txt") in calls


def test_file_behind_a_link_out_of_the_root_is_refused_before_it_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fd_paths: str
) -> None:
    """A regular file reached through a link to outside the root is never opened for reading."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s")
    (root / "outlink").symlink_to(tmp_path / "outside")
    opened: list[str] = []
    real_open = os.open

    def spy(path: object, flags: int, *args: object, **kw: object) -> int:
        if not flags & getattr(os, "O_PATH", 0):
            opened.append(str(path))
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    for follow in (False, True):
        assert skip_reason(root / "outlink" / "secret.txt", root, follow) in ("symlink", "symlink_outside_root")
    assert [] == opened
    assert 1 == classify(tmp_path / "outside" / "secret.txt", tmp_path / "outside", False).st_size
    assert [str(tmp_path / "outside" / "secret.txt")] == opened


def test_root_link_repointed_while_running(tmp_path: Path, fd_paths: str) -> None:
    """A root given as a link is resolved again when it is pointed elsewhere; dot-dot paths still classify."""
    for name, text in (("one", "1"), ("two", "22")):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "f.txt").write_text(text)
    alias = tmp_path / "alias"
    alias.symlink_to(tmp_path / "one")
    assert 1 == classify(alias / "f.txt", alias, False).st_size
    alias.unlink()
    alias.symlink_to(tmp_path / "two")
    assert 2 == classify(alias / "f.txt", alias, False).st_size
    assert 2 == classify(Path(f"{alias}/sub/../f.txt"), alias, False).st_size
    (tmp_path / "two" / "sub" / "out").symlink_to(tmp_path / "one")
    assert "symlink" == skip_reason(alias / "sub" / "out" / "f.txt", alias, False)
    assert "symlink_outside_root" == skip_reason(alias / "sub" / "out" / "f.txt", alias, True)


def test_broken_and_looping_symlinks(tmp_path: Path) -> None:
    """Dangling or looping links are 'broken_symlink' when followed."""
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    assert "broken_symlink" == skip_reason(tmp_path / "dangling", tmp_path, True)
    assert "broken_symlink" == skip_reason(tmp_path / "loop1", tmp_path, True)
    assert "symlink" == skip_reason(tmp_path / "dangling", tmp_path, False)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    """A path that vanished raises FileNotFoundError for the caller to treat as gone."""
    with pytest.raises(FileNotFoundError):
        classify(tmp_path / "gone", tmp_path, False)


def test_unreadable_file_as_unprivileged_user() -> None:
    """A chmod 000 file is 'unreadable' (checked as 'nobody' via setpriv; root can read anything)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run the check as an unprivileged user")
    base = Path(tempfile.mkdtemp(prefix="qsyncd-keys-test-"))
    try:
        base.chmod(0o755)
        (base / "locked").write_text("x")
        (base / "locked").chmod(0o000)
        (base / "open").write_text("y")
        (base / "open").chmod(0o644)
        code = textwrap.dedent(
            f"""
            from pathlib import Path
            from qsyncd.errors import SkipFile
            from qsyncd.keys import classify
            for name in ("locked", "open"):
                try:
                    st = classify(Path({str(base)!r}) / name, Path({str(base)!r}), False)
                    print(name, "ok", st.st_size)
                except SkipFile as exc:
                    print(name, exc.reason, exc)
            """
        )
        out = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, PYTHONPATH=readable_package(base)),  # nobody may not read the checkout
            cwd="/",
            check=False,
        )
        lines = out.stdout.splitlines()
        assert 2 == len(lines), out.stderr
        assert lines[0].startswith("locked unreadable ") and "uid 65534" in lines[0]
        assert "open ok 1" == lines[1]
    finally:
        shutil.rmtree(base)


# -- content_type ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("a/photo.jpg", "image/jpeg"),
        ("PHOTO.JPG", "image/jpeg"),
        ("notes.txt", "text/plain"),
        ("page.html", "text/html"),
        ("noext", "application/octet-stream"),
        ("weird.unknownext", "application/octet-stream"),
        ("backup.tar.gz", "application/gzip"),
        ("log.xz", "application/x-xz"),
        ("data:image.png", "image/png"),
        ("what?.pdf", "application/pdf"),
    ],
)
def test_content_type(relpath: str, expected: str) -> None:
    """MIME type from the built-in table; compressed files get the compressor's type."""
    assert expected == content_type(relpath)


@pytest.mark.parametrize(
    ("include", "exclude"),
    [
        (["*"], []),
        (["*.jpg", "cams/*/keep.txt"], ["*.tmp", "skip", "a/b/*.log"]),
        (["*"], ["*.tmp", "*~", ".*.swp", "cache/", "x/y", "a/b/*.log"]),
    ],
)
def test_file_wanted_agrees_with_wanted_below_wanted_directories(include: list[str], exclude: list[str]) -> None:
    """The scan's shortcut (only the file's own name and path) decides as ``wanted`` for every file
    whose directories ``dir_wanted`` let through; the others the walk never reaches."""
    from qsyncd.keys import PathFilter

    filt = PathFilter(include, exclude)
    names = ["a.jpg", "b.tmp", "keep.txt", "c.log", "d~", ".e.swp", "skip", "plain"]
    dirs = ["", "cams/front/", "a/b/", "a/", "x/", "x/y/", "skip/", "cache/", "deep/er/still/"]
    checked = 0
    for d in dirs:
        parts = [p for p in d.split("/") if p]
        if not all(filt.dir_wanted("/".join(parts[: i + 1])) for i in range(len(parts))):
            continue
        for n in names:
            rel = d + n
            assert filt.file_wanted(n, rel) == filt.wanted(rel), rel
            checked += 1
    assert checked > 20
