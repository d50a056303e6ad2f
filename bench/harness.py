"""Plumbing shared by the benchmark scenarios.

- ``EmulatorProc``: the QingStor emulator as a subprocess (``python -m qsyncd.emulator.cli``), its
  request log (admin endpoint) and its CPU time;
- ``run_measured``: run a command to completion and return wall time, peak RSS and CPU seconds of
  exactly that process (``os.wait4`` rusage), so nothing else on the machine is counted;
- config writers for qsyncd (defaults unless a scenario says otherwise) and rclone;
- ``signed_headers``: a QingStor header signature for plain HTTP clients (curl);
- small statistics helpers. Nothing here asserts a time: figures are reported, never judged.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

REPO = Path(__file__).resolve().parent.parent
_VENV_BIN = REPO / ".venv" / "bin"
BIN = _VENV_BIN if _VENV_BIN.is_dir() else Path(sys.executable).parent
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
QSYNCD = str(BIN / "qsyncd")
RCLONE = str(BIN / "rclone") if (BIN / "rclone").exists() else (shutil.which("rclone") or "rclone")
CURL = shutil.which("curl") or "curl"

ACCESS_KEY = "QSYNCDBENCHKEY000000"
SECRET = "bench-" + secrets.token_hex(16)  # per invocation; never printed
BUCKET = "qsyncd-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20


class BenchError(RuntimeError):
    """A contender failed (non-zero exit, missing object): the figure would be meaningless."""


# ---------------------------------------------------------------------------------------------- procs


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        data = fh.read().decode("ascii", "replace")
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm_kib(pid: int) -> int:
    """VmHWM (peak RSS) of a live process in KiB, 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Measured:
    """One finished process: wall seconds, exit code, peak RSS (KiB) and CPU seconds (user+sys)."""

    seconds: float
    rc: int
    maxrss_kib: int
    cpu: float
    log: Path
    emu_cpu: float = 0.0
    emu_complete: float = 0.0  # multipart only: the emulator's CompleteMultipartUpload service time
    reported_mib: float | None = None  # free memory the VM handed back to its host during the run
    steal: float | None = None  # CPU seconds the host ran something else while this VM wanted to run

    def check(self, what: str) -> Measured:
        if self.rc != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise BenchError(f"{what} exited with {self.rc}:\n{tail}")
        return self


def run_measured(
    argv: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    emulator: EmulatorProc | None = None,
    timeout: float = 3600.0,
) -> Measured:
    """Run ``argv`` to completion; its output goes to ``log``. Kills it (by PID) on timeout or error."""
    full_env = {**os.environ, **(env or {})}
    os.sync()  # start every run with no dirty pages left by the previous one (writeback is not its cost)
    before = Counters.read(emulator)
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=str(REPO))
        hwm = 0  # the program's own VmHWM: wait4's ru_maxrss also counts the memory of this (vforked) process
        try:
            deadline = time.monotonic() + timeout
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                hwm = max(hwm, proc_hwm_kib(proc.pid))
                if time.monotonic() > deadline:
                    raise BenchError(f"{argv[0]} did not finish within {timeout} s")
                time.sleep(0.01)
        except BaseException:
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=30)
                except (subprocess.TimeoutExpired, ChildProcessError):
                    pass
            raise
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        seconds,
        proc.returncode,
        # Linux keeps the larger of the pre-exec and post-exec high-water marks in ru_maxrss, and a
        # vforked child shares this process's memory until exec: with a big bench process (1,000,000
        # paths written) ru_maxrss said 444 MiB where the program's own VmHWM was 140. A run too short
        # to be sampled keeps ru_maxrss.
        hwm or ru.ru_maxrss,
        ru.ru_utime + ru.ru_stime,
        Path(log),
        **Counters.read(emulator).since(before),
    )


class Counters(NamedTuple):
    """Machine-wide counters read around a run: the emulator's CPU seconds, the memory the VM has
    reported to its host (KiB) and the steal time (s); None where this machine has no such counter."""

    emu_cpu: float
    reported_kib: int | None
    steal: float | None

    @classmethod
    def read(cls, emulator: EmulatorProc | None) -> Counters:
        return cls(emulator.cpu() if emulator else 0.0, page_reporting_kib(), steal_seconds())

    def since(self, before: Counters) -> dict[str, Any]:
        """What happened between ``before`` and these, as ``Measured`` fields."""
        return {
            "emu_cpu": self.emu_cpu - before.emu_cpu,
            "reported_mib": None
            if self.reported_kib is None or before.reported_kib is None
            else (self.reported_kib - before.reported_kib) / 1024,
            "steal": None if self.steal is None or before.steal is None else self.steal - before.steal,
        }


def steal_seconds() -> float | None:
    """Steal time of all CPUs so far (/proc/stat), in seconds: time a virtual CPU was ready to run
    while the host ran something else. None where the kernel does not report it. A run with steal
    was slowed by the host's other guests, not by what it ran itself."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / CLK_TCK if fields[0] == b"cpu" and len(fields) > 8 else None
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------- VM memory

# A VM with free page reporting (virtio-balloon; this benchmark machine is one) hands free memory
# back to its host some time after it was freed; the next write into such a page faults in the host
# and costs the guest several times the copy. Deleting the previous run's 1 GiB object frees 1 GiB
# of page cache that stays cheap only until the reporter has walked it (0.7-3 s here), so the run
# right after a delete writes partly into recycled and partly into handed-back pages, depending on
# how fast it starts and writes. ``settle_memory`` waits the reporter out, so every run starts alike.
PAGE_REPORTING_KIB = Path("/sys/module/page_reporting/parameters/reported_kib")


def page_reporting_kib() -> int | None:
    """The kernel's count of free memory reported to the host (KiB), None without page reporting."""
    try:
        return int(PAGE_REPORTING_KIB.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def settle_memory(minimum: float = 4.0, quiet: float = 1.0, cap: float = 10.0) -> float:
    """Wait at least ``minimum`` seconds (the reporter walks freed memory in bursts 0.7 and ~3 s after
    a large free here), then until it has been idle for ``quiet`` seconds, at most ``cap`` in all;
    returns the seconds waited (0 without page reporting: nothing to wait for)."""
    last = page_reporting_kib()
    if last is None:
        return 0.0
    t0 = since = time.monotonic()
    while (now := time.monotonic()) - t0 < minimum or (now - since < quiet and now - t0 < cap):
        time.sleep(0.1)
        value = page_reporting_kib()
        if value != last:
            last, since = value, time.monotonic()
    return time.monotonic() - t0


def read_events(log: Path, name: str | None = None) -> list[dict[str, Any]]:
    """JSON events (``--log-format json``) from a qsyncd log file."""
    out = []
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if name is None or ev.get("event") == name:
            out.append(ev)
    return out


class DaemonProc:
    """``qsyncd run`` as a subprocess (JSON events to a log file), stopped by PID."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self._out: Any = None

    def start(self, wrap: Sequence[str] = ()) -> DaemonProc:
        """Spawn the daemon; ``wrap``: a command that execs the rest of its arguments (the PID stays the daemon's)."""
        self._out = open(self.log, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*wrap, QSYNCD, "run", "-c", str(self.config), "--log-format", "json"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return read_events(self.log, name)

    def wait_event(self, name: str, timeout: float, pred: Any = None, count: int = 1) -> list[dict[str, Any]]:
        """Wait until ``count`` events called ``name`` (matching ``pred``) are in the log."""
        deadline = time.monotonic() + timeout
        while True:
            evs = [e for e in self.events(name) if pred is None or pred(e)]
            if len(evs) >= count:
                return evs
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"qsyncd run exited ({self.proc.returncode}) waiting for {name}")
            if time.monotonic() > deadline:
                raise BenchError(f"timed out waiting for {count}x {name} (got {len(evs)})")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._out is not None:
            self._out.close()
            self._out = None


# ---------------------------------------------------------------------------------------------- emulator


class EmulatorProc:
    """``python -m qsyncd.emulator.cli`` on 127.0.0.1 with a random port; stopped by PID."""

    def __init__(self, root: Path, workdir: Path) -> None:
        self.root = root
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log: Any = None

    def start(self, timeout: float = 30.0) -> EmulatorProc:
        port_file = self.workdir / "emulator.port"
        port_file.unlink(missing_ok=True)  # a kept work dir (--scale-dir) holds the last run's
        self._log = open(self.workdir / "emulator.log", "ab")
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "qsyncd.emulator.cli",
                "--root",
                str(self.root),
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--access-key-id",
                ACCESS_KEY,
                "--secret-access-key",
                SECRET,
                "--bucket",
                BUCKET,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            cwd=str(REPO),
        )
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError("the emulator did not start; see emulator.log")
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body).encode())
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 300:
                raise BenchError(f"emulator admin {method} {path}: {resp.status}")
            return json.loads(data) if data else None
        finally:
            conn.close()

    def requests(self) -> list[dict[str, Any]]:
        """The request log (admin requests excluded)."""
        return self._admin("GET", "/_emulator/requests")

    def clear_requests(self) -> None:
        self._admin("DELETE", "/_emulator/requests")

    def set_latency(self, seconds: float) -> None:
        """Delay every later request by ``seconds`` (0: none), as a network round trip would."""
        self._admin("DELETE", "/_emulator/faults")
        if seconds > 0:
            self._admin("POST", "/_emulator/faults", {"latency": seconds, "count": None})

    def complete_seconds(self, key: str) -> float:
        """How long the emulator spent on CompleteMultipartUpload of ``key``: from the end of the
        last UploadMultipart to the end of the Complete (its log line is written when a request ends)."""
        last_part = done = None
        with open(self.workdir / "emulator.log", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if f"key={key!r}" not in line:
                    continue
                when = _log_time(line)
                if "operation=UploadMultipart " in line:
                    last_part = when
                elif "operation=CompleteMultipartUpload " in line and " status=201" in line:
                    done = when
        if last_part is None or done is None:
            return 0.0
        return max(0.0, done - last_part)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


def _log_time(line: str) -> float:
    """``2026-11-25 12:24:59,600 ...`` (the emulator's log format) -> epoch seconds (local time)."""
    stamp = line[:23]
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:23]) / 1000


def signed_headers(method: str, path: str, *, content_type: str = "") -> dict[str, str]:
    """``Date`` + ``Authorization`` for ``method path`` (no sub-resources), QingStor header signing."""
    from qsyncd.emulator import signing

    date = email.utils.formatdate(usegmt=True)
    items = [("Date", date)] + ([("Content-Type", content_type)] if content_type else [])
    sig = signing.header_signature(SECRET, method, path, "", items)
    return {"Date": date, "Authorization": f"QS {ACCESS_KEY}:{sig}"}


def make_remote(emu: EmulatorProc) -> Any:
    """qsyncd's own SDK-based client, pointed at the emulator (for HEAD checks)."""
    from qsyncd.remote.qingstor import QingStorRemote

    return QingStorRemote(
        endpoint=emu.url,
        zone="",
        bucket=BUCKET,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET,
        connect_timeout=5,
        read_timeout=60,
    )


# ---------------------------------------------------------------------------------------------- configs


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))


def qsyncd_config(
    path: Path,
    emu: EmulatorProc,
    *,
    watch: Path,
    state: Path,
    prefix: str,
    settle: dict[str, Any] | None = None,
    upload: dict[str, Any] | None = None,
    extra: str = "",
) -> Path:
    """A qsyncd.toml with qsyncd's defaults, except what a scenario passes explicitly (``extra``: more tables)."""
    secret_file = path.with_name(path.name + ".secret")
    secret_file.write_text(SECRET)
    os.chmod(secret_file, 0o600)
    lines = [
        "[qingstor]",
        f"endpoint = {_toml(emu.url)}",
        'zone = ""',
        f"bucket = {_toml(BUCKET)}",
        f"access_key_id = {_toml(ACCESS_KEY)}",
        f"secret_access_key_file = {_toml(secret_file)}",
        "",
        "[[watch]]",
        f"path = {_toml(watch)}",
        f"prefix = {_toml(prefix)}",
        "",
    ]
    if settle:
        lines += ["[settle]"] + [f"{k} = {_toml(v)}" for k, v in settle.items()] + [""]
    if upload:
        lines += ["[upload]"] + [f"{k} = {_toml(v)}" for k, v in upload.items()] + [""]
    lines += ["[state]", f"dir = {_toml(state)}", "", extra]
    path.write_text("\n".join(lines))
    os.chmod(path, 0o600)
    return path


def rclone_config(path: Path, emu: EmulatorProc) -> Path:
    """An rclone.conf with a ``qingstor`` remote called ``emu`` (reached through ``--http-proxy``)."""
    path.write_text(
        "\n".join(
            [
                "[emu]",
                "type = qingstor",
                "env_auth = false",
                f"access_key_id = {ACCESS_KEY}",
                f"secret_access_key = {SECRET}",
                f"endpoint = {emu.url}",
                "zone = pek3a",
                "",
            ]
        )
    )
    os.chmod(path, 0o600)
    return path


def rclone_argv(conf: Path, emu: EmulatorProc, *args: str) -> list[str]:
    """rclone with the config and the proxy that makes ``pek3a.127.0.0.1`` reach the emulator."""
    return [RCLONE, "--config", str(conf), "--http-proxy", emu.url, "-q", *args]


# ---------------------------------------------------------------------------------------------- stats


T = TypeVar("T")


def rotated(items: Sequence[T], r: int) -> list[T]:
    """Round ``r``'s running order: the contenders rotated by ``r``, so over as many rounds as there
    are contenders each one runs first once (the first run of a round follows different work than
    the others: writing the data, another scenario, a pause)."""
    k = r % len(items) if items else 0
    return list(items[k:]) + list(items[:k])


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    contender: str
    figure: str
    ratio: str = ""
    target: str = ""
    verdict: str = ""
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def fmt(x: float, digits: int = 1) -> str:
    if x != x:  # nan
        return "n/a"
    return f"{x:,.{digits}f}"
