"""The ``[s3]`` store table: what it takes, what it refuses (each message names the key), and that a file
names exactly one store. The table follows ``[qingstor]``'s rules for secrets and timeouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qsyncd.config import Config, S3Config, parse_config
from qsyncd.errors import ConfigError

SECRET = "s3-secret-never-shown"


def s3_config(tmp_path: Path, **s3: Any) -> dict[str, Any]:
    (tmp_path / "w").mkdir(exist_ok=True)
    table = {
        "endpoint": "https://s3.eu-central-1.amazonaws.com",
        "region": "eu-central-1",
        "bucket": "my-backups",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": SECRET,
        **s3,
    }
    return {"s3": {k: v for k, v in table.items() if v is not None}, "watch": [{"path": str(tmp_path / "w")}],
            "state": {"dir": str(tmp_path / "state")}}  # fmt: skip


def parse(data: dict[str, Any], env: dict[str, str] | None = None) -> Config:
    return parse_config(data, source=None, env=env or {})


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return str(info.value)


def test_a_minimal_s3_table_and_its_defaults(tmp_path: Path) -> None:
    cfg = parse(s3_config(tmp_path))
    assert "s3" == cfg.store_name
    assert isinstance(cfg.store, S3Config)
    s = cfg.store
    assert ("https://s3.eu-central-1.amazonaws.com", "eu-central-1", "my-backups") == (s.endpoint, s.region, s.bucket)
    assert ("auto", 10, 60) == (s.addressing_style, s.connect_timeout_seconds, s.read_timeout_seconds)
    assert SECRET not in repr(cfg)
    shown = cfg.redacted()
    assert "***" == shown["s3"]["secret_access_key"] and "qingstor" not in shown and SECRET not in str(shown)
    with pytest.raises(AttributeError):
        _ = cfg.qingstor


def test_required_keys_are_reported_at_once(tmp_path: Path) -> None:
    msg = error_of(s3_config(tmp_path, endpoint=None, region=None, bucket=None))
    for key in ("[s3] endpoint: missing", "[s3] region: missing", "[s3] bucket: missing"):
        assert key in msg, msg


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("region", "EU Central", "[s3] region"),
        ("bucket", "b1", "3-63 characters"),
        ("bucket", "My_Bucket", "[s3] bucket"),
        ("addressing_style", "sideways", "[s3] addressing_style"),
        ("endpoint", "s3.amazonaws.com", "[s3] endpoint"),
        ("read_timeout_seconds", 0, "[s3] read_timeout_seconds"),
        ("zone", "pek3a", "[s3] zone: unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, key: str, value: Any, says: str) -> None:
    assert says in error_of(s3_config(tmp_path, **{key: value}))


def test_virtual_addressing_with_an_ip_endpoint_is_refused(tmp_path: Path) -> None:
    msg = error_of(s3_config(tmp_path, endpoint="http://127.0.0.1:8333", addressing_style="virtual"))
    assert '[s3] addressing_style = "virtual"' in msg and '"path"' in msg
    assert (
        "path"
        == parse(s3_config(tmp_path, endpoint="http://127.0.0.1:8333", addressing_style="path")).store.addressing_style
    )  # type: ignore[union-attr]


def test_a_file_names_exactly_one_store(tmp_path: Path) -> None:
    data = s3_config(tmp_path)
    data["qingstor"] = {"zone": "pek3a", "bucket": "my-bucket", "access_key_id": "A", "secret_access_key": "S"}
    assert "[qingstor] and [s3]: a config file names exactly one store" in error_of(data)


def test_s3_parts_must_be_at_least_5_mib(tmp_path: Path) -> None:
    data = s3_config(tmp_path)
    data["upload"] = {"part_size": "4MiB"}
    assert "[upload] part_size" in error_of(data) and "5 MiB" in error_of(data)
    data["upload"] = {"part_size": "5MiB"}
    assert 5 * 1024 * 1024 == parse(data).upload.part_size


def test_the_secret_comes_the_same_four_ways(tmp_path: Path) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file\n")
    assert "from-file" == parse(s3_config(tmp_path, secret_access_key_file=str(secret_file))).store.secret_access_key
    cred = tmp_path / "creds"
    cred.mkdir()
    (cred / "qsyncd-secret-key").write_text("from-credential")
    env = {"CREDENTIALS_DIRECTORY": str(cred)}
    assert "from-credential" == parse(s3_config(tmp_path, secret_access_key=None), env).store.secret_access_key
    env = {"QSYNCD_SECRET_ACCESS_KEY": "from-env", "QSYNCD_ACCESS_KEY_ID": "ENVKEY"}
    cfg = parse(s3_config(tmp_path, secret_access_key=None, access_key_id=None), env)
    assert ("from-env", "ENVKEY") == (cfg.store.secret_access_key, cfg.store.access_key_id)
    assert "[s3] secret access key: not found" in error_of(s3_config(tmp_path, secret_access_key=None))


def test_make_remote_picks_the_store(tmp_path: Path) -> None:
    from qsyncd.remote.qingstor import QingStorRemote
    from qsyncd.remote.s3 import S3Remote
    from qsyncd.service import make_remote

    remote = make_remote(parse(s3_config(tmp_path, addressing_style="path", read_timeout_seconds=7)))
    assert isinstance(remote, S3Remote) and "https://s3.eu-central-1.amazonaws.com" == remote.endpoint
    data = s3_config(tmp_path)
    data["qingstor"] = data.pop("s3") | {"zone": "pek3a", "bucket": "my-bucket"}
    for k in ("region", "endpoint"):
        data["qingstor"].pop(k)
    assert isinstance(make_remote(parse(data)), QingStorRemote)
