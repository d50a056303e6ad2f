"""qsyncd.events: each output format (journal via a private journald), auto-detection and redaction."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sdharness import PrivateJournald

from qsyncd import events
from qsyncd.events import configure_logging, get_logger, register_secret

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sEcReT-0123456789-abcdefXYZ"
SIGNATURE = "c2lnbmF0dXJlLXZhbHVl"

# Logs one event of each kind that must be redacted; run in-process and in children.
REDACTION_SCRIPT = f"""
from qsyncd.events import get_logger, register_secret
import logging
register_secret({SECRET!r})
log = get_logger(component="test")
log.info("secret_in_field", token={SECRET!r}, nested={{"a": [{SECRET!r}]}})
log.info("secret_in_message {SECRET}")
log.warning("header_logged", header="Authorization: QS AKIDEXAMPLE:{SIGNATURE}")
log.warning("url_logged", url="https://b.zone.qingstor.com/k?access_key_id=AK&expires=9&signature={SIGNATURE}")
try:
    raise RuntimeError("request failed with key {SECRET}")
except RuntimeError:
    log.exception("upload_failed", key="a/b.txt")
logging.getLogger("urllib3").warning("sending QS AK:{SIGNATURE}")
"""

EVENT_SCRIPT = """
import sys
from qsyncd.events import configure_logging, get_logger
chosen = configure_logging(sys.argv[1], "debug")
print(chosen, file=sys.stderr)
log = get_logger()
log.info("upload_finished", key="a/b.txt", bytes=12, seconds=0.3, path=b"/srv/qsyncd/caf\\xe9 x.txt")
log.debug("level_debug"); log.info("level_info"); log.warning("level_warning")
log.error("level_error"); log.critical("level_critical")
"""


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _run_in_journal(
    jd: PrivateJournald, script: str, *args: str, env: dict[str, str] | None = None, stdout=subprocess.PIPE
) -> tuple[int, str]:
    """Run ``script`` from a file (the journal records _CMDLINE, so no secret on the command line)."""
    path = jd.base / "script.py"
    path.write_text(script)
    proc = jd.run(
        [sys.executable, str(path), *args],
        env=env or _child_env(),
        cwd=str(ROOT),
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode()


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    configure_logging("json", "info", stream=io.StringIO())


def test_journal_fields_round_trip(journald: PrivateJournald):
    """journal format: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and QSYNCD_* fields come back from journalctl."""
    rc, err = _run_in_journal(journald, EVENT_SCRIPT, "journal")
    assert rc == 0, err
    assert err.strip() == "journal"
    [entry] = journald.entries(QSYNCD_EVENT="upload_finished")
    assert entry["SYSLOG_IDENTIFIER"] == "qsyncd"
    assert entry["PRIORITY"] == "6"
    assert entry["QSYNCD_KEY"] == "a/b.txt"
    assert entry["QSYNCD_BYTES"] == "12"
    assert entry["QSYNCD_SECONDS"] == "0.3"
    assert entry["QSYNCD_PATH"] == list(b"/srv/qsyncd/caf\xe9 x.txt")  # non-UTF-8 name byte-exact
    assert entry["MESSAGE"].startswith("upload_finished key=a/b.txt bytes=12 seconds=0.3 path=")
    priorities = {e["QSYNCD_EVENT"]: e["PRIORITY"] for e in journald.entries(SYSLOG_IDENTIFIER="qsyncd")}
    assert {k: v for k, v in priorities.items() if k.startswith("level_")} == {
        "level_debug": "7",
        "level_info": "6",
        "level_warning": "4",
        "level_error": "3",
        "level_critical": "2",
    }


def test_auto_picks_journal_when_journal_stream_is_stdout(journald: PrivateJournald, tmp_path: Path):
    """auto: $JOURNAL_STREAM naming our stdout (dev:ino) selects the journal."""
    out_path = tmp_path / "stdout"
    with open(out_path, "wb") as out:
        st = os.fstat(out.fileno())
        env = {**_child_env(), "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        rc, err = _run_in_journal(journald, EVENT_SCRIPT, "auto", env=env, stdout=out)
    assert rc == 0, err
    assert err.strip() == "journal"
    assert out_path.read_bytes() == b""
    assert len(journald.entries(QSYNCD_EVENT="upload_finished")) == 1


def test_auto_ignores_journal_stream_of_another_file(tmp_path: Path):
    """auto: a $JOURNAL_STREAM that is not our stdout means json (stdout is not a TTY)."""
    other = os.stat(tmp_path)
    env = {**_child_env(), "JOURNAL_STREAM": f"{other.st_dev}:{other.st_ino}"}
    proc = subprocess.run([sys.executable, "-c", EVENT_SCRIPT, "auto"], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().strip() == "json"
    first = json.loads(proc.stdout.splitlines()[0])
    assert first["event"] == "upload_finished"


def test_auto_on_a_tty_is_coloured_console():
    """auto: a TTY stream gets the console renderer, with colours."""
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=True) as tty:
            assert configure_logging("auto", stream=tty) == "console"
            get_logger().info("upload_finished", key="a/b.txt")
            output = os.read(master, 65536).decode()
    finally:
        os.close(master)
    assert "upload_finished" in output and "a/b.txt" in output
    assert "\x1b[" in output


def test_console_without_tty_has_no_colours():
    """console on a pipe/file: readable, no ANSI escapes."""
    buf = io.StringIO()
    assert configure_logging("console", stream=buf) == "console"
    get_logger().warning("upload_failed", key="a/b.txt", error="timeout")
    text = buf.getvalue()
    assert "upload_failed" in text and "key=a/b.txt" in text and "warning" in text
    assert "\x1b[" not in text


def test_json_lines():
    """json: one object per line with ts (ISO 8601), level and event first, then the fields."""
    buf = io.StringIO()
    assert configure_logging("json", stream=buf) == "json"
    log = get_logger(watch="/srv/qsyncd")
    log.info("upload_finished", key="a/b.txt", bytes=12, path=Path("/srv/qsyncd/a b"))
    log.debug("not_shown")
    [line] = buf.getvalue().splitlines()
    obj = json.loads(line)
    assert list(obj)[:3] == ["ts", "level", "event"]
    assert datetime.fromisoformat(obj["ts"]).tzinfo is not None
    assert obj | {"ts": None} == {
        "ts": None,
        "level": "info",
        "event": "upload_finished",
        "watch": "/srv/qsyncd",
        "key": "a/b.txt",
        "bytes": 12,
        "path": "/srv/qsyncd/a b",
    }


def test_reconfigure_replaces_previous_configuration():
    """A logger bound before re-configuring follows the new stream and level."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", stream=first)
    bound = get_logger().bind(worker=1)
    bound.info("first_event")
    configure_logging("json", "warning", stream=second)
    bound.info("filtered_event")
    bound.warning("second_event")
    assert [json.loads(x)["event"] for x in first.getvalue().splitlines()] == ["first_event"]
    assert [json.loads(x)["event"] for x in second.getvalue().splitlines()] == ["second_event"]


def test_logging_works_before_configure():
    """A process that never calls configure_logging still logs (auto: JSON on a pipe)."""
    script = "from qsyncd.events import get_logger; get_logger(a=1).info('started_early', b=2)"
    proc = subprocess.run([sys.executable, "-c", script], env=_child_env(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert (obj["event"], obj["a"], obj["b"]) == ("started_early", 1, 2)


def test_journal_falls_back_to_json_without_systemd_python():
    """journal without systemd-python: JSON on stdout and one journal_unavailable warning."""
    script = (
        "import sys; sys.modules['systemd'] = None\n"
        "from qsyncd.events import configure_logging, get_logger\n"
        "print(configure_logging('journal'), configure_logging('journal'), file=sys.stderr)\n"
        "get_logger().info('upload_finished', key='k')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=_child_env(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().split() == ["json", "json"]
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["event"] for x in lines] == ["journal_unavailable", "upload_finished"]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_redaction_in_stream_formats(fmt: str):
    """Secrets in fields, messages, exceptions, QS headers and signature= never reach the output."""
    buf = io.StringIO()
    configure_logging(fmt, "debug", stream=buf)
    exec(compile(REDACTION_SCRIPT, "<redaction>", "exec"), {})
    text = buf.getvalue()
    assert text.count("\n") >= 6, text
    assert SECRET not in text and SIGNATURE not in text
    assert "QS AKIDEXAMPLE:***" in text and "signature=***" in text and "RuntimeError" in text
    assert "secret_in_message ***" in text


def test_redaction_in_journal(journald: PrivateJournald):
    """journal format: no secret in any field, nor anywhere in the journal files."""
    rc, err = _run_in_journal(
        journald,
        "from qsyncd.events import configure_logging\nconfigure_logging('journal', 'debug')\n" + REDACTION_SCRIPT,
    )
    assert rc == 0, err
    entries = journald.entries(SYSLOG_IDENTIFIER="qsyncd")
    assert {e["QSYNCD_EVENT"] for e in entries} >= {
        "secret_in_field",
        "header_logged",
        "url_logged",
        "upload_failed",
        "library_logged",
    }
    dumped = json.dumps(entries)
    assert SECRET not in dumped and SIGNATURE not in dumped
    [failed] = [e for e in entries if e["QSYNCD_EVENT"] == "upload_failed"]
    assert "RuntimeError: request failed with key ***" in failed["QSYNCD_EXCEPTION"]
    raw = b"".join(p.read_bytes() for p in journald.log_dir.rglob("*.journal"))
    assert raw and SECRET.encode() not in raw and SIGNATURE.encode() not in raw


def test_journal_field_names():
    """Field names are upper-cased with every char outside [A-Z0-9_] replaced by '_'."""
    assert events.journal_field_name("bytes") == "QSYNCD_BYTES"
    assert events.journal_field_name("retry-after.s") == "QSYNCD_RETRY_AFTER_S"
    assert len(events.journal_field_name("x" * 100)) == 64


def test_stdlib_records_are_bridged_and_redacted():
    """Records from libraries using stdlib logging arrive as library_logged events, redacted."""
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    register_secret(SECRET)
    logging.getLogger("qingstor.sdk").error("auth %s failed", SECRET)
    [obj] = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert (obj["event"], obj["logger"], obj["message"]) == ("library_logged", "qingstor.sdk", "auth *** failed")


def test_broken_output_never_raises():
    """Logging to a closed stream drops the line instead of raising into the caller."""
    buf = io.StringIO()
    configure_logging("json", stream=buf)
    buf.close()
    get_logger().info("upload_finished", key="k")
