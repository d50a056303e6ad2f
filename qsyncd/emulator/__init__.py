"""A protocol-faithful QingStor-compatible HTTP server for tests: ``qsyncd emulator``.

``Emulator`` serves the QingStor REST API on a local port and stores objects crash-safely
under a root directory; ``Fault`` injects errors, resets, latency and stalls; every request
is logged as a ``RequestRecord``. The protocol guesses the emulator makes where the API
reference is not confirmed are written down in :mod:`qsyncd.emulator.server` (HTTP and
authentication) and :mod:`qsyncd.emulator.operations` (the operations).
"""

from qsyncd.emulator.emulator import DEFAULT_CREDENTIALS, Emulator
from qsyncd.emulator.faults import Fault, RequestRecord

__all__ = ["DEFAULT_CREDENTIALS", "Emulator", "Fault", "RequestRecord"]
