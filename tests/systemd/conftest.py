"""Fixtures for tests against real systemd pieces: ``journald``, ``notify_socket`` and ``nspawn``.

``journald`` and ``nspawn`` live in ``sdharness.py`` beside this file so that tests outside this directory
(tests/test_events.py) can use them; ``notify_socket`` is ``qsynctest.notify``'s.
"""

from qsynctest.notify import notify_socket  # noqa: F401  (re-exported as a fixture)
from sdharness import journald, nspawn  # noqa: F401  (re-exported as fixtures)
