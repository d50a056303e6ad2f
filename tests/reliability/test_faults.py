"""Remote faults: with 10% of requests failing (503, reset mid-body, 5 s stalls), every file arrives intact."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from qsynctest import md5_file
from relsupport import FIGURES, Rig, object_metas, scale, write_bytes

MiB = 1 << 20


def test_ten_percent_fault_mix_every_file_arrives_intact(rig: Rig, seed: int) -> None:
    """1,000 small files and some multiparts under a 10% mix of 503s, resets and 5 s stalls all arrive intact."""
    from qsyncd.emulator import Fault

    rng = random.Random(seed)
    emu: Any = rig.emu  # type: ignore[attr-defined]
    n_small = scale(1000, 5000)
    n_multi = scale(4, 20)
    # The mix is 10% of all requests: 5% answered 503, 4% reset after a few body bytes, 1% stalled for 5 s.
    faults = [
        emu.inject(Fault(status=503, count=None, probability=0.05)),
        emu.inject(Fault(reset_after_bytes=rng.randrange(0, 4096), count=None, probability=0.04 / 0.95)),
        emu.inject(Fault(stall=5.0, count=None, probability=0.01 / (0.95 * (1 - 0.04 / 0.95)))),
    ]
    rig.write_config(
        upload={
            "concurrency": 8,
            "multipart_threshold": "5MiB",
            "part_size": "4MiB",
            "part_concurrency": 2,
            "part_retries": 6,
            "retry_max_seconds": 1,
        },
        settle={"quiet_seconds": 0.3},
    )
    for i in range(n_small):
        write_bytes(rig.tree / f"d{i % 20:02d}" / f"f{i:05d}.bin", rng.randbytes(rng.randrange(0, 8192)))
    for i in range(n_multi):
        write_bytes(rig.tree / "big" / f"m{i:02d}.bin", rng.randbytes(5 * MiB + rng.randrange(1, 3 * MiB)))
    d = rig.daemon()
    diff = rig.converge(timeout=scale(240, 1800), daemon=d)
    assert diff.equal
    for f in faults:
        f.count = 0  # stop firing before we look
    reqs = emu.requests
    fired = sum(f.fired for f in faults)
    FIGURES["faults_injected"] += fired
    ratio = fired / max(1, len(reqs))
    # The mix really ran: about 10% of the requests were faulted, each kind at least once.
    assert 0.06 <= ratio <= 0.14, f"fault ratio {ratio:.3f} over {len(reqs)} requests"
    assert all(f.fired > 0 for f in faults), [f.describe() + f" fired={f.fired}" for f in faults]

    # ETag of every object is the MD5 of the local file (so no complete used a wrong or missing part).
    objs = object_metas(rig.emu_root)
    for key, (meta, _) in objs.items():
        assert meta["etag"] == md5_file(rig.tree / key), key
    # Every successful Complete produced exactly one object; no key was completed twice.
    completes = Counter(r.key for r in reqs if r.operation == "CompleteMultipartUpload" and 200 <= r.status < 300)
    assert set(completes) == {f"big/m{i:02d}.bin" for i in range(n_multi)}
    assert max(completes.values()) == 1, completes
    # Every file was reported uploaded, and the daemon survived the mix.
    finished = d.events("upload_finished") + d.events("upload_skipped")
    assert {e["key"] for e in finished} == set(objs)
    assert d.proc is not None and d.proc.poll() is None, "the daemon must survive the fault mix"
    # The ledger tracks no multipart upload any more: every one completed or was aborted.
    rc = d.stop()
    assert rc == 0, d.tail()
    from qsyncd.state import Ledger

    ledger = Ledger(rig.state, readonly=True)
    try:
        assert ledger.multiparts() == []
    finally:
        ledger.close()
