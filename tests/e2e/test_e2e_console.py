"""E2E through the installed console script: `qsyncd emulator ...` options reach the emulator's parser,
output cut off by its reader exits quietly, a TOML syntax error names the file by its absolute path
(issue 17 items 1, 7 and 10)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from console_script import emulator, qsyncd_bin, run, stop, user_env

EX_READER_GONE = 141  # 128 + SIGPIPE, what a shell shows for `seq 100000 | head -1`'s seq


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_emulator_help(tmp_path: Path, flag: str):
    """`qsyncd emulator --help` / `-h` print the emulator's own usage (issue 17.1: exit 2 before)."""
    res = run([qsyncd_bin(), "emulator", flag], cwd=tmp_path)
    assert 0 == res.returncode, res.stderr
    assert res.stdout.startswith("usage: qsyncd emulator"), res.stdout
    assert "--root ROOT" in res.stdout and "--port PORT" in res.stdout, res.stdout


def test_emulator_options_after_the_word(tmp_path: Path, shared):
    """`qsyncd emulator --root DIR --port N --access-key-id K --secret-access-key S --bucket B` serves that
    bucket with those keys: check-config against it is accepted (issue 17.1: `unrecognized arguments`)."""
    keys = ["--access-key-id", shared.ACCESS_KEY, "--secret-access-key", shared.SECRET]
    with emulator([*keys, "--bucket", shared.BUCKET, "--host", "127.0.0.1"], tmp=tmp_path) as (url, log):
        (tmp_path / "outbox").mkdir()
        cfg = shared.write_config(
            tmp_path / "qsyncd.toml", endpoint=url, watch=tmp_path / "outbox", state=tmp_path / "state"
        )
        res = run([qsyncd_bin(), "check-config", "-c", str(cfg)], cwd=tmp_path)
        assert 0 == res.returncode, res.stdout + res.stderr
        assert "reachable, credentials accepted" in res.stdout
    assert shared.SECRET not in log.read_text(), "the emulator printed a secret it was given"


def test_emulator_usage_errors_come_from_its_parser(tmp_path: Path):
    """Without --root the emulator's parser answers (exit 2), naming the missing option."""
    res = run([qsyncd_bin(), "emulator", "--port", "0"], cwd=tmp_path)
    assert 2 == res.returncode
    assert "qsyncd emulator: error: the following arguments are required: --root" in res.stderr, res.stderr


def _failures_ledger(state: Path, n: int) -> None:
    from qsyncd.state import Ledger

    led = Ledger(state)
    try:
        for i in range(n):
            led.record_failure(f"/srv/outbox/cam/{i:05d}.jpg", f"cam/{i:05d}.jpg", "connection refused", False)
    finally:
        led.close()


def test_status_json_into_head(tmp_path: Path, shared):
    """`qsyncd status --json | head -1`: the reader takes one line and closes the pipe while qsyncd still
    writes (the JSON of 2,000 failures is far more than a pipe holds); qsyncd exits 141 with nothing on
    stderr (issue 17.7: a BrokenPipeError traceback before)."""
    state = tmp_path / "state"
    _failures_ledger(state, 2000)
    cfg = shared.write_config(
        tmp_path / "qsyncd.toml", endpoint="http://127.0.0.1:9", watch=tmp_path / "outbox", state=state
    )
    proc = subprocess.Popen(
        [qsyncd_bin(), "status", "--json", "-c", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=user_env(),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert b"{\n" == proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace")
        assert EX_READER_GONE == proc.wait(timeout=30), err
        assert "" == err
    finally:
        stop(proc, signal.SIGKILL)


def _closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone: the first write fails with EPIPE."""
    r, w = os.pipe()
    os.close(r)
    return w


def _run_into_closed_pipe(words: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    w = _closed_pipe()
    try:
        res = subprocess.run(words, stdout=w, stderr=subprocess.PIPE, cwd=str(cwd), timeout=timeout, env=user_env())
    finally:
        os.close(w)
    return res.returncode, res.stderr.decode(errors="replace")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["status"],
        ["status", "--json"],
        ["check-config", "--offline"],
        ["check-config"],
        ["sync", "--dry-run", "--no-progress"],
        ["sync", "--no-progress"],
        ["emulator", "--help"],
        ["run", "--help"],
    ],
    ids=" ".join,
)
def test_every_command_into_a_closed_pipe(setup, args: list[str]):
    """Each command whose stdout reader has gone exits 141 without a traceback (issue 17.7)."""
    (setup.root / "a.txt").write_bytes(b"a")
    setup.config()
    words = [qsyncd_bin(), *args] + ([] if "--help" in args else ["-c", str(setup.config_path)])
    rc, err = _run_into_closed_pipe(words, setup.tmp)
    assert EX_READER_GONE == rc, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_daemon_logging_into_a_closed_pipe(setup):
    """`qsyncd run | head -1` with head gone: the daemon keeps uploading (logging never takes it down),
    stops on SIGTERM and exits 141 without a traceback."""
    setup.config()
    w = _closed_pipe()
    try:
        proc = subprocess.Popen(
            [qsyncd_bin(), "run", "-c", str(setup.config_path)],
            stdout=w,
            stderr=subprocess.PIPE,
            cwd=setup.tmp,
            env=user_env(),
        )
    finally:
        os.close(w)
    try:
        (setup.root / "late.txt").write_bytes(b"written after the pipe closed")
        setup.shared.wait_for(lambda: setup.emu.requests and _stored(setup, "late.txt"), timeout=30, what="upload")
        assert EX_READER_GONE == stop(proc)
        assert proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")
        assert "Traceback" not in err and "BrokenPipeError" not in err, err
    finally:
        stop(proc, signal.SIGKILL)


def _stored(setup, key: str) -> bool:
    try:
        setup.emu.object_bytes(setup.shared.BUCKET, key)
    except KeyError:
        return False
    return True


def test_toml_syntax_error_names_the_absolute_path(tmp_path: Path):
    """`qsyncd check-config -c qsyncd.toml` (relative) with a TOML syntax error names the file by its
    absolute path, like every other config error (issue 17.10)."""
    (tmp_path / "qsyncd.toml").write_text("[qingstor\nzone = 1\n")
    res = run([qsyncd_bin(), "check-config", "-c", "qsyncd.toml"], cwd=tmp_path)
    assert 78 == res.returncode, res.stderr
    assert f"{tmp_path / 'qsyncd.toml'}: TOML syntax error" in res.stderr, res.stderr
