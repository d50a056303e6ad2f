"""Tests for qsyncd.config: parsing, defaults, validation messages, secrets and the example file."""

from __future__ import annotations

import dataclasses
import re
import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest

from qsyncd.config import (
    DEFAULT_EXCLUDES,
    STALL_MARGIN,
    STORE_TABLES,
    Config,
    LogConfig,
    MetricsConfig,
    QingStorConfig,
    S3Config,
    SettleConfig,
    StateConfig,
    UploadConfig,
    VerifyConfig,
    WatchConfig,
    WatchdogConfig,
    default_stall_seconds,
    load_config,
    parse_config,
    parse_size,
    stores,
)
from qsyncd.config.readers import field_defaults
from qsyncd.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-VALUE-never-shown"


def base(tmp_path: Path, **tables: dict[str, Any]) -> dict[str, Any]:
    """A minimal valid config dict; keyword tables are merged over the defaults."""
    (tmp_path / "w1").mkdir(exist_ok=True)
    data: dict[str, Any] = {
        "qingstor": {"zone": "pek3a", "bucket": "my-bucket", "access_key_id": "AKID", "secret_access_key": SECRET},
        "watch": [{"path": str(tmp_path / "w1")}],
        "state": {"dir": str(tmp_path / "state")},
    }
    for name, table in tables.items():
        if name == "watch":
            data["watch"] = table
        else:
            data.setdefault(name, {}).update(table)
    return data


def parse(data: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    """parse_config with an isolated environment."""
    return parse_config(data, source=None, env=env or {})


def error_of(data: dict[str, Any], env: dict[str, str] | None = None) -> str:
    """The ConfigError message parse_config raises for ``data``."""
    with pytest.raises(ConfigError) as info:
        parse(data, env)
    return str(info.value)


# -- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (123, 123),
        ("123", 123),
        ("64MiB", 64 * 1024**2),
        ("8 MB", 8 * 1000**2),
        ("1GiB", 1024**3),
        ("512k", 512 * 1024),
        ("512K", 512 * 1024),
        ("4M", 4 * 1024**2),
        ("10kB", 10_000),
        ("1.5GiB", 1536 * 1024**2),
        ("2 TiB", 2 * 1024**4),
        ("7B", 7),
    ],
)
def test_parse_size_accepts_units(value: int | str, expected: int) -> None:
    """Sizes: bare k/M/G and KiB/MiB/GiB are binary, kB/MB/GB are SI."""
    assert expected == parse_size(value, "[upload] part_size")


@pytest.mark.parametrize("value", ["", "MiB", "12 potatoes", "-5", "1.5.2M", "0.5B", True, 1.5, [1]])
def test_parse_size_rejects_garbage(value: Any) -> None:
    """Anything that is not a whole, non-negative size is an error naming the key."""
    with pytest.raises(ConfigError, match=re.escape("[upload] part_size")):
        parse_size(value, "[upload] part_size")


# -- defaults ----------------------------------------------------------------------------------


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    """A minimal config yields the defaults from the brief."""
    cfg = parse(base(tmp_path))
    assert "https://qingstor.com" == cfg.qingstor.endpoint
    assert (10, 60) == (cfg.qingstor.connect_timeout_seconds, cfg.qingstor.read_timeout_seconds)
    w = cfg.watches[0]
    assert (tmp_path / "w1").resolve() == w.path
    assert ("", ("*",), DEFAULT_EXCLUDES) == (w.prefix, w.include, w.exclude)
    assert (True, False, "keep", "inotify", 5) == (
        w.recursive,
        w.follow_symlinks,
        w.after_upload,
        w.watcher,
        w.poll_interval_seconds,
    )
    assert SettleConfig(2.0, 300.0, 600.0) == cfg.settle
    assert UploadConfig() == cfg.upload
    assert 64 * 1024**2 == cfg.upload.multipart_threshold
    assert 16 * 1024**2 == cfg.upload.part_size
    assert LogConfig() == cfg.log
    assert MetricsConfig(None) == cfg.metrics
    assert () == cfg.warnings


def test_default_excludes_are_the_documented_list() -> None:
    """The built-in exclude list is exactly the one in the brief."""
    expected = [
        "*.tmp",
        "*.temp",
        "*.part",
        "*.partial",
        "*.crdownload",
        "*.download",
        "*.swp",
        "*.swx",
        ".*.swp",
        "*~",
        "~$*",
        ".~lock.*#",
        ".#*",
        "#*#",
        "*.filepart",
        ".goutputstream-*",
        ".nfs*",
        ".fuse_hidden*",
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
        ".syncthing.*.tmp",
        "*.!qB",
        ".Trash-*",
    ]
    assert tuple(expected) == DEFAULT_EXCLUDES


def test_exclude_added_to_defaults_or_replacing_them(tmp_path: Path) -> None:
    """User excludes extend the defaults, or replace them with exclude_defaults = false."""
    added = parse(base(tmp_path, watch=[{"path": str(tmp_path / "w1"), "exclude": ["*.log"]}]))
    assert (*DEFAULT_EXCLUDES, "*.log") == added.watches[0].exclude
    replaced = parse(
        base(tmp_path, watch=[{"path": str(tmp_path / "w1"), "exclude": ["*.log"], "exclude_defaults": False}])
    )
    assert ("*.log",) == replaced.watches[0].exclude
    none = parse(base(tmp_path, watch=[{"path": str(tmp_path / "w1"), "exclude_defaults": False}]))
    assert () == none.watches[0].exclude


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"STATE_DIRECTORY": "/var/lib/qsyncd:/var/lib/other"}, "/var/lib/qsyncd"),
        ({"XDG_STATE_HOME": "/home/u/.st", "HOME": "/home/u"}, "/home/u/.st/qsyncd"),
        ({"HOME": "/home/u"}, "/home/u/.local/state/qsyncd"),
    ],
)
def test_state_dir_default_from_environment(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    """[state] dir defaults to $STATE_DIRECTORY (first entry), $XDG_STATE_HOME/qsyncd, ~/.local/state/qsyncd."""
    data = base(tmp_path)
    del data["state"]
    assert StateConfig(Path(expected)) == parse(data, env).state


def test_prefix_hostname_and_trailing_slash(tmp_path: Path) -> None:
    """{hostname} is expanded and a "/" is appended to a non-empty prefix."""
    cfg = parse(base(tmp_path, watch=[{"path": str(tmp_path / "w1"), "prefix": "backup/{hostname}"}]))
    assert f"backup/{socket.gethostname()}/" == cfg.watches[0].prefix


def test_prefix_mtime_field_is_kept_for_each_key(tmp_path: Path) -> None:
    """{mtime:...} stays in the prefix (each file's key fills it in); {hostname} is replaced at load."""
    cfg = parse(base(tmp_path, watch=[{"path": str(tmp_path / "w1"), "prefix": "{hostname}/cam/{mtime:%Y/%m/%d}"}]))
    assert f"{socket.gethostname()}/cam/{{mtime:%Y/%m/%d}}/" == cfg.watches[0].prefix


def test_tilde_path_is_expanded_with_home(tmp_path: Path) -> None:
    """A watch path starting with ~/ uses $HOME."""
    (tmp_path / "home" / "in").mkdir(parents=True)
    cfg = parse(base(tmp_path, watch=[{"path": "~/in"}]), {"HOME": str(tmp_path / "home")})
    assert (tmp_path / "home" / "in").resolve() == cfg.watches[0].path


# -- validation messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"upload": {"part_size": "3MiB"}}, '[upload] part_size = "3MiB": must be at least 4 MiB'),
        ({"upload": {"part_size": "6GiB"}}, '[upload] part_size = "6GiB": must be at most 5 GiB'),
        ({"settle": {"quiet_seconds": "two"}}, '[settle] quiet_seconds: expected a number, got string "two"'),
        ({"settle": {"quiet_seconds": True}}, "[settle] quiet_seconds: expected a number, got boolean true"),
        ({"watch": [{"path": "/srv/a"}, {"prefix": "x"}]}, "[[watch]] #2 path: missing"),
        (
            {"watch": [{"path": "/srv/a", "recursive": 1}]},
            "[[watch]] #1 recursive: expected true or false, got integer 1",
        ),
        ({"upload": {"concurrency": 0}}, "[upload] concurrency = 0: must be between 1 and 256"),
        ({"upload": {"concurrency": 2.5}}, "[upload] concurrency: expected an integer, got float 2.5"),
        ({"upload": {"storage_class": "GLACIER"}}, '[upload] storage_class = "GLACIER": must be one of'),
        ({"qingstor": {"endpoint": "https://qingstor.com/path"}}, "[qingstor] endpoint"),
        ({"qingstor": {"endpoint": "ftp://qingstor.com"}}, "must be http(s)://host[:port]"),
        ({"qingstor": {"endpoint": "https://h:99999"}}, "[qingstor] endpoint"),
        ({"qingstor": {"zone": "PEK3A"}}, '[qingstor] zone = "PEK3A"'),
        ({"qingstor": {"bucket": "short"}}, '[qingstor] bucket = "short": a bucket name is 6-63'),
        ({"qingstor": {"bucket": "-bucket-"}}, '[qingstor] bucket = "-bucket-"'),
        ({"qingstor": {"bucket": "Upper-Case"}}, '[qingstor] bucket = "Upper-Case"'),
        ({"watch": [{"path": "relative/dir"}]}, '[[watch]] #1 path = "relative/dir": must be an absolute path'),
        ({"watch": [{"path": "/srv/a", "prefix": "/abs"}]}, 'must not start with "/"'),
        ({"watch": [{"path": "/srv/a", "prefix": "a//b"}]}, 'must not contain "//"'),
        ({"watch": [{"path": "/srv/a", "prefix": "a/../b"}]}, '".."'),
        ({"watch": [{"path": "/srv/a", "prefix": "{host}"}]}, "unknown field {host}; allowed: {hostname} and {mtime"),
        ({"watch": [{"path": "/srv/a", "prefix": "cam/{mtime:%Y/%Q}"}]}, '[[watch]] #1 prefix = "cam/{mtime:%Y/%Q}": '),
        ({"watch": [{"path": "/srv/a", "prefix": "cam/{mtime}"}]}, "{mtime} needs a format"),
        ({"watch": [{"path": "/srv/a", "prefix": "cam/{mtime:%Y/}/"}]}, 'must not contain "//"'),
        ({"watch": [{"path": "/srv/a", "prefix": "{mtime:/%Y}"}]}, 'must not start with "/"'),
        ({"watch": [{"path": "/srv/a", "prefix": "cam/{mtime:%Y"}]}, "unmatched brace"),
        ({"watch": [{"path": "/srv/a", "include": "*.jpg"}]}, "[[watch]] #1 include: expected an array of globs"),
        ({"watch": [{"path": "/srv/a", "after_upload": "move"}]}, '[[watch]] #1 after_upload = "move"'),
        ({"watch": [{"path": "/srv/a", "watcher": "fanotify"}]}, '[[watch]] #1 watcher = "fanotify"'),
        ({"metrics": {"listen": "9464"}}, '[metrics] listen = "9464": must be "host:port"'),
        ({"metrics": {"listen": "localhost:70000"}}, "[metrics] listen"),
        ({"log": {"level": "verbose"}}, '[log] level = "verbose": must be one of'),
        ({"settle": {"max_wait_seconds": 1.0}}, "[settle] max_wait_seconds = 1: must be at least quiet_seconds"),
        ({"settle": {"rescan_cpu_share": 2}}, "[settle] rescan_cpu_share = 2: a share of one core, from 0"),
        ({"settle": {"rescan_cpu_share": -0.1}}, "[settle] rescan_cpu_share = -0.1: must not be negative"),
        ({"upload": {"retry_initial_seconds": 10, "retry_max_seconds": 5}}, "[upload] retry_max_seconds = 5"),
        ({"upload": {"multipart_threshold": "6GiB"}}, '[upload] multipart_threshold = "6GiB"'),
    ],
)
def test_validation_messages_name_the_key(tmp_path: Path, tables: dict[str, Any], message: str) -> None:
    """Each invalid value produces a message naming its table and key."""
    assert message in error_of(base(tmp_path, **tables))


def test_unknown_key_suggests_closest(tmp_path: Path) -> None:
    """A misspelt key is an error that suggests the valid key."""
    msg = error_of(base(tmp_path, upload={"part_sise": "8MiB"}))
    assert "[upload] part_sise: unknown key; did you mean 'part_size'?" in msg
    msg = error_of(base(tmp_path, watch=[{"path": "/srv/a", "exclud": ["x"]}]))
    assert "[[watch]] #1 exclud: unknown key; did you mean 'exclude'?" in msg


def test_unknown_table_suggests_closest(tmp_path: Path) -> None:
    """A misspelt table name is an error that suggests the valid table."""
    data = base(tmp_path)
    data["setle"] = {"quiet_seconds": 1}
    assert "[setle]: unknown table; did you mean 'settle'?" in error_of(data)


def test_watch_as_single_table_is_explained(tmp_path: Path) -> None:
    """[watch] instead of [[watch]] tells the user to use double brackets."""
    data = base(tmp_path)
    data["watch"] = {"path": "/srv/a"}
    assert "write [[watch]]" in error_of(data)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    """Several mistakes produce one error listing each of them."""
    msg = error_of(base(tmp_path, upload={"part_size": "1MiB", "concurrency": "4"}, log={"format": "xml"}))
    assert "3 problems" in msg
    assert "[upload] part_size" in msg and "[upload] concurrency" in msg and "[log] format" in msg


def test_overlapping_watches_rejected(tmp_path: Path) -> None:
    """Two watches where one contains the other are an error."""
    (tmp_path / "w1" / "sub").mkdir(parents=True)
    data = base(tmp_path, watch=[{"path": str(tmp_path / "w1")}, {"path": str(tmp_path / "w1" / "sub")}])
    assert "[[watch]] #2 path" in error_of(data) and "overlaps [[watch]] #1" in error_of(data)
    same = base(tmp_path, watch=[{"path": str(tmp_path / "w1")}, {"path": str(tmp_path / "w1") + "/"}])
    assert "overlaps" in error_of(same)


def test_siblings_with_common_name_prefix_do_not_overlap(tmp_path: Path) -> None:
    """/x/data and /x/data2 are separate trees."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data2").mkdir()
    cfg = parse(base(tmp_path, watch=[{"path": str(tmp_path / "data")}, {"path": str(tmp_path / "data2")}]))
    assert 2 == len(cfg.watches)


def test_watch_and_state_dir_must_not_nest(tmp_path: Path) -> None:
    """A watch inside the state dir, or containing it, is an error."""
    data = base(tmp_path, watch=[{"path": str(tmp_path)}])
    assert "contains the state directory" in error_of(data)
    data = base(tmp_path, watch=[{"path": str(tmp_path / "state" / "in")}])
    assert "is inside the state directory" in error_of(data)


# -- secrets -----------------------------------------------------------------------------------


def qs_without_secret(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """A config dict whose [qingstor] has no inline secret."""
    data = base(tmp_path)
    del data["qingstor"]["secret_access_key"]
    data["qingstor"].update(extra)
    return data


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "http://[::1]:9000"])
def test_a_zone_with_an_ip_address_endpoint_says_how_they_combine(tmp_path: Path, endpoint: str) -> None:
    """zone "pek3a" + endpoint http://127.0.0.1:9000 would contact pek3a.127.0.0.1: a config error saying so."""
    msg = error_of(base(tmp_path, qingstor={"endpoint": endpoint}))
    host = endpoint.removeprefix("http://").rsplit(":", 1)[0]
    assert '[qingstor] zone = "pek3a"' in msg and f"(pek3a.{host})" in msg, msg
    assert 'set zone = ""' in msg, msg
    assert "" == parse(base(tmp_path, qingstor={"endpoint": endpoint, "zone": ""})).qingstor.zone


def test_a_watch_path_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    """A regular file as a watch root is refused (78) with a message that says it is a file."""
    (tmp_path / "a-file").write_text("not a directory")
    msg = error_of(base(tmp_path, watch=[{"path": str(tmp_path / "a-file")}]))
    assert f'[[watch]] #1 path = "{tmp_path / "a-file"}": is a regular file, not a directory' in msg, msg
    missing = parse(base(tmp_path, watch=[{"path": str(tmp_path / "later")}]))  # a missing one is waited for
    assert any("does not exist (yet)" in w for w in missing.warnings), missing.warnings


def test_secret_precedence(tmp_path: Path) -> None:
    """secret file > $CREDENTIALS_DIRECTORY > env > inline."""
    (tmp_path / "secret").write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "qsyncd-secret-key").write_text("  from-credential\n")
    env_all = {"CREDENTIALS_DIRECTORY": str(creds), "QSYNCD_SECRET_ACCESS_KEY": "from-env"}
    data = base(tmp_path)
    data["qingstor"]["secret_access_key_file"] = str(tmp_path / "secret")
    assert "from-file" == parse(data, env_all).qingstor.secret_access_key
    assert "from-credential" == parse(base(tmp_path), env_all).qingstor.secret_access_key
    assert "from-env" == parse(base(tmp_path), {"QSYNCD_SECRET_ACCESS_KEY": "from-env"}).qingstor.secret_access_key
    assert (
        SECRET == parse(base(tmp_path), {"CREDENTIALS_DIRECTORY": str(tmp_path / "empty")}).qingstor.secret_access_key
    )


def test_access_key_id_from_environment(tmp_path: Path) -> None:
    """QSYNCD_ACCESS_KEY_ID supplies the access key id when the file has none."""
    data = base(tmp_path)
    del data["qingstor"]["access_key_id"]
    assert "ENVKEY" == parse(data, {"QSYNCD_ACCESS_KEY_ID": "ENVKEY"}).qingstor.access_key_id
    assert "[qingstor] access_key_id: missing" in error_of(data)


def test_missing_secret_names_all_four_ways(tmp_path: Path) -> None:
    """No secret anywhere: the error lists the four ways to give one."""
    msg = error_of(qs_without_secret(tmp_path))
    for way in (
        "secret_access_key_file",
        "LoadCredential=qsyncd-secret-key",
        "QSYNCD_SECRET_ACCESS_KEY",
        "secret_access_key =",
    ):
        assert way in msg


def test_unreadable_secret_file_names_the_path(tmp_path: Path) -> None:
    """A secret file that cannot be read is an error naming its path."""
    missing = tmp_path / "nope" / "secret"
    msg = error_of(qs_without_secret(tmp_path, secret_access_key_file=str(missing)))
    assert str(missing) in msg and "cannot read" in msg


def test_secret_never_in_repr_or_errors(tmp_path: Path) -> None:
    """The secret is absent from repr(), redacted() and validation errors."""
    cfg = parse(base(tmp_path))
    assert SECRET not in repr(cfg)
    assert SECRET not in str(cfg.redacted())
    assert "***" == cfg.redacted()["qingstor"]["secret_access_key"]
    assert SECRET not in error_of(base(tmp_path, upload={"part_size": "1MiB"}))


def test_redacted_holds_everything_else(tmp_path: Path) -> None:
    """redacted() is plain data with every section and the resolved values."""
    cfg = parse(base(tmp_path, upload={"part_size": "32MiB"}))
    red = cfg.redacted()
    tables = {"qingstor", "watches", "settle", "upload", "state", "log", "metrics", "watchdog", "verify"}
    assert {*tables, "source", "warnings"} == set(red)
    assert 32 * 1024**2 == red["upload"]["part_size"]
    assert str((tmp_path / "w1").resolve()) == red["watches"][0]["path"]


def test_world_readable_inline_secret_warns(tmp_path: Path) -> None:
    """An inline secret in a group/other-readable file gives a warning naming the file and chmod 600."""
    (tmp_path / "w1").mkdir()
    cfg_file = tmp_path / "q.toml"
    cfg_file.write_text(
        f'[qingstor]\nzone = "pek3a"\nbucket = "my-bucket"\naccess_key_id = "A"\nsecret_access_key = "{SECRET}"\n'
        f'[[watch]]\npath = "{tmp_path / "w1"}"\n[state]\ndir = "{tmp_path / "st"}"\n'
    )
    cfg_file.chmod(0o644)
    warnings = load_config(cfg_file, env={}).warnings
    assert 1 == len(warnings)
    assert str(cfg_file) in warnings[0] and "chmod 600" in warnings[0]
    assert SECRET not in warnings[0]
    cfg_file.chmod(0o600)
    assert () == load_config(cfg_file, env={}).warnings


# -- files -------------------------------------------------------------------------------------


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    """A TOML syntax error becomes a ConfigError with line and column."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[qingstor]\nzone = "pek3a"\nbucket = \n')
    with pytest.raises(ConfigError, match=r"line 3, column \d+"):
        load_config(bad, env={})


def test_toml_syntax_error_names_the_file_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config given by a relative path is named by its absolute one in a TOML syntax error (issue 17)."""
    (tmp_path / "bad.toml").write_text('[qingstor]\nzone = "pek3a"\nbucket = \n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(Path("bad.toml"), env={})
    assert str(info.value).startswith(f"{tmp_path / 'bad.toml'}: TOML syntax error")


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    """A missing config file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml", env={})


# -- the example file ------------------------------------------------------------------------------

EXAMPLE = REPO / "qsyncd.toml.example"
_KEY_LINE = re.compile(r"^(#\s?)?([a-z_]+)\s*=\s*(.+)$")


def example_keys() -> dict[str, dict[str, tuple[bool, Any]]]:
    """{table: {key: (commented, value)}} for every "key = value" line of the example."""
    out: dict[str, dict[str, tuple[bool, Any]]] = {}
    table = ""
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"^#?\[\[?([a-z0-9]+)\]\]?$", line)  # "#[s3]": the second store table, commented out
        if header:
            table = header.group(1)
            continue
        m = _KEY_LINE.match(line)
        if m and table:
            value = tomllib.loads(f"v = {m.group(3)}")["v"]
            out.setdefault(table, {})[m.group(2)] = (bool(m.group(1)), value)
    return out


def test_example_parses_with_env_secret() -> None:
    """qsyncd.toml.example is a valid config when the secret comes from the environment."""
    env = {"QSYNCD_SECRET_ACCESS_KEY": "x", "STATE_DIRECTORY": "/var/lib/qsyncd"}
    cfg = load_config(EXAMPLE, env=env)
    assert "my-bucket" == cfg.qingstor.bucket
    assert 1 == len(cfg.watches)


@pytest.mark.parametrize(
    ("table", "cls"),
    [
        ("qingstor", QingStorConfig),
        ("s3", S3Config),
        ("watch", WatchConfig),
        ("settle", SettleConfig),
        ("upload", UploadConfig),
        ("state", StateConfig),
        ("log", LogConfig),
        ("metrics", MetricsConfig),
        ("watchdog", WatchdogConfig),
        ("verify", VerifyConfig),
    ],
)
def test_example_documents_every_field_with_its_default(table: str, cls: type) -> None:
    """Every dataclass field appears in the example, and a commented line shows the real default."""
    keys = example_keys()[table]
    for f in dataclasses.fields(cls):
        assert f.name in keys, f"{table}.{f.name} is not documented in qsyncd.toml.example"
        commented, shown = keys[f.name]
        has_default = f.default is not dataclasses.MISSING and f.default is not None
        if commented and has_default and f.name != "exclude":
            if isinstance(f.default, int) and isinstance(shown, str):
                shown = parse_size(shown, f.name)
            if isinstance(f.default, tuple):
                shown = tuple(shown)
            assert f.default == shown, f"{table}.{f.name}: example shows {shown!r}, default is {f.default!r}"


def test_example_keys_are_all_valid() -> None:
    """Every key the example mentions (commented or not) is accepted by the parser, with either store table."""
    keys = example_keys()
    for store in STORE_TABLES:
        data: dict[str, Any] = {}
        for table, entries in keys.items():
            if table in STORE_TABLES and table != store:
                continue  # a file names exactly one store table
            values = {k: v for k, (_, v) in entries.items() if k not in ("secret_access_key_file", "dir")}
            data[table] = [values] if table == "watch" else values
        cfg = parse_config(data, source=None, env={"STATE_DIRECTORY": "/var/lib/qsyncd"})
        assert store == cfg.store_name
        assert 10 * 1024**2 == cfg.upload.max_bytes_per_second
        assert "127.0.0.1:9464" == cfg.metrics.listen


def test_load_config_reads_env_from_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_config's env defaults to os.environ (secret supplied through the process environment)."""
    monkeypatch.setenv("QSYNCD_SECRET_ACCESS_KEY", "from-os-env")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "st"))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert "from-os-env" == load_config(EXAMPLE).qingstor.secret_access_key


# -- [watchdog] --------------------------------------------------------------------------------------


def test_watchdog_stall_seconds_defaults_to_read_timeout_plus_margin(tmp_path: Path) -> None:
    """Without [watchdog], a stage may be silent for the store's read timeout plus STALL_MARGIN."""
    assert 60 + STALL_MARGIN == parse(base(tmp_path)).watchdog.stall_seconds
    data = base(tmp_path)
    data["qingstor"]["read_timeout_seconds"] = 30
    assert 30 + STALL_MARGIN == parse(data).watchdog.stall_seconds


def test_watchdog_stall_seconds_is_read(tmp_path: Path) -> None:
    """[watchdog] stall_seconds sets how long a stage may be silent, whatever the read timeout."""
    cfg = parse(base(tmp_path, watchdog={"stall_seconds": 2}))
    assert WatchdogConfig(stall_seconds=2.0) == cfg.watchdog
    assert 2.0 == cfg.redacted()["watchdog"]["stall_seconds"]


@pytest.mark.parametrize(
    ("watchdog", "message"),
    [
        ({"stall_seconds": 0}, "[watchdog] stall_seconds = 0: must be greater than 0"),
        ({"stall_seconds": "2"}, '[watchdog] stall_seconds: expected a number, got string "2"'),
        ({"stall_second": 2}, "[watchdog] stall_second: unknown key; did you mean 'stall_seconds'?"),
    ],
)
def test_watchdog_stall_seconds_is_validated(tmp_path: Path, watchdog: dict[str, Any], message: str) -> None:
    """A bad [watchdog] table is a config error naming the key."""
    assert message in error_of(base(tmp_path, watchdog=watchdog))


def test_example_shows_the_stall_seconds_default() -> None:
    """The example's commented stall_seconds is the default with the example's read timeout."""
    keys = example_keys()
    read_timeout = keys["qingstor"]["read_timeout_seconds"][1]
    assert (True, default_stall_seconds(read_timeout)) == keys["watchdog"]["stall_seconds"]


# -- [verify] ----------------------------------------------------------------------------------------


def test_verify_interval_is_read_and_zero_turns_it_off(tmp_path: Path) -> None:
    """[verify] interval_seconds: the service's periodic verify; 0 is allowed (off)."""
    assert VerifyConfig(interval_seconds=60.0) == parse(base(tmp_path, verify={"interval_seconds": 60})).verify
    assert 0.0 == parse(base(tmp_path, verify={"interval_seconds": 0})).verify.interval_seconds
    assert 21600.0 == parse(base(tmp_path)).verify.interval_seconds


@pytest.mark.parametrize(
    ("verify", "message"),
    [
        ({"interval_seconds": -1}, "[verify] interval_seconds = -1: must not be negative"),
        ({"interval": 60}, "[verify] interval: unknown key; did you mean 'interval_seconds'?"),
    ],
)
def test_verify_interval_is_validated(tmp_path: Path, verify: dict[str, Any], message: str) -> None:
    assert message in error_of(base(tmp_path, verify=verify))


# -- one source per default, one store table -------------------------------------------------------


def test_every_table_default_comes_from_its_dataclass(tmp_path: Path) -> None:
    """A minimal config holds each dataclass field's own default, of the same type."""
    cfg = parse(base(tmp_path))
    sections: list[tuple[Any, type]] = [
        (cfg.qingstor, QingStorConfig),
        (cfg.watches[0], WatchConfig),
        (cfg.settle, SettleConfig),
        (cfg.upload, UploadConfig),
        (cfg.log, LogConfig),
        (cfg.metrics, MetricsConfig),
        (cfg.verify, VerifyConfig),
    ]
    for section, model in sections:
        for name, default in field_defaults(model).items():
            value = getattr(section, name)
            assert (type(default), default) == (type(value), value), f"{model.__name__}.{name}"


def test_a_config_names_exactly_one_store_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a second kind of store registered, naming both tables in one file is an error."""
    second = stores.StoreTable("other", QingStorConfig, stores.read_qingstor)
    monkeypatch.setitem(stores.STORE_TABLES, "other", second)
    data = base(tmp_path)
    data["other"] = dict(data["qingstor"])
    assert "[qingstor] and [other]: a config file names exactly one store" in error_of(data)
    del data["qingstor"]
    assert "my-bucket" == parse(data).store.bucket
