"""deploy/qsyncd.service under a real systemd: the host's /usr booted with systemd-nspawn.

The unit is copied in unchanged; a drop-in only swaps ExecStart (the source tree and .venv are bound
read-only at their host paths), shortens WatchdogSec/RestartSec and adds the test hook's environment.
"""

from __future__ import annotations

import json
import secrets
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qsynctest import EmulatorProc
from sdharness import Container

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNIT = "qsyncd.service"
WEDGE = "/run/qsyncd-test/wedge"
PYTHON_HOME = Path(sys.base_prefix)  # where the venv's interpreter really lives


def _binds_ro() -> dict[str, str]:
    binds = {str(REPO): str(REPO)}
    if not str(PYTHON_HOME).startswith("/usr/"):
        binds[str(PYTHON_HOME)] = str(PYTHON_HOME)
    return binds


def _dropin(exec_start: str, env: str = "") -> str:
    lines = [
        "[Service]",
        "ExecStart=",
        f"ExecStart={exec_start}",
        f"Environment=PYTHONPATH={REPO} PYTHONDONTWRITEBYTECODE=1 QSYNCD_TEST_WEDGE_FILE={WEDGE} {env}".rstrip(),
        "WatchdogSec=2s",
        "RestartSec=1s",
    ]
    if str(PYTHON_HOME).startswith(("/root/", "/home/")):
        # A pyenv interpreter under /root: expose just that tree (production installs live in /opt).
        lines += ["ProtectHome=tmpfs", f"BindReadOnlyPaths={PYTHON_HOME}"]
    if str(REPO).startswith(("/tmp/", "/var/tmp/")):
        # A checkout under /tmp (CI clones anywhere): the unit's PrivateTmp= (implied by DynamicUser=)
        # hides it from the service; bind just the checkout into its private /tmp.
        lines += [f"BindReadOnlyPaths={REPO}"]
    return "\n".join(lines) + "\n"


def _install(ct: Container, exec_start: str, secret: str, env: str = "") -> None:
    ct.write("/etc/qsyncd/secret-key", secret + "\n", mode=0o600)
    ct.write(f"/etc/systemd/system/{UNIT}", (DEPLOY / UNIT).read_text())
    ct.write(f"/etc/systemd/system/{UNIT}.d/test.conf", _dropin(exec_start, env))
    ct.path("/run/qsyncd-test").mkdir(parents=True, exist_ok=True)
    ct.exec(["systemctl", "daemon-reload"], check=True)


def _events(ct: Container, event: str) -> list[dict[str, Any]]:
    return ct.journal(UNIT, QSYNCD_EVENT=event)


def _start(ct: Container) -> None:
    proc = ct.exec(["systemctl", "start", UNIT], timeout=60)
    assert proc.returncode == 0, [proc.stderr, *(str(e.get("MESSAGE")) for e in ct.journal(UNIT))]


def _watchdog_restart(ct: Container, wedged_event: str, trigger: Callable[[], None] | None = None) -> None:
    """Create the wedge file (the stub's hook; then ``trigger`` work); the watchdog must restart the
    service (NRestarts=1)."""
    first_pid = ct.show(UNIT, "MainPID")["MainPID"]
    wedge = ct.path(WEDGE)
    wedge.write_text("")
    if trigger is not None:
        trigger()
    try:
        ct.wait_for(lambda: _events(ct, wedged_event), 20, wedged_event)
    finally:
        wedge.unlink()  # the blocked process stays blocked; the restarted one must run normally
    ct.wait_for(lambda: ct.show(UNIT, "NRestarts")["NRestarts"] == "1", 30, "a watchdog restart")
    ct.wait_for(lambda: ct.show(UNIT, "ActiveState")["ActiveState"] == "active", 30, "active again")
    messages = [str(e.get("MESSAGE")) for e in ct.journal(UNIT)]
    assert any("Watchdog timeout" in m for m in messages), messages
    assert any("watchdog" in m and "Failed with result" in m for m in messages), messages
    assert ct.show(UNIT, "MainPID")["MainPID"] != first_pid
    withheld = _events(ct, "watchdog_withheld")
    assert withheld and all(e["_SYSTEMD_UNIT"] == UNIT for e in withheld)


def test_stub_under_shipped_unit(nspawn: Any, tmp_path: Path):
    """The hardened unit runs a notify/journal/watchdog stub: READY, credential, read-only root, restart."""
    drop = tmp_path / "drop"
    drop.mkdir()
    secret = "stub-" + secrets.token_hex(16)
    ct = nspawn(binds_ro=_binds_ro(), binds={str(drop): "/srv/qsyncd"})
    _install(ct, f"{sys.executable} {REPO}/tests/systemd/stub_daemon.py", secret)
    _start(ct)

    props = ct.show(UNIT, "ActiveState", "SubState", "StatusText", "NRestarts")
    assert props == {
        "ActiveState": "active",
        "SubState": "running",
        "StatusText": "watching /srv/qsyncd",
        "NRestarts": "0",
    }
    [started] = _events(ct, "stub_started")
    assert started["_SYSTEMD_UNIT"] == UNIT and started["SYSLOG_IDENTIFIER"] == "qsyncd"
    assert started["QSYNCD_FORMAT"] == "journal"  # auto-detected from $JOURNAL_STREAM
    assert started["QSYNCD_CREDENTIAL_BYTES"] == str(len(secret))
    assert started["QSYNCD_STATE_WRITTEN"] == "True"
    assert started["QSYNCD_WATCH_ROOT_WRITE_ERROR"] == "Read-only file system"
    assert started["QSYNCD_SECRET_ECHO"] == "key=***"
    assert started["QSYNCD_UID"] != "0"  # DynamicUser

    (drop / "hello.txt").write_text("hello")
    ct.wait_for(
        lambda: any(e.get("QSYNCD_PATH") == "/srv/qsyncd/hello.txt" for e in _events(ct, "file_seen")),
        20,
        "inotify event for hello.txt",
    )

    assert ct.exec(["systemctl", "reload", UNIT]).returncode == 0
    ct.wait_for(lambda: _events(ct, "config_reloaded"), 20, "config_reloaded")

    _watchdog_restart(ct, "pipeline_wedged")
    assert len(_events(ct, "stub_started")) == 2

    assert ct.exec(["systemctl", "stop", UNIT]).returncode == 0
    assert _events(ct, "stub_stopping")
    assert ct.show(UNIT, "ActiveState", "Result") == {"ActiveState": "inactive", "Result": "success"}
    assert secret not in json.dumps(ct.journal())


def _uploaded(port: int, key: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/requests", timeout=10) as resp:
        records = json.load(resp)
    return any(
        r.get("operation") == "PutObject" and r.get("key") == key and r.get("status") in (200, 201) for r in records
    )


def test_daemon_under_shipped_unit(nspawn: Any, tmp_path: Path):
    """qsyncd run under the hardened unit: uploads a dropped file, events in the journal, watchdog restart."""
    access_key, secret, bucket = "QSYNCDNSPAWN", "sk-" + secrets.token_hex(16), "qsyncd-nspawn"
    emu = EmulatorProc(
        tmp_path / "emu", tmp_path / "emu.log", credentials={access_key: secret}, buckets=[bucket]
    ).start()
    port = emu.port
    try:
        drop = tmp_path / "drop"
        drop.mkdir()
        ct = nspawn(binds_ro=_binds_ro(), binds={str(drop): "/srv/qsyncd"})
        ct.write(
            "/etc/qsyncd/qsyncd.toml",
            "\n".join(
                [
                    "[qingstor]",
                    f'endpoint = "http://127.0.0.1:{port}"',
                    'zone = ""',
                    f'bucket = "{bucket}"',
                    f'access_key_id = "{access_key}"',
                    # a hung request wedges the worker that sends it: the read timeout must not end it first
                    "read_timeout_seconds = 120",
                    "",
                    "[[watch]]",
                    'path = "/srv/qsyncd"',
                    "",
                    "[settle]",
                    "quiet_seconds = 0.5",
                    "",
                    # how long a pipeline stage may be silent before the watchdog is withheld
                    "[watchdog]",
                    "stall_seconds = 2",
                    "",
                ]
            )
            + "\n",
        )
        _install(ct, f"{sys.executable} -m qsyncd run --config /etc/qsyncd/qsyncd.toml", secret)
        _start(ct)
        assert ct.show(UNIT, "ActiveState")["ActiveState"] == "active"

        (drop / "report.txt").write_bytes(b"quarterly numbers\n")
        ct.wait_for(lambda: _uploaded(port, "report.txt"), 30, "report.txt uploaded to the emulator")
        ct.wait_for(lambda: _events(ct, "upload_finished"), 20, "upload_finished in the journal")
        [finished] = [e for e in _events(ct, "upload_finished") if e.get("QSYNCD_KEY") == "report.txt"]
        assert finished["_SYSTEMD_UNIT"] == UNIT and finished["PRIORITY"] == "6"

        # a real wedge: the emulator holds the next PUT without answering (a hung network call); the worker
        # sending it stops beating, qsyncd withholds the watchdog ping and systemd restarts it
        def hang_next_put() -> None:
            fault = {"operation": "PutObject", "key_prefix": "wedge-me", "stall": 90, "count": 1}
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://127.0.0.1:{port}/_emulator/faults", data=json.dumps(fault).encode(), method="POST"
                ),
                timeout=10,
            ).close()
            (drop / "wedge-me.txt").write_bytes(b"x")

        _watchdog_restart(ct, "watchdog_withheld", hang_next_put)
        ct.wait_for(lambda: _uploaded(port, "wedge-me.txt"), 30, "wedge-me.txt uploaded by the restarted daemon")
        assert ct.exec(["systemctl", "stop", UNIT]).returncode == 0
        assert ct.show(UNIT, "Result")["Result"] == "success"
        assert secret not in json.dumps(ct.journal())
    finally:
        emu.stop(timeout=20)
