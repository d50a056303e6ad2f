"""qsyncd.weed under a deep directory: SeaweedFS's unix sockets must still fit the kernel's 107 bytes.

`qsyncd demo --store s3` with a long TMPDIR died with the filer's "bind: invalid argument" before this.
"""

from __future__ import annotations

from pathlib import Path

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
