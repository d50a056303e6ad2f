"""Every command README.md and docs/operator.md give, typed as written into the installed console script.

The rows of README's command table are parsed from README.md, not copied: a row nobody runs here fails
(``RUNNERS`` has no entry for its command). Each ``[--option]`` of a row is run both without and with it.
Only placeholders and paths are substituted (FILE, DIR, /etc/qsyncd/qsyncd.toml become files under the
test's tmp dir: the tests must not write to /etc), and the emulator gets ``--port 0`` where the docs leave
the default 9000 (other jobs on this machine may hold 9000; the URL is read from its
``emulator_listening`` line as a user would). Every other shell line of both documents is either run or
listed in ``NOT_HERE`` with the reason, so a new line in the docs fails until someone decides.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from console_script import argv, emulator, qsyncd_bin, run, started, stop, wait_in_log
from e2e_support import REPO, assert_remote_equals, op_counts, sdk_delete

README = REPO / "README.md"
OPERATOR = REPO / "docs" / "operator.md"


def readme_table_commands(text: str) -> list[str]:
    """The first-column commands of the table under README's "## Commands" heading."""
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]


def variants(command: str) -> list[str]:
    """``qsyncd sync -c FILE [--dry-run]`` -> without and with each bracketed option."""
    optional = re.findall(r"\s*\[([^\]]+)\]", command)
    base = re.sub(r"\s*\[[^\]]+\]", "", command)
    out = []
    for n in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, n):
            out.append(" ".join([base, *chosen]))
    return out


def shell_lines(text: str) -> list[str]:
    """Each command of the ```sh blocks (continuations joined, comments and a leading ``sudo`` dropped)."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            line = re.sub(r"^sudo\s+", "", line)
            if line and not line.startswith("#"):
                out.append(re.sub(r"\s+", " ", line))
    return out


TABLE = [v for row in readme_table_commands(README.read_text()) for v in variants(row)]


# ---------------------------------------------------------------- the world each command runs in
def _world(setup: Any) -> dict[str, str]:
    """A config for the in-process emulator, one file in the watch root; the placeholders to substitute."""
    (setup.root / "hello.txt").write_bytes(b"hello from the README\n")
    setup.config()
    cfg = str(setup.config_path)
    return {"FILE": cfg, "DIR": str(setup.tmp / "emulator-root"), "/etc/qsyncd/qsyncd.toml": cfg}


def run_daemon(setup: Any, words: list[str]) -> None:
    """`qsyncd run -c FILE`: uploads the file, then stops cleanly on SIGTERM (what systemctl stop sends)."""
    log = setup.tmp / "run.log"
    with started(words, log=log, cwd=setup.tmp) as proc:
        setup.shared.wait_for(lambda: op_counts(setup.emu, "PutObject"), timeout=30, what="an upload")
        assert 0 == stop(proc), log.read_text()
    assert_remote_equals(setup.emu, "hello.txt", (setup.root / "hello.txt").read_bytes())
    assert '"event": "daemon_stopped"' in log.read_text()  # not a terminal: JSON lines


def run_sync(setup: Any, words: list[str]) -> None:
    res = run(words, cwd=setup.tmp)
    assert 0 == res.returncode, res.stdout + res.stderr
    if "--dry-run" in words:
        assert {} == op_counts(setup.emu, "PutObject", only_ok=False)
        assert "dry_run_upload" in res.stdout + res.stderr and "hello.txt" in res.stdout + res.stderr
    else:
        assert_remote_equals(setup.emu, "hello.txt", (setup.root / "hello.txt").read_bytes())


def run_status(setup: Any, words: list[str]) -> None:
    assert 0 == run([qsyncd_bin(), "sync", "-c", str(setup.config_path)], cwd=setup.tmp).returncode
    res = run(words, cwd=setup.tmp)
    assert 0 == res.returncode, res.stderr
    if "--json" in words:
        data = json.loads(res.stdout)
        assert 1 == data["uploaded"] and 0 == data["failed"], data
    else:
        assert "uploaded: 1 files" in res.stdout and "daemon: not running" in res.stdout, res.stdout


def run_verify(setup: Any, words: list[str]) -> None:
    """After a sync, the object is deleted behind qsyncd's back: verify finds it (exit 1), --repair
    uploads it again (exit 0)."""
    assert 0 == run([qsyncd_bin(), "sync", "-c", str(setup.config_path)], cwd=setup.tmp).returncode
    sdk_delete(setup.emu.url, "hello.txt")
    res = run(words, cwd=setup.tmp)
    report = json.loads(res.stdout) if "--json" in words else None
    if "--repair" in words:
        assert 0 == res.returncode, res.stdout + res.stderr
        assert_remote_equals(setup.emu, "hello.txt", (setup.root / "hello.txt").read_bytes())
        assert report is None or report["ok"], report
    else:
        assert 1 == res.returncode, res.stdout + res.stderr
        if report is not None:
            assert ["deleted_from_bucket"] == [f["reason"] for f in report["missing"]], report
        else:
            assert "missing  hello.txt" in res.stdout, res.stdout


def run_check_config(setup: Any, words: list[str]) -> None:
    res = run(words, cwd=setup.tmp)
    assert 0 == res.returncode, res.stdout + res.stderr
    assert "configuration is valid" in res.stdout and "reachable, credentials accepted" in res.stdout


def run_emulator(setup: Any, words: list[str]) -> None:
    extra = words[words.index("--root") + 2 :]  # whatever the row adds after --root DIR
    with emulator(extra, tmp=setup.tmp) as (url, log):
        try:
            urllib.request.urlopen(url + "/", timeout=10).close()
        except urllib.error.HTTPError as err:  # unsigned: refused, but answered
            assert err.code in (401, 403), err
        assert "emulator_credentials access_key_id=" in log.read_text()


def run_demo(setup: Any, words: list[str]) -> None:
    """`qsyncd demo`: prints where to drop files, uploads its hello.txt, Ctrl-C ends it with a summary.
    TMPDIR points its temporary folder into the test's tmp dir (the demo keeps that folder)."""
    log = setup.tmp / "demo.log"
    with started(words, log=log, cwd=setup.tmp, env={"TMPDIR": str(setup.tmp)}) as proc:
        wait_in_log(proc, log, r"drop files into: ")
        wait_in_log(proc, log, r"upload_finished.*demo/hello\.txt")
        assert 0 == stop(proc, signal.SIGINT), log.read_text()
    text = log.read_text()
    assert "uploaded during the demo: 1 object(s)" in text and "is kept" in text, text[-2000:]
    assert str(setup.tmp) in text


RUNNERS: dict[str, Callable[[Any, list[str]], None]] = {
    "run": run_daemon,
    "sync": run_sync,
    "status": run_status,
    "verify": run_verify,
    "check-config": run_check_config,
    "emulator": run_emulator,
    "demo": run_demo,
}


@pytest.mark.parametrize("command", TABLE)
def test_readme_command_table(setup, command: str):
    """Each row of README's command table (each option variant), through bin/qsyncd."""
    words = argv(command, _world(setup))
    sub = words[1]
    assert sub in RUNNERS, f"README's table has `{command}`, which no test runs: add it to RUNNERS"
    RUNNERS[sub](setup, words)


def _subcommands() -> list[str]:
    from qsyncd.cli import build_parser

    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


def test_table_lists_every_subcommand():
    """The table and `qsyncd --help` name the same commands."""
    in_table = {c.split()[1] for c in TABLE}
    assert set(_subcommands()) == in_table


@pytest.mark.parametrize(
    "words",
    [["--help"], ["-h"], *([c, "--help"] for c in _subcommands()), ["emulator", "-h"]],
    ids=" ".join,
)
def test_help(tmp_path: Path, words: list[str]):
    """`qsyncd --help`, `qsyncd COMMAND --help` and `qsyncd emulator -h` exit 0 with their own usage."""
    res = run([qsyncd_bin(), *words], cwd=tmp_path)
    assert 0 == res.returncode, res.stderr
    prog = "qsyncd" if words[0].startswith("-") else f"qsyncd {words[0]}"
    assert res.stdout.startswith(f"usage: {prog} "), res.stdout
    assert "" == res.stderr


# ---------------------------------------------------------------- the other shell lines of the docs
# A command (its first words) -> why it does not run here. Anything not listed must be a qsyncd command.
NOT_HERE = {
    "./scripts/demo": "scripts/setup (tests/e2e/test_setup_script.py) + `qsyncd demo` (the table row above)",
    "./scripts/test": "the command that runs this module",
    "systemctl": "PID 1 here is not systemd; tests/systemd/test_nspawn.py starts, reloads and stops the "
    "unit with systemctl inside systemd-nspawn",
    "journalctl": "needs the journal of a running unit; test_nspawn.py queries the container's journal by "
    "QSYNCD_EVENT and QSYNCD_KEY (ct.journal), tests/test_events.py the fields via a private journald",
    "systemd-run": "needs a systemd manager; the qsyncd part runs below with $CREDENTIALS_DIRECTORY set as "
    "LoadCredential= sets it (test_operator_check_config_with_a_credential)",
    "apt-get install": "installs Debian packages; scripts/setup does the same (tests/e2e/test_setup_script.py)",
    "python3 -m venv /opt/qsyncd": "writes /opt; scripts/setup creates .venv the same way",
    "/opt/qsyncd/bin/pip install": "a second build of qsyncd (about 20 s); scripts/setup installs the same "
    "package into .venv, whose bin/qsyncd every test here runs",
    "install ": "writes /etc and /etc/systemd; tests/systemd/test_nspawn.py installs the unit in a container",
    "sh -c 'umask 077; cat > /etc/qsyncd/secret-key'": "interactive (paste the key)",
    "chown qsyncd:": "needs the sysusers user; the delete variant is rated by tests/systemd/test_units.py",
    ".venv/bin/python -m pytest": "runs tests/systemd etc. itself; not from inside the suite",
}


def _qsyncd_lines(doc: Path) -> list[str]:
    lines = shell_lines(doc.read_text())
    for line in lines:
        words = line.split()
        is_qsyncd = words[0] == "qsyncd" or words[0].endswith("/bin/qsyncd") or "/bin/qsyncd " in line
        if not is_qsyncd and not any(line.startswith(k) for k in NOT_HERE):
            pytest.fail(f"{doc.name}: `{line}` is neither run by this module nor listed in NOT_HERE")
    return [line for line in lines if line.split()[0] == "qsyncd"]


@pytest.mark.parametrize("doc", [README, OPERATOR], ids=lambda p: p.name)
def test_doc_shell_lines_are_run_or_explained(setup, doc: Path):
    """Every ```sh line of the doc is run here (its bare `qsyncd ...` lines, now) or in NOT_HERE."""
    subs = _world(setup)
    assert 0 == run([qsyncd_bin(), "sync", "-c", subs["FILE"]], cwd=setup.tmp).returncode
    for line in _qsyncd_lines(doc):
        words = argv(line, subs)
        res = run(words, cwd=setup.tmp)
        assert 0 == res.returncode, (line, res.stdout, res.stderr)


def test_operator_exec_start_line(setup):
    """The drop-in's `ExecStart=/usr/local/bin/qsyncd run --config /etc/qsyncd/qsyncd.toml` (long option)."""
    [line] = re.findall(r"^ExecStart=(\S*/qsyncd run .*)$", OPERATOR.read_text(), re.M)
    run_daemon(setup, argv(line, _world(setup)))


def test_operator_check_config_with_a_credential(setup, tmp_path: Path):
    """operator.md §2: qsyncd.toml.example installed and edited (endpoint, zone, bucket, key id, watch path),
    no secret in it, the secret handed over as LoadCredential= does ($CREDENTIALS_DIRECTORY), state from
    $STATE_DIRECTORY; then the doc's `qsyncd check-config --config /etc/qsyncd/qsyncd.toml`."""
    [line] = [ln for ln in shell_lines(OPERATOR.read_text()) if ln.startswith("systemd-run ")]
    command = line[line.index("/opt/qsyncd/bin/qsyncd") :]
    text = (REPO / "qsyncd.toml.example").read_text()
    edits = {
        r'^# endpoint = "https://qingstor.com"$': f'endpoint = "{setup.emu.url}"',
        r'^zone = "pek3a"$': 'zone = ""',
        r'^bucket = "my-bucket"$': f'bucket = "{setup.shared.BUCKET}"',
        r'^access_key_id = "QYACCESSKEYIDEXAMPLE"$': f'access_key_id = "{setup.shared.ACCESS_KEY}"',
        r'^path = "/srv/outbox"$': f'path = "{setup.root}"',
    }
    for pattern, new in edits.items():
        text, n = re.subn(pattern, new, text, count=1, flags=re.M)
        assert 1 == n, f"qsyncd.toml.example no longer has a line matching {pattern}"
    cfg = tmp_path / "etc-qsyncd.toml"
    cfg.write_text(text)
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    (creds / "qsyncd-secret-key").write_text(setup.shared.SECRET + "\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "STATE_DIRECTORY": str(tmp_path / "state")}
    res = run(argv(command, {"/etc/qsyncd/qsyncd.toml": str(cfg)}), cwd=tmp_path, env=env)
    assert 0 == res.returncode, res.stdout + res.stderr
    assert "reachable, credentials accepted" in res.stdout
    setup.assert_no_secret(res.stdout, res.stderr)
