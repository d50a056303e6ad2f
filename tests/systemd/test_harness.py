"""The harness itself: skip-vs-fail policy and isolation of private journald instances."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sdharness import REQUIRE_ENV, PrivateJournald, unavailable


def test_missing_piece_skips_locally(monkeypatch: pytest.MonkeyPatch):
    """Without QSYNCD_REQUIRE_SYSTEMD a missing tool is a skip."""
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("no such tool")


def test_missing_piece_fails_in_ci(monkeypatch: pytest.MonkeyPatch):
    """With QSYNCD_REQUIRE_SYSTEMD=1 a missing tool is a failure, never a skip."""
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception):
        unavailable("no such tool")


def _send(jd: PrivateJournald, payload: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(payload, str(jd.socket_path))


def test_journald_instances_are_isolated(journald: PrivateJournald, tmp_path: Path):
    """An entry sent to one private journald never shows up in another."""
    other = PrivateJournald(tmp_path / "other").start()
    try:
        _send(journald, b"MESSAGE=first\nQSYNCD_PROBE=one\n")
        _send(other, b"MESSAGE=second\nQSYNCD_PROBE=two\n")
        assert [e["MESSAGE"] for e in journald.entries(QSYNCD_PROBE="one")] == ["first"]
        assert journald.entries(QSYNCD_PROBE="two") == []
        assert [e["MESSAGE"] for e in other.entries(QSYNCD_PROBE="two")] == ["second"]
        assert other.entries(QSYNCD_PROBE="one") == []
    finally:
        other.stop()
