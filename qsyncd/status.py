"""``qsyncd status``: what the state database says, safe to run while the daemon is running."""

from __future__ import annotations

import os
import time
from typing import Any

from qsyncd.state import Ledger


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect(cfg: Any) -> dict[str, Any]:
    if not (cfg.state.dir / "state.db").exists():
        return {
            "state_dir": str(cfg.state.dir),
            "daemon": None,
            "uploaded": 0,
            "uploaded_bytes": 0,
            "failed": 0,
            "failures": [],
            "multiparts": [],
            "note": "no state yet: qsyncd has not run",
        }
    ledger = Ledger(cfg.state.dir, readonly=True)
    try:
        counts = ledger.counts()
        daemon = ledger.daemon_status()
        failures = [
            {
                "path": f.path,
                "key": f.key,
                "error": f.error,
                "permanent": f.permanent,
                "attempts": f.attempts,
                "last_at": f.last_at,
            }
            for f in ledger.failures()
        ]
        multiparts = [
            {
                "path": m.path,
                "key": m.key,
                "upload_id": m.upload_id,
                "bytes": m.size,
                "parts_done": len(m.parts),
                "parts_total": -(-m.size // m.part_size) if m.part_size else 0,
                "started_at": m.created_at,
            }
            for m in ledger.multiparts()
        ]
    finally:
        ledger.close()
    running = bool(daemon and daemon.get("running") and _pid_alive(int(daemon.get("pid", 0))))
    if daemon is not None:
        daemon = dict(daemon)
        daemon["running"] = running
    return {
        "state_dir": str(cfg.state.dir),
        "daemon": daemon,
        "uploaded": counts.get("uploaded", 0),
        "uploaded_bytes": counts.get("uploaded_bytes", 0),
        "failed": len(failures),
        "pending": (daemon or {}).get("queued", 0) + (daemon or {}).get("settling", 0) if running else None,
        "failures": failures,
        "multiparts": multiparts,
    }


def render(data: dict[str, Any], *, now: float | None = None) -> str:
    """The human-readable ``qsyncd status``; ``now`` (wall time, default the clock) ages the daemon's status."""
    now = time.time() if now is None else now
    lines = [f"state: {data['state_dir']}"]
    d = data.get("daemon")
    if d and d.get("running"):
        age = int(now - d.get("updated_at", now))
        lines.append(f"daemon: running (pid {d['pid']}, status {age} s old)")
        if d.get("remote_down_since"):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["remote_down_since"]))
            lines.append(f"remote: waiting since {since}: {d.get('remote_error', '')}")
        lines.append(
            f"pending: {d.get('queued', 0)} queued, {d.get('settling', 0)} settling, {d.get('uploading', 0)} uploading"
        )
    else:
        lines.append("daemon: not running")
    lines.append(f"uploaded: {data['uploaded']} files, {data['uploaded_bytes']} bytes (all runs, from the ledger)")
    if d and d.get("running"):
        lines.append(
            f"this run: {d.get('uploaded', 0)} files uploaded, {d.get('skipped', 0)} skipped, "
            + "".join(f"{d[k]} {k}, " for k in ("copied", "kept", "refused") if d.get(k))
            + f"{d.get('failed', 0)} failing"
        )
    lines.append(f"failed: {data['failed']}")
    for f in data.get("failures", [])[:20]:
        kind = "permanent" if f["permanent"] else "will retry"
        lines.append(f"  {f['path']}: {f['error']} ({kind}, {f['attempts']} attempts)")
    lines.append(f"multipart uploads in progress: {len(data.get('multiparts', []))}")
    for m in data.get("multiparts", [])[:20]:
        lines.append(f"  {m['key']}: {m['parts_done']}/{m['parts_total']} parts ({m['bytes']} bytes)")
    if data.get("note"):
        lines.append(data["note"])
    return "\n".join(lines)
