"""The state directory: the ledger of what was uploaded, what failed, which multipart uploads are in flight.

One SQLite file, ``<state dir>/state.db``, in WAL mode so ``qsyncd status`` can read it (``readonly``)
while the daemon writes. A ``StateLock`` (``flock`` on ``<state dir>/qsyncd.lock``) keeps two daemons
off the same directory. Modules: ``records`` (what is stored), ``lock`` (one daemon per state
directory), ``db`` (the SQLite file: opening, transactions, errors that say what to do) and ``ledger``
(the queries, and what each one promises about durability).
"""

from qsyncd.state.db import DB_NAME, SCHEMA_VERSION
from qsyncd.state.ledger import Ledger
from qsyncd.state.lock import LOCK_NAME, StateLock
from qsyncd.state.records import FailureRecord, FileRecord, MultipartRecord, PartRecord

__all__ = [
    "DB_NAME",
    "LOCK_NAME",
    "SCHEMA_VERSION",
    "FailureRecord",
    "FileRecord",
    "Ledger",
    "MultipartRecord",
    "PartRecord",
    "StateLock",
]
