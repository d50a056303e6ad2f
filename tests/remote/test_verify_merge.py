"""The periodic verify's merge (``service.reverify.compare``) on every store of the contract suite: with
pages and chunks small enough that they end at every place that matters, it finds exactly what the old
comparison (the whole listing in a dict, ``qsynctest.audit_oracle``) finds, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from qsynctest.audit_oracle import compare_dict, lost_and_found
from remote_support import Store

from qsyncd.service.reverify import compare
from qsyncd.state import Ledger


@pytest.mark.parametrize(("page_size", "chunk"), [(1, 1), (2, 3), (3, 2), (1000, 1000)])
def test_the_merge_finds_what_the_whole_listing_found(store: Store, tmp_path: Path, page_size: int, chunk: int) -> None:
    ledger = Ledger(tmp_path / "state")
    try:
        watches, before = lost_and_found(store.remote, store.delete, ledger, tmp_path, store.prefix)
        lost, (records, checked, objects, prefixes) = compare(
            store.remote, ledger, watches, before, page_size=page_size, chunk=chunk
        )
        got = [(root, rec.path, f.kind, f.reason) for f, rec, root in lost]
        assert compare_dict(store.remote, ledger, watches, before) == (got, (records, checked, objects))
        assert [store.key("bk/"), store.key("other/")] == prefixes
        w1, w2, w3 = (str(w.path) for w in watches)
        gone = "deleted_from_bucket"
        assert [
            *[(w1, f"{w1}/f{i:02d}", "missing", gone) for i in (0, 2, 3, 5)],
            (w1, f"{w1}/f06", "changed", "size_differs"),
            (w1, f"{w1}/f08", "changed", "content_differs"),
            (w1, f"{w1}/f11", "missing", gone),
            (w1, f"{w1}/moved", "missing", gone),
            (w2, f"{w2}/b", "missing", gone),
            (w3, f"{w3}/shared3", "missing", gone),
            (w3, f"{w3}/y", "missing", gone),
        ] == got
        assert (21, 20, 14) == (records, checked, objects)
    finally:
        ledger.close()
