"""Reliability fixtures: seeds, soak scaling, a rig (watch tree + emulator + daemon), byte-exact
convergence checks, and a guard that greps every captured output for the secret and signatures.
The emulators (``fast_emulator``, ``emulator_proc``), ``NotifySocket`` and the digests are ``qsynctest``'s;
here they are seeded from the test's seed (``emulator_seed``).

CI mode is the default. ``QSYNCD_SOAK=1`` scales the counts up (200 kill points, 20,000 flood
files, ...). Every randomized test prints its seed; ``QSYNCD_SEED=N`` reproduces a run.
Figures (files, faults injected, kills, bytes compared, lost) are summed over the session and
printed at the end; RELIABILITY.md quotes them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from qsynctest import BUCKET, REPO

PY = sys.executable
SOAK = os.environ.get("QSYNCD_SOAK") == "1"
UPLOAD_OPS = ("PutObject", "UploadMultipart")

# Session-wide figures for RELIABILITY.md.
FIGURES: dict[str, int] = {
    "files": 0,
    "faults_injected": 0,
    "kills": 0,
    "bytes_compared": 0,
    "lost": 0,
    "outputs_grepped": 0,
    "bytes_grepped": 0,
    "secret_hits": 0,
}
SEEDS: list[tuple[str, int]] = []
# Every signature seen in an Authorization header by an in-process emulator.
SIGNATURES: set[str] = set()
_SIG_LOCK = threading.Lock()


def scale(ci: int, soak: int) -> int:
    """A count for this mode: ``ci`` by default, ``soak`` with QSYNCD_SOAK=1."""
    return soak if SOAK else ci


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Soak mode runs for a long time: lift the per-test timeout (pyproject's 300 s) for this directory."""
    if not SOAK:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(4 * 3600))


@pytest.fixture(scope="session", autouse=True)
def _spy_signatures() -> Iterator[None]:
    """Record the signature of every Authorization header the in-process emulators verify."""
    from qsyncd.emulator import server

    original = server.Handler.authenticate

    def authenticate(self: Any) -> None:
        auth = self.headers.get("Authorization") or ""
        _, _, rest = auth.partition(" ")
        sig = rest.partition(":")[2].strip()
        if len(sig) >= 16:
            with _SIG_LOCK:
                SIGNATURES.add(sig)
        if "signature" in getattr(self, "query", {}):
            with _SIG_LOCK:
                SIGNATURES.add(str(self.query["signature"]))
        return original(self)

    server.Handler.authenticate = authenticate  # type: ignore[method-assign]
    try:
        yield
    finally:
        server.Handler.authenticate = original  # type: ignore[method-assign]


# ----------------------------------------------------------------------------- seeds
@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The test's random seed: $QSYNCD_SEED or a fresh one; printed so a failure can be replayed."""
    value = int(os.environ.get("QSYNCD_SEED") or random.SystemRandom().randrange(1, 2**31))
    SEEDS.append((request.node.nodeid, value))
    print(f"\n{request.node.nodeid}: seed={value} (reproduce: QSYNCD_SEED={value})")
    return value


@pytest.fixture
def emulator_seed(seed: int) -> int:
    """The emulators of this suite (``fast_emulator``, ``emulator_proc``) draw their faults from the test's seed."""
    return seed


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the seeds and the figures of this run."""
    if SEEDS:
        terminalreporter.write_sep("-", "reliability seeds (QSYNCD_SEED=N reproduces)")
        for nodeid, value in SEEDS:
            terminalreporter.write_line(f"{nodeid}: {value}")
    if any(FIGURES.values()):
        terminalreporter.write_sep("-", f"reliability figures ({'soak' if SOAK else 'ci'} mode)")
        terminalreporter.write_line(json.dumps(FIGURES, sort_keys=True))
        out = os.environ.get("QSYNCD_FIGURES_FILE")
        if out:
            Path(out).write_text(json.dumps({"mode": "soak" if SOAK else "ci", **FIGURES}, indent=2))


# ----------------------------------------------------------------------------- secret guard
CAPTURE_SUFFIXES = (".log", ".out", ".err", ".jsonl", ".status")


def grep_outputs(paths: list[Path], needles: list[str]) -> list[str]:
    """Every ``path: needle`` where a needle occurs in a captured output (bytes-level search)."""
    hits = []
    enc = [(n, n.encode()) for n in needles if n]
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError:
            continue
        FIGURES["outputs_grepped"] += 1
        FIGURES["bytes_grepped"] += len(data)
        for text, raw in enc:
            if raw in data:
                hits.append(f"{p}: contains {text[:6]}...")
    return hits


def captured_files(root: Path) -> list[Path]:
    """Logs and outputs a test captured under ``root`` (never the emulator's stored objects)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("emu", "tree", "watch")]
        for f in filenames:
            if f.endswith(CAPTURE_SUFFIXES):
                out.append(Path(dirpath) / f)
    return out


@pytest.fixture(autouse=True)
def secret_guard(tmp_path: Path, shared: types.ModuleType) -> Iterator[None]:
    """After each test: the secret and every signature seen must appear in none of its outputs."""
    yield
    with _SIG_LOCK:
        needles = [shared.SECRET, *sorted(SIGNATURES)]
    hits = grep_outputs(captured_files(tmp_path), needles)
    FIGURES["secret_hits"] += len(hits)
    assert not hits, "secret or signature leaked:\n" + "\n".join(hits)


# ----------------------------------------------------------------------------- helpers
def local_tree(root: Path) -> dict[str, Path]:
    """relpath (as key) -> path of every regular file under ``root``."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink():
                out[os.path.relpath(p, root).replace(os.sep, "/")] = p
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class StoredObject:
    """One object version as the emulator stores it: one data file (PUT) or its parts' files in order
    (a completed multipart upload). Reading it on a live emulator may raise OSError when the object is
    replaced meanwhile."""

    paths: tuple[Path, ...]

    @property
    def name(self) -> str:
        """Names this version (its first data file's name is unique to it)."""
        return self.paths[0].name

    def exists(self) -> bool:
        """Whether every data file is still there."""
        return all(p.exists() for p in self.paths)

    def size(self) -> int:
        """The object's size in bytes."""
        return sum(os.path.getsize(p) for p in self.paths)

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The object's bytes in order, ``size`` bytes at a time (a file boundary may cut a chunk short)."""
        for path in self.paths:
            with open(path, "rb") as fh:
                while chunk := fh.read(size):
                    yield chunk

    def read_bytes(self) -> bytes:
        """The whole object."""
        return b"".join(self.chunks())

    def equals_file(self, path: Path) -> bool:
        """Byte-for-byte comparison with a local file."""
        with open(path, "rb") as fh:
            for chunk in self.chunks():
                if fh.read(len(chunk)) != chunk:
                    return False
            return fh.read(1) == b""


def object_metas(emu_root: Path, bucket: str = BUCKET) -> dict[str, tuple[dict[str, Any], StoredObject]]:
    """key -> (metadata, stored data), read from the emulator's on-disk layout WITHOUT opening a Store
    (opening one cleans up the .tmp files of requests in flight, which would break a live emulator)."""
    out: dict[str, tuple[dict[str, Any], StoredObject]] = {}
    odir = emu_root / "buckets" / bucket / "objects"
    if not odir.is_dir():
        return out
    for sub in odir.iterdir():
        if not sub.is_dir():
            continue
        for name in os.listdir(sub):
            if name.endswith(".json") and not name.startswith(".tmp-"):
                meta = _read_json(sub / name)
                if meta is None:
                    continue
                stored = StoredObject(tuple(sub / n for n in (meta.get("data_files") or [meta["data_file"]])))
                if stored.exists():
                    out[meta["key"]] = (meta, stored)
    return out


def bucket_objects(emu_root: Path, bucket: str = BUCKET) -> dict[str, StoredObject]:
    """key -> stored data of every object in the emulator's store (read-only; works on a live emulator)."""
    return {k: p for k, (_, p) in object_metas(emu_root, bucket).items()}


def bucket_uploads(emu_root: Path, bucket: str = BUCKET) -> dict[str, dict[str, Any]]:
    """upload_id -> upload.json of the unfinished multipart uploads (read-only)."""
    out = {}
    udir = emu_root / "buckets" / bucket / "uploads"
    if udir.is_dir():
        for sub in udir.iterdir():
            meta = _read_json(sub / "upload.json")
            if meta is not None:
                out[sub.name] = meta
    return out


@dataclass
class Diff:
    missing: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    compared_bytes: int = 0

    @property
    def equal(self) -> bool:
        return not (self.missing or self.differ or self.extra)

    def __str__(self) -> str:
        return (
            f"missing={self.missing[:10]} ({len(self.missing)}) differ={self.differ[:10]} "
            f"({len(self.differ)}) extra={self.extra[:10]} ({len(self.extra)})"
        )


def compare(local: dict[str, Path], remote: dict[str, StoredObject], *, allow_extra: bool = False) -> Diff:
    """Compare the expected keys (local) to the bucket, byte for byte."""
    d = Diff()
    for key, path in local.items():
        rp = remote.get(key)
        if rp is None:
            d.missing.append(key)
            continue
        try:
            same = rp.size() == os.path.getsize(path) and rp.equals_file(path)
        except OSError:
            same = False
        if not same:
            d.differ.append(key)
        else:
            d.compared_bytes += os.path.getsize(path)
    if not allow_extra:
        d.extra = sorted(set(remote) - set(local))
    return d


def _sizes_match(exp: dict[str, Path], remote: dict[str, StoredObject]) -> bool:
    """Whether every expected file that exists has the size of its object (False if one vanished meanwhile)."""
    try:
        return all(remote[k].size() == os.path.getsize(p) for k, p in exp.items() if p.exists())
    except OSError:
        return False


def wait_converged(
    emu_root: Path,
    expected: Callable[[], dict[str, Path]],
    *,
    timeout: float,
    daemon: Any = None,
    allow_extra: bool = False,
    count: bool = True,
) -> Diff:
    """Wait until the bucket holds exactly the expected files; return the final byte-for-byte diff."""
    deadline = time.monotonic() + timeout
    last = Diff()
    odir = emu_root / "buckets" / BUCKET / "objects"
    while True:
        exp = expected()
        # cheap pre-check (no JSON parsing) so polling does not steal the CPU from the daemon
        have = sum(
            1
            for sub in (odir.iterdir() if odir.is_dir() else ())
            for n in os.listdir(sub)
            if n.endswith(".json") and not n.startswith(".tmp-")
        )
        if have < len(exp) and time.monotonic() < deadline:
            time.sleep(1.0)
            continue
        remote = bucket_objects(emu_root)
        # cheap pre-check on sizes before reading bytes
        if set(exp) <= set(remote) and _sizes_match(exp, remote):
            last = compare(exp, remote, allow_extra=allow_extra)
            if last.equal:
                if count:
                    FIGURES["files"] += len(exp)
                    FIGURES["bytes_compared"] += last.compared_bytes
                return last
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {daemon.proc.returncode}:\n{daemon.tail()}")
        if time.monotonic() > deadline:
            last = compare(exp, remote, allow_extra=allow_extra)
            FIGURES["lost"] += len(last.missing) + len(last.differ)
            tail = daemon.tail(60) if daemon is not None else ""
            raise AssertionError(f"bucket did not converge: {last}\n{tail}")
        time.sleep(0.5)


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def run_cli(
    args: list[str], out: Path, *, env: dict[str, str] | None = None, timeout: float = 60, user: int | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m qsyncd ARGS``; stdout and stderr are saved under ``out``.{out,err} for the secret grep."""
    cp = subprocess.run(
        [PY, "-m", "qsyncd", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
        env={**os.environ, **(env or {})},
        user=user,
    )
    out.with_suffix(".out").write_text(cp.stdout)
    out.with_suffix(".err").write_text(cp.stderr)
    return cp


# ----------------------------------------------------------------------------- the rig
class Rig:
    """A watch tree, a state dir, a config and daemons against one emulator root."""

    def __init__(self, tmp: Path, shared: types.ModuleType, url: str, emu_root: Path) -> None:
        self.tmp = tmp
        self.shared = shared
        self.url = url
        self.emu_root = emu_root
        self.tree = tmp / "tree"
        self.tree.mkdir(exist_ok=True)
        self.state = tmp / "state"
        self.config = tmp / "qsyncd.toml"
        self.daemons: list[Any] = []

    def write_config(self, **kw: Any) -> Path:
        kw.setdefault("watch", self.tree)
        kw.setdefault("state", self.state)
        return self.shared.write_config(self.config, endpoint=self.url, **kw)

    def daemon(self, *, env: dict[str, str] | None = None, start: bool = True, config: Path | None = None) -> Any:
        d = self.shared.DaemonProc(config or self.config, self.tmp / f"daemon-{len(self.daemons)}.log", env=env)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def all_events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [e for d in self.daemons for e in d.events(name)]

    def converge(
        self,
        *,
        timeout: float = 120,
        daemon: Any = None,
        allow_extra: bool = False,
        expected: Callable[[], dict[str, Path]] | None = None,
    ) -> Diff:
        return wait_converged(
            self.emu_root,
            expected or (lambda: local_tree(self.tree)),
            timeout=timeout,
            daemon=daemon,
            allow_extra=allow_extra,
        )

    def cleanup(self) -> None:
        for d in self.daemons:
            d.stop(signal.SIGKILL, timeout=10)


@pytest.fixture
def rig(tmp_path: Path, shared: types.ModuleType, fast_emulator: Any) -> Iterator[Rig]:
    """A rig on an in-process emulator; every daemon it started is SIGKILLed afterwards."""
    r = Rig(tmp_path, shared, fast_emulator.url, fast_emulator.root)
    r.emu = fast_emulator  # type: ignore[attr-defined]
    try:
        yield r
    finally:
        r.cleanup()


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
