"""The service's periodic verify end to end: ``qsyncd run`` against the emulator notices objects deleted
or replaced behind its back and uploads them again.

The objects are deleted with the QingStor SDK's DeleteObject and overwritten with qsyncd's own signed
PUT, as a user or another tool would; the daemon is only told ``[verify] interval_seconds = 1``.
"""

from __future__ import annotations

from typing import Any

from e2e_support import assert_remote_equals, op_counts, overwrite, sdk_delete

VERIFY_EVERY_SECOND = "[verify]\ninterval_seconds = 1\n"


def test_an_object_deleted_or_replaced_behind_the_daemons_back_is_uploaded_again(setup: Any) -> None:
    files = {"a.txt": b"alpha " * 100, "sub/b.txt": b"bravo " * 100, "sub/c.txt": b"charlie"}
    for rel, data in files.items():
        (setup.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (setup.root / rel).write_bytes(data)
    setup.config(prefix="bk/", extra=VERIFY_EVERY_SECOND)
    d = setup.daemon()
    setup.wait_uploaded(d, ["bk/" + rel for rel in files])
    first = d.wait_event("verify_finished", timeout=30, pred=lambda e: e.get("checked") == 3)  # nothing lost
    assert [] == d.events("object_missing") + d.events("object_changed")
    assert first[0]["child_peak_rss_kib"] > 0  # the round ran in its child, which reported its peak

    sdk_delete(setup.emu.url, "bk/a.txt")
    other = b"BRAVO " * 100  # same size, other bytes
    overwrite(setup.emu.url, "bk/sub/b.txt", other)
    setup.emu.clear_requests()

    missing = d.wait_event("object_missing", timeout=30)[0]
    assert ("bk/a.txt", str(setup.root / "a.txt"), "deleted_from_bucket") == (
        missing["key"],
        missing["path"],
        missing["reason"],
    )
    changed = d.wait_event("object_changed", timeout=30)[0]
    assert ("bk/sub/b.txt", "content_differs") == (changed["key"], changed["reason"])

    def sent_again(key: str) -> bool:
        return len([e for e in d.events("upload_finished") if e.get("key") == key]) == 2

    setup.shared.wait_for(lambda: sent_again("bk/a.txt") and sent_again("bk/sub/b.txt"), timeout=30, what=d.tail())
    for rel, data in files.items():
        assert_remote_equals(setup.emu, "bk/" + rel, data)
    puts = op_counts(setup.emu, "PutObject")
    assert {"bk/a.txt": 1, "bk/sub/b.txt": 1} == {k: n for k, n in puts.items() if k.startswith("bk/")}  # not c.txt
    # on_change = "keep" (the default): the other writer's version of b.txt is kept aside, not lost
    assert 1 == len([k for k in puts if k.startswith(".qsyncd-kept/bk/sub/b.txt@")]), puts
    # the rounds send one listing each and no HEAD: only the uploader asks, for the two it sends again
    assert set(op_counts(setup.emu, "HeadObject", only_ok=False)) <= {"bk/a.txt", "bk/sub/b.txt"}
    assert {""} == {r.key for r in setup.emu.requests if r.operation == "ListObjects"}
    n = len([e for e in d.events("verify_finished") if e.get("checked") == 3])
    d.wait_event("verify_finished", timeout=30, count=n + 1, pred=lambda e: e.get("checked") == 3)  # all again
    assert 1 == len(d.events("object_missing")) and 1 == len(d.events("object_changed"))  # found once each
    assert 0 == d.stop()
