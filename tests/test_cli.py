"""qsyncd.cli in-process: the parser, and the one place errors become exit codes (78 for configuration,
75 for a locked state dir, ...). Commands are replaced by fakes where the mapping is what is tested."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from qsynctest import write_config

from qsyncd import __version__, cli
from qsyncd.errors import (
    EX_CANTCREAT,
    EX_CONFIG,
    EX_TEMPFAIL,
    ConfigError,
    RemoteError,
    StateError,
    StateLockedError,
)


def fake_status(monkeypatch: pytest.MonkeyPatch, result: Any) -> list[Any]:
    """Make ``qsyncd status`` run ``result`` (raise it if it is an exception); the parsed args it got."""
    seen: list[Any] = []

    def cmd(args: Any) -> Any:
        seen.append(args)
        if isinstance(result, BaseException):
            raise result
        return result

    monkeypatch.setattr(cli, "cmd_status", cmd)
    return seen


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == cli.main([])
    assert "COMMAND" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert (0, f"qsyncd {__version__}") == (exc.value.code, capsys.readouterr().out.strip())


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["sync", "--no-such-flag"])
    assert 2 == exc.value.code
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_parser_options_and_defaults() -> None:
    p = cli.build_parser()
    run = p.parse_args(["run", "-c", "/x.toml", "--log-format", "json"])
    assert (cli.cmd_run, "/x.toml", "json") == (run.func, run.config, run.log_format)
    sync = p.parse_args(["sync", "--dry-run", "--timeout", "2.5", "--no-progress"])
    assert (True, 2.5, True, None) == (sync.dry_run, sync.timeout, sync.no_progress, sync.config)
    assert p.parse_args(["status", "--json"]).json is True
    assert p.parse_args(["check-config", "--offline"]).offline is True
    demo = p.parse_args(["demo", "--seconds", "3", "--dir", "/tmp/d"])
    assert (3.0, Path("/tmp/d")) == (demo.seconds, demo.dir)


def test_config_path_from_flag_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    p = cli.build_parser()
    monkeypatch.delenv("QSYNCD_CONFIG", raising=False)
    assert Path(cli.DEFAULT_CONFIG) == cli._config_path(p.parse_args(["status"]))
    monkeypatch.setenv("QSYNCD_CONFIG", "/env.toml")
    assert Path("/env.toml") == cli._config_path(p.parse_args(["status"]))
    assert Path("/flag.toml") == cli._config_path(p.parse_args(["status", "-c", "/flag.toml"]))


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (ConfigError("[upload] part_size: must be at least 4 MiB"), EX_CONFIG, "qsyncd: configuration error: [upload]"),
        (StateLockedError("another qsyncd uses /var/lib/qsyncd"), EX_TEMPFAIL, "qsyncd: another qsyncd uses"),
        (StateError("state dir is full"), EX_CANTCREAT, "qsyncd: state dir is full"),
        (RemoteError("endpoint down", code="connection_error"), 1, "qsyncd: endpoint down"),
    ],
)
def test_errors_map_to_exit_codes_with_their_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception, code: int, message: str
) -> None:
    fake_status(monkeypatch, error)
    assert code == cli.main(["status"])
    assert capsys.readouterr().err.startswith(message)


def test_interrupt_exits_130_and_a_command_result_is_the_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_status(monkeypatch, KeyboardInterrupt())
    assert 130 == cli.main(["status"])
    seen = fake_status(monkeypatch, None)
    assert 0 == cli.main(["status", "--json"])
    assert seen[0].json is True
    fake_status(monkeypatch, 3)
    assert 3 == cli.main(["status"])


def test_a_bug_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only QsyncdError is mapped: anything else is a bug and keeps its traceback."""
    fake_status(monkeypatch, ZeroDivisionError("bug"))
    with pytest.raises(ZeroDivisionError):
        cli.main(["status"])


def test_emulator_gets_every_argument_options_first_included(monkeypatch: pytest.MonkeyPatch) -> None:
    """``qsyncd emulator --root DIR ...`` hands all of it to the emulator's parser (failed before the fix:
    argparse.REMAINDER dropped the leading --root and qsyncd exited 2)."""
    import qsyncd.emulator.cli as emulator_cli

    got: list[list[str]] = []
    monkeypatch.setattr(emulator_cli, "main", lambda argv: got.append(list(argv)) or 0)
    assert 0 == cli.main(["emulator", "--root", "/tmp/e", "--port", "0", "--bucket", "b"])
    assert [["--root", "/tmp/e", "--port", "0", "--bucket", "b"]] == got


def test_check_config_offline_on_a_real_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    watch = tmp_path / "outbox"
    watch.mkdir()
    cfg = write_config(tmp_path / "q.toml", endpoint="http://127.0.0.1:9", watch=watch, state=tmp_path / "st")
    assert 0 == cli.main(["check-config", "--offline", "-c", str(cfg)])
    out = capsys.readouterr().out
    assert f"{cfg}: configuration is valid" in out and f"watch {watch} -> qsyncd-test/ [ok]" in out


def test_check_config_with_an_unreachable_endpoint_is_69(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listens on port 9 of localhost: unavailable (69), not a configuration error (78)."""
    cfg = write_config(tmp_path / "q.toml", endpoint="http://127.0.0.1:9", watch=tmp_path / "w", state=tmp_path / "st")
    assert cli.EX_UNAVAILABLE == cli.main(["check-config", "-c", str(cfg)])
    err = capsys.readouterr().err
    assert "\nerror: " in err and "check the endpoint" in err, err


def test_a_missing_config_file_is_a_configuration_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert EX_CONFIG == cli.main(["status", "-c", str(tmp_path / "missing.toml")])
    assert "qsyncd: configuration error:" in capsys.readouterr().err
