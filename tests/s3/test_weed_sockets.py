"""qsyncd.weed: SeaweedFS's unix sockets under a deep directory must still fit the kernel's 107 bytes, and
a bucket name SeaweedFS refuses ends the start-up at once.

`qsyncd demo --store s3` with a long TMPDIR died with the filer's "bind: invalid argument" before this.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from qsynctest.seaweed import Seaweed

from qsyncd.weed import WeedServer


def _sockets(cmd: list[str]) -> list[Path]:
    return [Path(arg.split("=", 1)[1]) for arg in cmd if "localSocket=" in arg]


def test_sockets_under_a_long_root_go_to_a_short_directory_removed_on_stop(tmp_path: Path) -> None:
    root = tmp_path / ("deep-" * 20)
    root.mkdir()
    server = WeedServer(root, access_key="k", secret="s")
    sockets = _sockets(server.command("weed"))
    assert 2 == len(sockets)
    assert all(len(str(s)) <= 107 for s in sockets), sockets
    assert all(s.parent.is_dir() and not s.is_relative_to(root) for s in sockets)
    server.stop()  # never started: still removes the directory it made
    assert not sockets[0].parent.exists()


def test_sockets_stay_beside_the_data_under_a_short_root(tmp_path: Path) -> None:
    server = WeedServer(tmp_path, access_key="k", secret="s")
    if len(str(tmp_path / "filer.sock")) > 100:
        return  # this machine's tmp_path is itself long: the other test covers it
    assert all(s.parent == tmp_path for s in _sockets(server.command("weed")))


def test_a_bucket_name_s3_refuses_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not a valid S3 bucket name .*: b, Under_Score"):
        WeedServer(tmp_path, access_key="k", secret="s", buckets=("ok-bucket", "b", "Under_Score"))


def test_a_bucket_the_server_refuses_ends_the_wait_at_once(seaweed: Seaweed) -> None:
    # The name check above is bypassed, so the server's own refusal is what stops the wait (it went on for
    # the whole start timeout, 90 s, before).
    probe = WeedServer(seaweed.root / "probe", access_key=seaweed.access_key, secret=seaweed.secret)
    probe.endpoint, probe.proc, probe.buckets = seaweed.endpoint, seaweed.proc, ("b",)
    try:
        with pytest.raises(RuntimeError, match=r"SeaweedFS refused bucket 'b': .*not valid"):
            probe._wait_ready()
    finally:
        probe.proc = None  # the session's server, not this probe's to stop
