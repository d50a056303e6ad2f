"""The daemon and its stages: ``Daemon`` wires them (``daemon.py``); each stage owns its state in a module.

``roots`` (the watch roots), ``scanner`` + ``listing`` (the scan stage), ``settling`` (the settle stage),
``worker`` (the upload stage), ``maintenance`` (aborting dead multipart uploads), ``mode`` (run, sync,
dry run). ARCHITECTURE.md draws how they connect.
"""

from qsyncd.service.daemon import Daemon, SyncReport, make_remote
from qsyncd.service.mode import DRY_RUN, RUN, SYNC, Mode

__all__ = ["DRY_RUN", "RUN", "SYNC", "Daemon", "Mode", "SyncReport", "make_remote"]
