"""A stand-in for ``qsyncd run`` used to prove the nspawn harness and the shipped unit's hardening.

It uses the real qsyncd.events and qsyncd.notify under systemd: auto log format (-> journal), READY/STATUS,
a Liveness-gated watchdog, STOPPING on SIGTERM, RELOADING on SIGHUP. It reads the LoadCredential secret,
writes its StateDirectory, checks the watch root is read-only and logs inotify events of the watch root.
``$QSYNCD_TEST_WEDGE_FILE`` existing makes its worker thread block forever, so the watchdog stops.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from qsyncd.events import configure_logging, get_logger, register_secret
from qsyncd.notify import Liveness, Notifier, WatchdogPinger

WATCH_ROOT = Path("/srv/qsyncd")


class _Seen(FileSystemEventHandler):
    def __init__(self) -> None:
        self.log = get_logger()

    def on_closed(self, event: FileSystemEvent) -> None:
        self.log.info("file_seen", path=event.src_path)


def main() -> int:
    chosen = configure_logging("auto")
    log = get_logger(component="stub")
    notifier = Notifier.from_env()
    secret = Path(os.environ["CREDENTIALS_DIRECTORY"], "qsyncd-secret-key").read_text().strip()
    register_secret(secret)
    state = Path(os.environ["STATE_DIRECTORY"])
    (state / "stub-state").write_text(str(os.getpid()))
    try:
        (WATCH_ROOT / ".stub-probe").write_text("x")
        watch_error = ""
    except OSError as exc:
        watch_error = exc.strerror or str(exc)
    log.info(
        "stub_started",
        format=chosen,
        uid=os.getuid(),
        credential_bytes=len(secret),
        state_written=(state / "stub-state").exists(),
        watch_root_write_error=watch_error,
        secret_echo=f"key={secret}",
    )

    observer = Observer()
    observer.schedule(_Seen(), str(WATCH_ROOT), recursive=True)
    observer.start()

    liveness = Liveness()
    liveness.register("worker", max_silence=1.0)
    wedge = os.environ.get("QSYNCD_TEST_WEDGE_FILE", "")
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            if wedge and os.path.exists(wedge):
                log.warning("pipeline_wedged")
                threading.Event().wait()  # blocked for good, like a hung syscall
            liveness.beat("worker")
            time.sleep(0.1)

    threading.Thread(target=worker, name="worker", daemon=True).start()
    pinger = WatchdogPinger(notifier, liveness)
    pinger.start()

    def on_term(_signum: int, _frame: object) -> None:
        notifier.stopping("stopping")
        log.info("stub_stopping")
        stop.set()

    def on_hup(_signum: int, _frame: object) -> None:
        notifier.reloading()
        log.info("config_reloaded")
        notifier.ready_after_reload()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    notifier.ready(status=f"watching {WATCH_ROOT}")
    while not stop.wait(0.5):
        pass
    pinger.stop()
    observer.stop()
    observer.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
