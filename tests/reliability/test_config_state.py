"""Bad config and credentials (messages + exit 78), secrets never printed, the state-dir lock, and a state
dir on a full or read-only filesystem."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from relsupport import (
    BUCKET,
    SIGNATURES,
    Rig,
    captured_files,
    grep_outputs,
    run_cli,
)

EX_CONFIG = 78

# (table, key, a value of the wrong type) for every key qsyncd reads.
WRONG: list[tuple[str, str, str]] = [
    ("qingstor", "endpoint", "12345"),
    ("qingstor", "zone", "[1]"),
    ("qingstor", "bucket", "true"),
    ("qingstor", "access_key_id", "7"),
    ("qingstor", "secret_access_key_file", "1.5"),
    ("qingstor", "connect_timeout_seconds", '"soon"'),
    ("qingstor", "read_timeout_seconds", "[]"),
    ("watch", "path", "42"),
    ("watch", "prefix", "false"),
    ("watch", "include", '"*.txt"'),
    ("watch", "exclude", "5"),
    ("watch", "exclude_defaults", '"yes"'),
    ("watch", "recursive", "1"),
    ("watch", "follow_symlinks", '"no"'),
    ("watch", "after_upload", "true"),
    ("watch", "watcher", "3"),
    ("watch", "poll_interval_seconds", '"fast"'),
    ("settle", "quiet_seconds", '"a while"'),
    ("settle", "max_wait_seconds", "[2]"),
    ("settle", "rescan_interval_seconds", "true"),
    ("upload", "multipart_threshold", '"lots"'),
    ("upload", "part_size", "true"),
    ("upload", "concurrency", '"4"'),
    ("upload", "part_concurrency", "2.5"),
    ("upload", "storage_class", "1"),
    ("upload", "max_bytes_per_second", "[]"),
    ("upload", "retry_initial_seconds", '"x"'),
    ("upload", "retry_max_seconds", "false"),
    ("upload", "part_retries", '"many"'),
    ("upload", "permanent_retry_seconds", "{a = 1}"),
    ("upload", "store_metadata", '"true"'),
    ("state", "dir", "99"),
    ("log", "format", "1"),
    ("log", "level", "2"),
    ("metrics", "listen", "9464"),
]


def base_tables(tmp: Path, endpoint: str, secret_file: Path) -> dict[str, dict[str, str]]:
    """A valid config as TOML source values per table (values are TOML literals)."""
    (tmp / "w").mkdir(exist_ok=True)
    return {
        "qingstor": {
            "endpoint": json.dumps(endpoint),
            "zone": '""',
            "bucket": json.dumps(BUCKET),
            "access_key_id": '"QSYNCDTESTKEY"',
            "secret_access_key_file": json.dumps(str(secret_file)),
            "connect_timeout_seconds": "2",
            "read_timeout_seconds": "5",
        },
        "watch": {
            "path": json.dumps(str(tmp / "w")),
            "prefix": '""',
            "include": '["*"]',
            "exclude": "[]",
            "exclude_defaults": "true",
            "recursive": "true",
            "follow_symlinks": "false",
            "after_upload": '"keep"',
            "watcher": '"inotify"',
            "poll_interval_seconds": "5",
        },
        "settle": {"quiet_seconds": "1", "max_wait_seconds": "300", "rescan_interval_seconds": "600"},
        "upload": {
            "multipart_threshold": '"64MiB"',
            "part_size": '"16MiB"',
            "concurrency": "4",
            "part_concurrency": "4",
            "storage_class": '"STANDARD"',
            "max_bytes_per_second": "0",
            "retry_initial_seconds": "1",
            "retry_max_seconds": "300",
            "part_retries": "4",
            "permanent_retry_seconds": "900",
            "store_metadata": "true",
        },
        "state": {"dir": json.dumps(str(tmp / "state"))},
        "log": {"format": '"json"', "level": '"info"'},
        "metrics": {"listen": '"127.0.0.1:9464"'},
    }


def render(tables: dict[str, dict[str, str]]) -> str:
    out = []
    for name, kv in tables.items():
        out.append("[[watch]]" if name == "watch" else f"[{name}]")
        out += [f"{k} = {v}" for k, v in kv.items()]
        out.append("")
    return "\n".join(out)


@pytest.fixture
def secret_file(tmp_path: Path, shared: Any) -> Path:
    p = tmp_path / "secret"
    p.write_text(shared.SECRET)
    os.chmod(p, 0o600)
    return p


def test_every_key_with_a_wrong_type_is_named_with_exit_78(tmp_path: Path, secret_file: Path) -> None:
    """Each key given a value of the wrong type: exit 78 and a message naming that key."""
    base = base_tables(tmp_path, "http://127.0.0.1:9", secret_file)
    ok = tmp_path / "ok.toml"
    ok.write_text(render(base))
    os.chmod(ok, 0o600)
    cp = run_cli(["check-config", "--offline", "-c", str(ok)], tmp_path / "ok-check")
    assert cp.returncode == 0, cp.stderr  # the base is valid: each failure below is the one bad key

    def one(case: tuple[str, str, str]) -> tuple[tuple[str, str, str], subprocess.CompletedProcess[str]]:
        table, key, value = case
        tables = json.loads(json.dumps(base))
        tables[table][key] = value
        path = tmp_path / f"bad-{table}-{key}.toml"
        path.write_text(render(tables))
        os.chmod(path, 0o600)
        return case, run_cli(["check-config", "--offline", "-c", str(path)], tmp_path / f"bad-{table}-{key}")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, WRONG))
    problems = []
    for (table, key, value), cp in results:
        if cp.returncode != EX_CONFIG or key not in cp.stderr:
            problems.append(f"[{table}] {key} = {value}: rc={cp.returncode} stderr={cp.stderr.strip()[:200]!r}")
    assert not problems, "\n".join(problems)


def test_unknown_keys_missing_bucket_and_run_refuses(tmp_path: Path, secret_file: Path) -> None:
    """Unknown keys get a suggestion, a missing bucket is named; `qsyncd run` exits 78 on them too."""
    base = base_tables(tmp_path, "http://127.0.0.1:9", secret_file)
    cases = []
    t = json.loads(json.dumps(base))
    t["upload"]["concurency"] = "4"
    cases.append(("concurency", "concurrency", t))
    t = json.loads(json.dumps(base))
    t["qingstor"].pop("bucket")
    cases.append(("bucket", "bucket", t))
    t = json.loads(json.dumps(base))
    t["uplaod"] = {"x": "1"}
    cases.append(("uplaod", "upload", t))
    for i, (name, hint, tables) in enumerate(cases):
        path = tmp_path / f"c{i}.toml"
        path.write_text(render(tables))
        os.chmod(path, 0o600)
        for cmd in (["check-config", "--offline"], ["run", "--log-format", "json"]):
            cp = run_cli([*cmd, "-c", str(path)], tmp_path / f"c{i}-{cmd[0]}", timeout=30)
            assert cp.returncode == EX_CONFIG, (name, cmd, cp.returncode, cp.stderr)
            assert name in cp.stderr and hint in cp.stderr, (name, cmd, cp.stderr)


def test_credentials_bucket_endpoint_and_clock_skew_say_what_to_fix(tmp_path: Path, rig: Rig, shared: Any) -> None:
    """Wrong secret, missing bucket, clock skew: exit 78 naming the fix; unreachable: 69 (retrying helps)."""
    emu: Any = rig.emu  # type: ignore[attr-defined]
    cases: list[tuple[str, dict[str, Any], int, list[str]]] = [
        ("wrong-secret", {"secret": "sk-wrong-" + "0" * 24}, EX_CONFIG, ["secret"]),
        ("no-bucket", {"bucket": "no-such-bucket-here"}, EX_CONFIG, ["no-such-bucket-here"]),
        ("unreachable", {"endpoint": "http://127.0.0.1:9"}, 69, ["127.0.0.1:9"]),
    ]
    for name, kw, rc, words in cases:
        endpoint = kw.pop("endpoint", emu.url)
        cfg = shared.write_config(tmp_path / f"{name}.toml", endpoint=endpoint, watch=rig.tree, state=rig.state, **kw)
        cp = run_cli(["check-config", "-c", str(cfg)], tmp_path / f"{name}-check", timeout=60)
        assert cp.returncode == rc, (name, cp.returncode, cp.stdout, cp.stderr)
        for w in words:
            assert w in cp.stderr.lower() or w in cp.stderr, (name, w, cp.stderr)
    emu.clock_skew = 3600.0
    try:
        cfg = shared.write_config(tmp_path / "skew.toml", endpoint=emu.url, watch=rig.tree, state=rig.state)
        cp = run_cli(["check-config", "-c", str(cfg)], tmp_path / "skew-check", timeout=60)
        assert cp.returncode == EX_CONFIG and "clock" in cp.stderr.lower(), (cp.returncode, cp.stderr)
    finally:
        emu.clock_skew = 0.0


def test_daemon_with_wrong_secret_keeps_waiting_and_never_prints_it(rig: Rig, shared: Any) -> None:
    """`qsyncd run` with a wrong secret: remote_rejected with a hint, no upload, and no secret or signature
    in the log, in `qsyncd status` (text and JSON) or in check-config output."""
    wrong = "sk-wrong-" + os.urandom(12).hex()
    rig.write_config(secret=wrong, extra='[log]\nlevel = "debug"\n')
    (rig.tree / "f.txt").write_bytes(b"x" * 100)
    d = rig.daemon()
    ev = d.wait_event("remote_rejected", timeout=60)
    assert "credential" in (ev[0].get("hint", "") + ev[0].get("error", "")).lower(), ev[0]
    st = run_cli(["status", "-c", str(rig.config)], rig.tmp / "status-text")
    sj = run_cli(["status", "-c", str(rig.config), "--json"], rig.tmp / "status-json")
    ck = run_cli(["check-config", "-c", str(rig.config)], rig.tmp / "check")
    assert st.returncode == 0 and sj.returncode == 0 and ck.returncode == EX_CONFIG
    assert d.proc is not None and d.proc.poll() is None, "a refused credential must not crash the daemon"
    d.stop()
    assert SIGNATURES, "the emulator saw no signed request: the grep below would prove nothing"
    hits = grep_outputs(captured_files(rig.tmp), [wrong, shared.SECRET, *sorted(SIGNATURES)])
    assert not hits, hits
    assert not bucket_has(rig, "f.txt")


def bucket_has(rig: Rig, key: str) -> bool:
    from relsupport import bucket_objects

    return key in bucket_objects(rig.emu_root)


def test_world_readable_config_with_inline_secret_is_warned(tmp_path: Path, rig: Rig, shared: Any) -> None:
    """A config holding the secret inline and readable by others draws a warning (never the secret itself)."""
    cfg = shared.write_config(tmp_path / "inline.toml", endpoint=rig.url, watch=rig.tree, state=rig.state)
    text = cfg.read_text().replace(f'secret_access_key_file = "{cfg}.secret"', f'secret_access_key = "{shared.SECRET}"')
    assert "secret_access_key = " in text
    cfg.write_text(text)
    os.chmod(cfg, 0o644)
    cp = run_cli(["check-config", "--offline", "-c", str(cfg)], tmp_path / "inline-check")
    assert cp.returncode == 0, cp.stderr
    assert "warning" in cp.stderr and "readable" in cp.stderr, cp.stderr
    d = shared.DaemonProc(cfg, tmp_path / "inline-daemon.log")
    try:
        d.start()
        ev = d.wait_event("config_warning", timeout=30)
        assert "readable" in ev[0]["message"]
    finally:
        d.stop()


def test_second_daemon_on_same_state_dir_refuses(rig: Rig) -> None:
    """Two daemons on one state dir: the second exits with a lock message naming the first; one uploader."""
    rig.write_config(settle={"quiet_seconds": 0.3})
    first = rig.daemon()
    first.wait_event("daemon_ready", timeout=30)
    second = rig.daemon()
    assert second.proc is not None
    rc = second.proc.wait(timeout=30)
    out = second.log_path.read_text()
    assert rc != 0, out
    assert f"pid {first.pid}" in out and "another qsyncd" in out, out
    (rig.tree / "after.txt").write_bytes(b"only the first uploads this")
    rig.converge(timeout=30, daemon=first)
    assert not [e for e in second.events() if e["event"] in ("upload_started", "upload_finished")]
    assert first.proc is not None and first.proc.poll() is None


# ----------------------------------------------------------------------------- state dir on a bad filesystem
def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _integrity(state: Path) -> str:
    con = sqlite3.connect(f"file:{state / 'state.db'}?immutable=1", uri=True)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def test_state_dir_on_full_filesystem(rig: Rig, shared: Any) -> None:
    """The state fs fills up: a clear error, no crash, no corruption; uploads resume once space is back."""
    if os.geteuid() != 0:
        shared.require_in_ci("needs root to mount a tmpfs")
    _mount_tmpfs(rig.state, "2m")
    d = None
    try:
        rig.write_config(settle={"quiet_seconds": 0.3})
        d = rig.daemon()
        d.wait_event("daemon_ready", timeout=30)
        for i in range(20):
            (rig.tree / f"before-{i}").write_bytes(os.urandom(200))
        rig.converge(timeout=30, daemon=d)
        filler = rig.state / "filler"
        with open(filler, "wb") as f:  # fill every last block
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        for i in range(20):
            (rig.tree / f"during-{i}").write_bytes(os.urandom(200))
        deadline = time.monotonic() + 30
        while True:
            text = d.log_path.read_text(errors="replace")
            if "No space left" in text or "full" in text.lower():
                break
            assert time.monotonic() < deadline, "no error about the full state filesystem:\n" + d.tail()
            time.sleep(0.2)
        time.sleep(1.0)
        filler.unlink()
        rig.converge(timeout=60, daemon=d)  # space is back: everything arrives (a daemon exit fails here too)
        assert d.stop() == 0, d.tail()
        assert _integrity(rig.state) == "ok"
    finally:
        if d is not None:
            d.stop()
        _umount(rig.state)


def test_state_dir_on_read_only_filesystem(rig: Rig, shared: Any) -> None:
    """A read-only state fs: the daemon exits with a message naming the dir; the ledger is untouched."""
    if os.geteuid() != 0:
        shared.require_in_ci("needs root to mount a tmpfs")
    _mount_tmpfs(rig.state, "4m")
    try:
        rig.write_config(settle={"quiet_seconds": 0.3})
        (rig.tree / "a.txt").write_bytes(b"a")
        d = rig.daemon()
        rig.converge(timeout=30, daemon=d)
        assert d.stop() == 0
        before = {p.name: p.read_bytes() for p in rig.state.iterdir() if p.is_file()}
        subprocess.run(["mount", "-o", "remount,ro", str(rig.state)], check=True)
        (rig.tree / "b.txt").write_bytes(b"b")
        d2 = rig.daemon()
        assert d2.proc is not None
        try:
            rc = d2.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the daemon kept running on a read-only state dir:\n" + d2.tail())
        out = d2.log_path.read_text()
        assert rc != 0
        assert str(rig.state) in out and ("read-only" in out.lower() or "writable" in out.lower()), out
        assert "Traceback" not in out, out
        after = {p.name: p.read_bytes() for p in rig.state.iterdir() if p.is_file()}
        assert after == before
        assert _integrity(rig.state) == "ok"
    finally:
        _umount(rig.state)
