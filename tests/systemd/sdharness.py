"""Real systemd pieces for tests: a private journald and an nspawn container (the $NOTIFY_SOCKET listener
is ``qsynctest.notify``).

Recipes from shared/systemd-testing.md. Everything is started in its own namespace (and the container in
its own cgroup), stopped by the PID we started and cleaned up even when a test fails.

Imported by tests/systemd/conftest.py and by tests/test_events.py (tests/conftest.py puts this
directory on sys.path: the directory is deliberately not a package, so ``systemd`` keeps meaning
systemd-python).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from qsynctest.waiting import wait_for

REQUIRE_ENV = "QSYNCD_REQUIRE_SYSTEMD"
JOURNALD = "/lib/systemd/systemd-journald"


def unavailable(reason: str) -> None:
    """Skip with ``reason``; but with ``QSYNCD_REQUIRE_SYSTEMD=1`` (CI) a missing piece is a failure."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


def require_root() -> None:
    """Namespaces, mounts and cgroups need root."""
    if os.geteuid() != 0:
        unavailable("needs root (mount namespaces / cgroups)")


def require_tools(*tools: str) -> None:
    """Every tool must be on PATH (or an absolute path that exists)."""
    for tool in tools:
        if (os.path.isabs(tool) and not os.access(tool, os.X_OK)) or (
            not os.path.isabs(tool) and shutil.which(tool) is None
        ):
            unavailable(f"{tool} is not installed")


def _stop_pid(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Signal one process we started, wait for it, SIGKILL it if it does not go."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


# --------------------------------------------------------------------------- private journald


class PrivateJournald:
    """systemd-journald in a private mount namespace; its socket and journal files live under ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock_dir = base / "sock"
        self.log_dir = base / "log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._children: list[subprocess.Popen[Any]] = []

    @property
    def socket_path(self) -> Path:
        """The native protocol socket, reachable from the host side."""
        return self.sock_dir / "socket"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> PrivateJournald:
        self.sock_dir.mkdir(parents=True)
        self.log_dir.mkdir(parents=True)
        script = f"""
            set -e
            mount -t tmpfs -o mode=755 tmpfs /run
            mkdir -p /run/systemd/journal /run/log/journal /run/systemd/journald.conf.d
            mount --bind '{self.sock_dir}' /run/systemd/journal
            mount --bind '{self.log_dir}' /run/log/journal
            printf '[Journal]\\nStorage=volatile\\nReadKMsg=no\\nRateLimitBurst=0\\n' \
                > /run/systemd/journald.conf.d/qsyncd-test.conf
            mount -t tmpfs tmpfs /var/log/journal
            exec env SYSTEMD_LOG_TARGET=console {JOURNALD}
        """
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
            stdout=open(self.base / "journald.out", "wb"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: self.socket_path.exists() or self.proc.poll() is not None, 10, 0.02, "journald socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"journald exited: {(self.base / 'journald.out').read_text(errors='replace')}")
        return self

    def run(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, **popen_kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` inside journald's mount namespace (so /run/systemd/journal/socket is ours)."""
        cwd = popen_kwargs.pop("cwd", None) or os.getcwd()
        proc = subprocess.Popen(
            ["nsenter", f"--target={self.pid}", "--mount", f"--wd={cwd}", "--", *argv],
            env=dict(env) if env is not None else None,
            **popen_kwargs,
        )
        self._children.append(proc)
        return proc

    def sync(self) -> None:
        """Ask journald to write everything it received (deterministic, no sleeping)."""
        proc = self.run(["journalctl", "--sync"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"journalctl --sync failed: {out.decode(errors='replace')}")

    def entries(self, **match: str) -> list[dict[str, Any]]:
        """All entries (after a sync) matching ``FIELD=value`` pairs, as ``journalctl -o json`` dicts."""
        self.sync()
        argv = ["journalctl", f"--directory={self.log_dir}", "-o", "json", "--no-pager"]
        argv += [f"{k}={v}" for k, v in match.items()]
        out = subprocess.run(argv, check=True, capture_output=True, timeout=30).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        for child in self._children:
            _stop_pid(child)
        if self.proc is not None:
            _stop_pid(self.proc)


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[PrivateJournald]:
    """A private systemd-journald for this test only."""
    require_root()
    require_tools("unshare", "nsenter", "journalctl", JOURNALD)
    jd = PrivateJournald(tmp_path / "journald")
    try:
        yield jd.start()
    finally:
        jd.stop()


# --------------------------------------------------------------------------- systemd-nspawn container


def _cgroup_roots() -> list[Path]:
    """Where to create our own cgroup: both hierarchies on hybrid hosts, the unified root on pure v2."""
    base = Path("/sys/fs/cgroup")
    if (base / "unified").is_dir() and (base / "systemd").is_dir():
        return [base / "systemd", base / "unified"]
    if (base / "cgroup.controllers").exists():
        return [base]
    raise RuntimeError("unsupported cgroup layout under /sys/fs/cgroup")


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:"):
                tree.setdefault(int(line.split()[1]), []).append(int(entry.name))
                break
    return tree


def _descendants(pid: int) -> list[int]:
    tree, out, todo = _children_of(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _container_init(pid: int) -> int | None:
    """The descendant of ``pid`` that is PID 1 in its own PID namespace (the container's systemd)."""
    for child in _descendants(pid):
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and len(line.split()) > 2 and line.split()[-1] == "1":
                return child
    return None


class Container:
    """The host's /usr booted with systemd-nspawn (volatile root) in a cgroup of its own."""

    def __init__(self, base: Path, binds_ro: Mapping[str, str], binds: Mapping[str, str]) -> None:
        self.base = base
        self.name = f"qsyncd-{uuid.uuid4().hex[:8]}"
        self.binds_ro = dict(binds_ro)
        self.binds = dict(binds)
        self.cgroups = [root / f"lab-{self.name}" for root in _cgroup_roots()]
        self.console = base / "console.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.init_pid: int | None = None

    def start(self, timeout: float = 60.0) -> Container:
        for cg in self.cgroups:
            cg.mkdir()
        procs_files = [str(cg / "cgroup.procs") for cg in self.cgroups]

        def enter_cgroup() -> None:  # runs in the child between fork and exec
            for path in procs_files:
                with open(path, "w") as f:
                    f.write(str(os.getpid()))

        args = [
            "--quiet",
            "-D",
            "/",
            "--volatile=yes",
            "--keep-unit",
            "--register=no",
            "-M",
            self.name,
            "--system-call-filter=bpf",
            "--console=read-only",
        ]
        args += [f"--bind-ro={src}:{dst}" for src, dst in self.binds_ro.items()]
        args += [f"--bind={src}:{dst}" for src, dst in self.binds.items()]
        nspawn = " ".join(shlex.quote(a) for a in ["systemd-nspawn", *args, "--boot", "--", "systemd.firstboot=off"])
        script = f"mount -t tmpfs tmpfs /run && exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 {nspawn}"
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=open(self.console, "wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=enter_cgroup,
        )
        deadline = time.monotonic() + timeout
        while (pid := _container_init(self.proc.pid)) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"container did not start: {self.console.read_text(errors='replace')}")
            time.sleep(0.05)
        self.init_pid = pid
        # PID 1 may still be nspawn's inner child or a systemd without its bus yet: ask until it answers.
        while True:
            proc = self.exec(["systemctl", "is-system-running", "--wait"], timeout=timeout)
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                return self
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(
                    f"container system state {state!r}: {proc.stderr}\n{self.console.read_text(errors='replace')}"
                )
            time.sleep(0.1)

    def exec(
        self, argv: Sequence[str], *, timeout: float = 60.0, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the container (all its namespaces) and capture its output."""
        assert self.init_pid is not None
        return subprocess.run(
            ["nsenter", "-t", str(self.init_pid), "-a", "--", *argv],
            text=True,
            capture_output=True,
            timeout=timeout,
            input=input,
            check=check,
        )

    def path(self, inside: str) -> Path:
        """A path inside the container, reachable from the host via /proc/PID/root."""
        return Path(f"/proc/{self.init_pid}/root") / inside.lstrip("/")

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        """Create a file inside the container (parents included)."""
        target = self.path(inside)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict."""
        out = self.exec(["systemctl", "show", unit, *[f"--property={p}" for p in props]], check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str | None = None, **match: str) -> list[dict[str, Any]]:
        """Journal entries of the container (``-u unit`` and/or FIELD=value matches)."""
        self.exec(["journalctl", "--sync"])
        argv = ["journalctl", "-o", "json", "--no-pager"]
        if unit:
            argv += ["-u", unit]
        argv += [f"{k}={v}" for k, v in match.items()]
        out = self.exec(argv, check=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_for(self, predicate: Any, timeout: float, what: str) -> None:
        """Poll ``predicate()`` until true (TimeoutError naming ``what`` otherwise)."""
        wait_for(predicate, timeout, 0.2, what)

    def stop(self) -> None:
        """Clean poweroff (nspawn turns SIGTERM into SIGRTMIN+3), then remove our cgroups."""
        if self.proc is not None:
            _stop_pid(self.proc, signal.SIGTERM, timeout=30)
        for cg in self.cgroups:
            _remove_cgroup(cg)


def _remove_cgroup(cg: Path) -> None:
    """rmdir depth-first; anything still inside was started by our container: SIGKILL it by PID first."""
    if not cg.exists():
        return
    for dirpath, _dirs, _files in os.walk(cg, topdown=False):
        procs = Path(dirpath, "cgroup.procs")
        for _ in range(50):
            try:
                pids = [int(p) for p in procs.read_text().split()]
            except OSError:
                pids = []
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        try:
            os.rmdir(dirpath)
        except OSError:
            pass


@pytest.fixture
def nspawn(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``nspawn(binds_ro={host: inside}, binds={host: inside})`` boots one container.

    Every container the test boots is powered off and its cgroups removed at teardown.
    """
    require_root()
    require_tools("systemd-nspawn", "unshare", "nsenter")
    try:
        _cgroup_roots()
    except RuntimeError as exc:
        unavailable(str(exc))
    started: list[Container] = []

    def boot(binds_ro: Mapping[str, str] | None = None, binds: Mapping[str, str] | None = None) -> Container:
        base = tmp_path / f"container{len(started)}"
        base.mkdir()
        ct = Container(base, binds_ro or {}, binds or {})
        started.append(ct)
        return ct.start()

    try:
        yield boot
    finally:
        for ct in started:
            ct.stop()
